"""Shared fixtures: one ``db_url`` fixture parametrized over SQLite and PostgreSQL.

PostgreSQL is the server at ``LIENWATCH_TEST_PG_URL`` (default: user postgres on
127.0.0.1:5432). The suite creates its own database ``lienwatch_test_<pid>`` and drops it at
the end.
With ``CI=true`` the PostgreSQL tests are mandatory and fail when the server is unreachable;
elsewhere they are skipped, with one line saying so in the report header.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from lienwatch import clock
from lienwatch.store import migrate
from lienwatch.store.db import make_engine
from tests.web.browser import ARTIFACTS, BROWSER_PROBLEM, CHROMIUM

PG_ADMIN_URL = os.environ.get(
    "LIENWATCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

#: The time every test starts at, whatever the day the suite runs: in this process through
#: lienwatch.clock, and in the lienwatch processes tests start through LIENWATCH_CLOCK
#: (tests/test_cli.py, tests/processes.py). 10:00 on a Tuesday in Shanghai, after every
#: fixture's dates. A test that needs another time says so (--at, LIENWATCH_CLOCK, travel).
TEST_NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)

#: The operators' token of the health endpoint's detail in the processes tests start.
HEALTH_TOKEN = "operators-token-0123456789"


@pytest.fixture(scope="session", autouse=True)
def _suite_clock() -> Iterator[None]:
    """TEST_NOW for the module and session fixtures too (a demo run shared by a module)."""
    with clock.travel(TEST_NOW):
        yield


@pytest.fixture(autouse=True)
def _fixed_clock(_suite_clock: None) -> Iterator[None]:
    """Each test starts at TEST_NOW."""
    with clock.travel(TEST_NOW):
        yield


#: What lienwatch writes in its working directory when a setting is left at its default: a
#: test must point such settings (and commands' cwd) at tmp_path, never at the checkout.
_DEFAULT_OUTPUTS = (
    "lienwatch-ledger.key", "lienwatch.sqlite3", "lienwatch-demo", "lienwatch-reports")
_CHECKOUT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _checkout_untouched() -> Iterator[None]:
    """Fails the test that leaves one of lienwatch's default outputs in the checkout."""
    before = {name for name in _DEFAULT_OUTPUTS if (_CHECKOUT / name).exists()}
    yield
    made = {name for name in _DEFAULT_OUTPUTS if (_CHECKOUT / name).exists()} - before
    assert not made, f"the test wrote {sorted(made)} into the checkout {_CHECKOUT}"


def _probe_postgres() -> str | None:
    """None when the server answers, else the reason it does not."""
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except (OperationalError, ModuleNotFoundError) as exc:
        return str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    return None


PG_PROBLEM = _probe_postgres()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The files holding slow tests first, each file's order kept. `make test` hands whole
    files to its workers in this order (``--dist loadfile --no-loadscope-reorder``): the
    slow files, minutes of multi-process waiting in a few tests, start at once beside the
    rest instead of being left, as xdist's default order (most tests first) leaves them, to
    end the run alone."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [_postgres_header(), _browser_header()]


def _postgres_header() -> str:
    where = make_url(PG_ADMIN_URL).render_as_string(hide_password=True)
    if PG_PROBLEM is None:
        return f"postgresql: {where} reachable; PostgreSQL-backed tests run"
    if IN_CI:
        return f"postgresql: {where} UNREACHABLE ({PG_PROBLEM}); CI=true, so those tests will fail"
    return f"postgresql: {where} unreachable ({PG_PROBLEM}); PostgreSQL-backed tests are skipped"


def _browser_header() -> str:
    """One line on the console's browser tests (tests/web): run, skipped, or failing in CI."""
    if BROWSER_PROBLEM is None:
        return f"browser: {CHROMIUM}; console browser tests run (screenshots in {ARTIFACTS})"
    if IN_CI:
        return f"browser: {BROWSER_PROBLEM}; CI=true, so the console browser tests will fail"
    return f"browser: {BROWSER_PROBLEM}; the console browser tests are skipped"


