"""report.pdf from report.html with WeasyPrint (the optional extra ``lienwatch[pdf]``; it
needs Pango from the system, and a CJK font such as Debian's ``fonts-noto-cjk`` for the
Chinese report). The HTML has no external reference, so rendering reads nothing but it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lienwatch.errors import LienwatchError

MISSING = (
    "--pdf needs WeasyPrint: pip install 'lienwatch[pdf]' (and the system's Pango and a CJK "
    "font, e.g. apt-get install libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk)"
)


def require_renderer() -> Any:
    """The ``weasyprint`` module, or a one-line :class:`LienwatchError` saying how to get it."""
    try:
        import weasyprint
    except (ImportError, OSError):  # OSError: the package is there, Pango is not
        raise LienwatchError(MISSING) from None
    return weasyprint


def html_to_pdf(html: str, path: Path) -> Path:
    """Render ``html`` into ``path``; links to anything outside are refused, not fetched."""
    weasyprint = require_renderer()

    def no_fetch(url: str, *args: Any, **kwargs: Any) -> Any:
        raise LienwatchError(f"report.html refers to {url!r}: the report must be self-contained")

    weasyprint.HTML(string=html, url_fetcher=no_fetch).write_pdf(path)
    return path
