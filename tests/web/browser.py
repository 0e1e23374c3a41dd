"""Whether the console's browser tests can run here: the system's Chromium and the playwright
package (read by tests/conftest.py for the report's header, and by tests/web/conftest.py)."""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib.util import find_spec
from pathlib import Path

CHROMIUM = next((p for p in (os.environ.get("LIENWATCH_TEST_CHROMIUM"),
                             shutil.which("chromium"), "/usr/bin/chromium")
                 if p and Path(p).exists()), None)  # fmt: skip
ARTIFACTS = Path(os.environ.get("LIENWATCH_TEST_ARTIFACTS")
                 or Path(tempfile.gettempdir()) / "artifacts" / "lienwatch-console")


def _problem() -> str | None:
    if CHROMIUM is None:
        return "no Chromium (apt-get install chromium)"
    if find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


#: Why the browser tests cannot run here (None: they can).
BROWSER_PROBLEM = _problem()