@cache
def _sqlite_head() -> Path:
    """A SQLite database at the head revision, migrated once per test process."""
    folder = Path(tempfile.mkdtemp(prefix="lienwatch-head-"))
    engine = make_engine(f"sqlite:///{folder / 'head.sqlite3'}")
    migrate.upgrade(engine)
    engine.dispose()  # the last connection checkpoints the WAL: the file is whole
    return folder / "head.sqlite3"


def head_sqlite(path: Path) -> str:
    """The URL of a new SQLite database at ``path`` at the head revision: a copy of one
    migrated once per test process (running the migrations costs far more than the copy)."""
    shutil.copyfile(_sqlite_head(), path)
    return f"sqlite:///{path}"


@contextmanager
def postgres_database(name: str, *, migrated: bool = False) -> Iterator[str]:
    """A fresh PostgreSQL database for the block, dropped afterwards; yields its URL. With
    ``migrated``, it is at the head revision: a copy of a template database migrated once per
    test process."""
    if PG_PROBLEM is not None:
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL is unreachable: {PG_PROBLEM}")
        pytest.skip("PostgreSQL unreachable; set LIENWATCH_TEST_PG_URL or start the server")
    template = f' TEMPLATE "{_postgres_head()}"' if migrated else ""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"{template}'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@cache
def _postgres_head() -> str:
    """The name of a PostgreSQL template database at the head revision, migrated once per
    test process (unique per process, like every database of the suite) and dropped at its
    end."""
    name = f"lienwatch_head_{os.getpid()}"
    stack = contextlib.ExitStack()
    url = stack.enter_context(postgres_database(name))
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()  # a template must have no connection when it is copied
    _LEFT_AT_EXIT.append(stack)
    return name


#: Databases the suite drops when it ends (pytest_unconfigure).
_LEFT_AT_EXIT: list[contextlib.ExitStack] = []


def pytest_unconfigure(config: pytest.Config) -> None:
    while _LEFT_AT_EXIT:
        _LEFT_AT_EXIT.pop().close()


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory) -> tuple[Path, dict]:
    """`lienwatch demo --loans 200 --days 30` (the default seed, 7), built once per test
    process for the tests that only read it (the docs' examples, the daily report), which copy
    what they change: (the folder holding ``lienwatch-demo/``, the demo's JSON summary)."""
    from tests.processes import environment

    folder = tmp_path_factory.mktemp("small-demo")
    result = subprocess.run(
        [sys.executable, "-m", "lienwatch", "demo", "--loans", "200", "--days", "30", "--json"],
        cwd=folder, env=environment(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return folder, json.loads(result.stdout)


@pytest.fixture(scope="session")
def _postgres_url() -> Iterator[str]:
    # One database per test process: suites run at the same time (other checkouts, CI) must not
    # drop each other's database.
    with postgres_database(f"lienwatch_test_{os.getpid()}") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    """A migrated database on each backend."""
    if request.param == "sqlite":
        engine = make_engine(head_sqlite(tmp_path / "test.sqlite3"))
    else:
        engine = make_engine(request.getfixturevalue("_postgres_url"))
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """The URL of a migrated database of the test's own on each backend, for what commits
    (commands run as subprocesses, servers, concurrent sessions)."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = head_sqlite(tmp_path / "store.sqlite3")
        else:
            name = f"lienwatch_store_{os.getpid()}"
            url = stack.enter_context(postgres_database(name, migrated=True))
        yield url


@pytest.fixture
def db_session(db_engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test (savepoints allowed)."""
    with db_engine.connect() as connection:
        outer = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            session.close()
            outer.rollback()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """One visible line when PostgreSQL-backed tests were skipped on a machine without it."""
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if "postgres" in report.keywords
    ]
    if skipped:
        terminalreporter.write_line(
            f"postgresql unreachable ({PG_PROBLEM}): "
            f"{len(skipped)} PostgreSQL-backed tests skipped",
            yellow=True,
        )
