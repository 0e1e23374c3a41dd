"""The process clock: the system clock unless LIENWATCH_CLOCK or travel() set it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from lienwatch import clock
from tests.test_cli import run

AT = datetime.fromisoformat("2026-02-17T08:30:00+08:00")


def test_travel_sets_the_clock_which_then_runs_on():
    before = clock.now()  # the suite's clock (tests/conftest.py)
    with clock.travel(AT):
        first = clock.now()
        time.sleep(0.05)
        second = clock.now()
        assert timedelta(0) <= first - AT < timedelta(seconds=1)
        assert timedelta(seconds=0.04) < second - first < timedelta(seconds=1)
        assert first.tzinfo is UTC
        assert abs(clock.timestamp() - second.timestamp()) < 1
    assert timedelta(0) <= clock.now() - before < timedelta(seconds=1)  # restored


def test_the_system_clock_unless_set(monkeypatch):
    monkeypatch.setattr(clock, "_offset_s", None)  # as in a new process
    monkeypatch.delenv(clock.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(clock.time, "time", lambda: AT.timestamp())  # the system's, stopped
    assert clock.now() == AT and clock.offset() == timedelta(0)
    with pytest.raises(clock.ClockError, match="needs a UTC offset"):
        clock.travel(datetime(2026, 2, 17)).__enter__()


def test_a_process_started_with_lienwatch_clock_believes_it(tmp_path):
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    env = {"LIENWATCH_CLOCK": AT.isoformat()}
    # The nightly run's default day is the business day before the clock's.
    result = run("servicing", "run", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("as of 2026-02-16: 0 loans")
    bad = run("servicing", "run", cwd=tmp_path, env={"LIENWATCH_CLOCK": "tomorrow"})
    assert bad.returncode == 1
    assert bad.stderr.strip() == "lienwatch: error: LIENWATCH_CLOCK: 'tomorrow' is not an ISO time"
    naive = run("servicing", "run", cwd=tmp_path, env={"LIENWATCH_CLOCK": "2026-02-17T08:30"})
    assert "needs a UTC offset" in naive.stderr
