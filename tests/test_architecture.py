"""The direction of imports stated in docs/architecture.md, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "lienwatch"
CAPABILITIES = {"servicing", "telematics", "monitor", "followup", "risk", "ledger", "workforce"}
TOP = {"api", "web", "cli", "commands", "reports", "demo", "runtime", "jobs", "__main__"}

# package -> the first-level lienwatch packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "domain": {"errors"},
    "errors": set(),
    "clock": set(),
    "tabular": {"errors"},
    "config": {"errors"},
    "scheduling": {"errors"},  # the job scheduler: no database, no capability
    "sim": {"domain", "errors", "servicing"},  # pays what the servicing rules say is due
    **{name: {"domain", "errors", "config"} for name in CAPABILITIES},
    "workforce": {"domain", "errors", "config", "followup"},  # plans the follow-up's work
    "store": {"domain", "errors", "config", *CAPABILITIES},
    "bus": {"domain", "errors", "config", *CAPABILITIES},
    # I/O at the edges: implementations of the capabilities' interfaces (message providers)
    "adapters": {"domain", "errors", "config", *CAPABILITIES},
    # the use cases: the verbs the CLI, the API and the console call
    "services": {"domain", "errors", "config", "store", "adapters", "access", *CAPABILITIES},
    # who may do what: roles, the route policy, masking, credentials (pure rules)
    "access": {"domain", "errors", "config", "followup"},
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
    # `data` (the shipped files), `errors`, `tabular` (reading input files) and `clock` (the
    # process's time) are leaves anyone but the pure domain may use.
    leaves = {"data", "errors", "tabular"} | ({"clock"} if owner != "domain" else set())
    forbidden = imported_packages(path) - ALLOWED[owner] - {owner, *leaves}
    assert not forbidden, f"{path.relative_to(PACKAGE)} imports {sorted(forbidden)}"


#: Packages whose modules do no I/O: the rules, tested without a database or a network.
PURE = ("domain", "followup", "access", "risk")


@pytest.mark.parametrize("package", PURE)
def test_rules_do_no_io(package: str):
    io_modules = {"sqlalchemy", "socket", "asyncio", "requests", "httpx", "smtplib", "open"}
    for path in (PACKAGE / package).rglob("*.py"):
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


#: Ways of reading the current time other than ``lienwatch.clock``.
WALL_CLOCK = {("datetime", "now"), ("datetime", "utcnow"), ("date", "today"),
              ("time", "time"), ("time", "time_ns")}  # fmt: skip
TESTS = PACKAGE.parents[1] / "tests"


@pytest.mark.parametrize(
    "path",
    [*modules(), *sorted(TESTS.rglob("*.py"))],
    ids=lambda p: str(p.relative_to(PACKAGE.parents[1])),
)
def test_only_the_clock_reads_the_time(path: Path):
    """Time is an input: every "now", in the product and in its tests, comes from
    lienwatch.clock, which tests set (tests/conftest.py: TEST_NOW)."""
    if path in (PACKAGE / "clock.py", TESTS / "test_clock.py"):
        return
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        # A call or a reference passed on (as a default clock argument) alike.
        if isinstance(node, ast.Attribute):
            owner = node.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
            assert (name, node.attr) not in WALL_CLOCK, (
                f"{path.relative_to(PACKAGE.parents[1])}:{node.lineno} reads the wall clock; "
                "use lienwatch.clock.now()"
            )


def test_the_store_is_storage():
    """No use case lives in the store: no service class (they are in ``services/``)."""
    for path in (PACKAGE / "store").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                assert not node.name.endswith("Service"), f"{path.name}: {node.name}"


def test_the_report_reads_through_the_services_read_verbs():
    """The report computes its figures from the verbs the CLI, API and console call: no module
    of ``reports`` imports a table or builds a query (transaction() opens the read)."""
    for path in (PACKAGE / "reports").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = {alias.name for alias in node.names}
                assert not node.module.startswith("lienwatch.store.tables"), path.name
                assert not (node.module == "sqlalchemy" and names & {"select", "func"}), (
                    f"{path.name}:{node.lineno} builds a query; call a services read verb")


@pytest.mark.parametrize("layer", ["store", "services"])
def test_a_file_of_the_store_or_the_services_is_read_at_once(layer: str):
    """No file of the store or of the service layer over 500 lines (migrations aside): a
    path names its rule, and a file that grows past this wants splitting by what it does."""
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in (PACKAGE / layer).rglob("*.py")
        if "migrations" not in path.parts
        and (n := len(path.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert long == {}
