"""The console in a real browser: headless Chromium from Debian (``/usr/bin/chromium``)
driven by Playwright, against a real ``lienwatch serve`` on a free port over a seeded SQLite
database (``seed.py``).

Playwright's own browser builds are never downloaded: the browser is the system's. Where no
Chromium is found the browser tests are skipped with one line in the report header; with
``CI=true`` they are mandatory and fail instead. Every page a test visits can be kept as a
screenshot under ``$TMPDIR/artifacts/lienwatch-console/`` (or ``LIENWATCH_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.processes import Running, start
from tests.web.browser import ARTIFACTS, BROWSER_PROBLEM, CHROMIUM
from tests.web.seed import Seeded, seed


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    """Headless Chromium from the system, once for this package's tests. Playwright's sync
    API runs its event loop in this thread while it is open, so it is stopped (its loop
    closed) when the package's tests are done: a later test's ``asyncio.run`` in the same
    process would find a loop running and refuse."""
    if BROWSER_PROBLEM is not None:
        if IN_CI:
            pytest.fail(f"CI=true but the console browser tests cannot run: {BROWSER_PROBLEM}")
        pytest.skip(f"console browser tests skipped: {BROWSER_PROBLEM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield chromium
        chromium.close()


@dataclass
class Console:
    """A running ``lienwatch serve`` with the seeded book."""

    base: str
    db_url: str
    seeded: Seeded
    server: Running
    folder: Path  # the server's working directory (its [report] out is lienwatch-reports/)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, browser: object) -> Iterator[Console]:
    """``lienwatch serve`` (HTTP only: no gateway, scheduler or monitor) on a free port over
    a seeded SQLite book, for a module's tests; stopped with SIGTERM afterwards."""
    folder = tmp_path_factory.mktemp("console")
    db_url = f"sqlite:///{folder / 'lienwatch.sqlite3'}"
    seeded = seed(db_url)
    env = {"LIENWATCH_LEDGER__KEY_FILE": str(folder / "ledger.key")}
    server = start("serve", "--host", "127.0.0.1", "--http-port", "0", "--no-gateway",
                   "--no-scheduler", "--no-monitor", cwd=folder, env=env)  # fmt: skip
    port = int(re.search(r"http port (\d+)", server.ready).group(1))  # type: ignore[union-attr]
    try:
        yield Console(f"http://127.0.0.1:{port}", db_url, seeded, server, folder)
    finally:
        code, _ = server.stop()
        assert code == 0, "".join(server.stderr)


@pytest.fixture
def page_for(console: Console, browser) -> Iterator[object]:
    """``page_for(user, language="en", phone=False)``: a new browser context signed in as
    ``user`` (a phone's viewport when ``phone``), on its home page."""
    contexts = []

    def open_page(user: str, language: str = "en", phone: bool = False):
        viewport = {"width": 390, "height": 844} if phone else {"width": 1280, "height": 900}
        context = browser.new_context(locale="zh-CN" if language == "zh" else "en-US",
                                      viewport=viewport, base_url=console.base)  # fmt: skip
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.goto("/console/login")
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", console.seeded.password)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/console/(queue|team|users)"))
        return page

    yield open_page
    for context in contexts:
        context.close()


def snap(page, name: str) -> Path:
    """Keep a full-page screenshot of ``page`` as ``name``.png among the artifacts."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
