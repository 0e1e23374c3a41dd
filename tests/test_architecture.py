"""The direction of imports stated in docs/architecture.md, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lienwatch"
CAPABILITIES = {"servicing", "telematics", "monitor", "followup", "risk", "ledger"}
TOP = {"api", "web", "cli", "commands", "reports", "demo", "runtime", "jobs", "__main__"}

# package -> the first-level lienwatch packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "domain": {"errors"},
    "errors": set(),
    "tabular": {"errors"},
    "config": {"errors"},
    "scheduling": {"errors"},  # the job scheduler: no database, no capability
    "sim": {"domain", "errors", "servicing"},  # pays what the servicing rules say is due
    **{name: {"domain", "errors", "config"} for name in CAPABILITIES},
    "store": {"domain", "errors", "config", *CAPABILITIES},
    "bus": {"domain", "errors", "config", *CAPABILITIES},
}


def imported_packages(path: Path) -> set[str]:
    """First-level ``lienwatch.X`` packages a module imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module + "." + alias.name for alias in node.names]
        else:
            continue
        found.update(n.split(".")[1] for n in names if n.startswith("lienwatch.") and "." in n)
    return found


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_one_way(path: Path):
    owner = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    if owner in TOP or owner in {"__init__", "data"}:
        return
    assert owner in ALLOWED, f"{owner} is a new top-level package: place it in ALLOWED or TOP"
    # `data` (the shipped files), `errors` and `tabular` (reading input files) are leaves
    # anyone may use.
    forbidden = imported_packages(path) - ALLOWED[owner] - {owner, "data", "errors", "tabular"}
    assert not forbidden, f"{path.relative_to(PACKAGE)} imports {sorted(forbidden)}"


def test_domain_does_no_io():
    io_modules = {"sqlalchemy", "socket", "asyncio", "requests", "httpx", "open"}
    for path in (PACKAGE / "domain").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                assert not {n.split(".")[0] for n in names} & io_modules, path
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open":
                raise AssertionError(f"{path} opens a file")
