"""The job scheduler with real time and real threads: timetables, no overlap, failures,
status, graceful stop."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from lienwatch import clock
from lienwatch.scheduling import Backoff, DailyAt, Every, Job, Scheduler, running_scheduler


def run_for(seconds: float, jobs: list[Job], **options) -> Scheduler:
    """Run ``jobs`` for ``seconds`` of real time, then stop gracefully; ``scheduler.seen``
    holds the status as it was just before stopping."""

    async def main() -> Scheduler:
        async with running_scheduler(jobs, **options) as scheduler:
            await asyncio.sleep(seconds)
            scheduler.seen = scheduler.status()
        return scheduler

    return asyncio.run(main())


def test_an_interval_job_repeats_and_never_overlaps_itself():
    spans: list[tuple[float, float]] = []
    inside = threading.Lock()

    def slow() -> dict:
        assert inside.acquire(blocking=False), "two runs of one job at once"
        try:
            began = time.monotonic()
            time.sleep(0.15)  # longer than the interval: the next run waits for this one
            spans.append((began, time.monotonic()))
            return {"n": len(spans)}
        finally:
            inside.release()

    scheduler = run_for(0.7, [Job("slow", Every(0.05), slow)])
    status = scheduler.statuses["slow"]
    assert 3 <= status.runs == len(spans) <= 5
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))
    assert (status.failures, status.last_ok, status.last_result) == (0, True, {"n": len(spans)})
    assert status.last_duration_s is not None and status.last_duration_s >= 0.15
    assert status.timetable == "every 0.05 s" and not status.running


def test_a_failure_is_logged_with_its_traceback_and_the_job_runs_again(caplog):
    calls = []

    def flaky() -> dict:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("store briefly down")
        return {"ok": len(calls)}

    seen = []
    with caplog.at_level(logging.ERROR, logger="lienwatch.scheduling"):
        scheduler = run_for(0.35, [Job("flaky", Every(0.1), flaky)], on_run=seen.append)
    status = scheduler.statuses["flaky"]
    assert status.runs >= 3 and status.failures == 1 and status.last_ok
    assert status.last_error == "RuntimeError: store briefly down"
    assert status.last_error_at is not None and status.last_result == {"ok": status.runs}
    [record] = [r for r in caplog.records if "job flaky failed" in r.getMessage()]
    assert record.exc_info is not None and "store briefly down" in str(record.exc_info[1])
    assert len(seen) == status.runs  # the listener heard every run, the failed one too
    json_ready = scheduler.status()["flaky"]
    assert json_ready["last_error_at"] == status.last_error_at.isoformat()


def test_stopping_waits_for_the_running_job_to_finish():
    finished = threading.Event()

    def long_job() -> dict:
        time.sleep(0.5)
        finished.set()
        return {}

    async def main() -> tuple[float, Scheduler]:
        scheduler = Scheduler([Job("long", Every(10), long_job)])
        scheduler.start()
        await asyncio.sleep(0.1)
        assert scheduler.statuses["long"].running
        began = time.monotonic()
        await scheduler.stop()
        return time.monotonic() - began, scheduler

    waited, scheduler = asyncio.run(main())
    assert finished.is_set() and waited >= 0.3
    status = scheduler.statuses["long"]
    assert (status.runs, status.running, status.next_run_at) == (1, False, None)


def test_a_daily_job_runs_at_its_local_time_and_at_start_when_asked():
    zone = "America/New_York"
    soon = (clock.now().astimezone(ZoneInfo(zone)) + timedelta(seconds=0.4)).time()
    runs: dict[str, list[datetime]] = {"at_time": [], "at_start": []}
    jobs = [
        Job(name, DailyAt(soon, zone, at_start=name == "at_start"),
            lambda name=name: runs[name].append(clock.now()) or {})
        for name in runs
    ]  # fmt: skip
    started = clock.now()
    scheduler = run_for(0.9, jobs)
    [at_time] = runs["at_time"]
    assert timedelta(seconds=0.3) < at_time - started < timedelta(seconds=0.8)
    assert len(runs["at_start"]) == 2  # once at start, once at the time
    assert runs["at_start"][0] - started < timedelta(seconds=0.2)
    tomorrow = datetime.fromisoformat(scheduler.seen["at_time"]["next_run_at"])
    assert timedelta(hours=23) < tomorrow - at_time < timedelta(hours=25)
    assert scheduler.statuses["at_time"].next_run_at is None  # stopped


def test_the_next_daily_time_is_local_and_follows_daylight_saving():
    nightly = DailyAt(datetime.strptime("01:00", "%H:%M").time(), "Asia/Shanghai")
    assert nightly.next_after(datetime(2026, 3, 1, 16, 59, tzinfo=UTC)) == datetime(
        2026, 3, 1, 17, 0, tzinfo=UTC
    )
    assert nightly.next_after(datetime(2026, 3, 1, 17, 0, tzinfo=UTC)) == datetime(
        2026, 3, 2, 17, 0, tzinfo=UTC
    )
    new_york = DailyAt(datetime.strptime("01:00", "%H:%M").time(), "America/New_York")
    # 2026-03-08: clocks go forward at 02:00; 01:00 EST is 06:00 UTC, the next 01:00 EDT 05:00.
    assert new_york.next_after(datetime(2026, 3, 8, 6, 0, tzinfo=UTC)) == datetime(
        2026, 3, 9, 5, 0, tzinfo=UTC
    )
    assert nightly.describe() == "daily at 01:00 Asia/Shanghai"


def test_bad_timetables_and_jobs_are_refused_naming_the_field():
    with pytest.raises(ValueError, match="seconds: must be positive"):
        Every(0)
    with pytest.raises(ValueError, match="zone: unknown IANA time zone 'Mars/Base'"):
        DailyAt(clock.now().time(), "Mars/Base")
    with pytest.raises(ValueError, match=r"at: .* without an offset"):
        DailyAt(clock.now().timetz(), "UTC")
    with pytest.raises(ValueError, match="jobs: duplicate name 'a'"):
        Scheduler([Job("a", Every(1), dict), Job("a", Every(2), dict)])


def test_backoff_doubles_up_to_its_cap_and_never_reaches_the_next_regular_run():
    backoff = Backoff(first_s=60, max_s=300, for_s=3_600)
    night = datetime(2029, 3, 1, 17, 0, tzinfo=UTC)
    tomorrow = night + timedelta(days=1)

    def wait(attempt: int, failed: datetime = night, regular: datetime = tomorrow) -> float | None:
        moment = backoff.retry_at(
            failed=failed, streak_began=night, attempt=attempt, regular=regular
        )
        return None if moment is None else (moment - failed).total_seconds()

    assert [wait(n) for n in (1, 2, 3, 4)] == [60, 120, 240, 300]
    assert wait(1, regular=night + timedelta(seconds=60)) is None  # the regular run comes first
    assert wait(9, failed=night + timedelta(seconds=3_400)) is None  # past for_s: give up
    with pytest.raises(ValueError, match="first_s: must be positive"):
        Backoff(first_s=0, max_s=1, for_s=1)


def test_a_failed_daily_run_is_retried_with_backoff_the_same_night(caplog):
    """The clock is set to 00:59:59.7 in Shanghai; the nightly job at 01:00 fails twice and is
    retried 0.2 s then 0.4 s later (not the next night), then its next run is tomorrow."""
    zone = "Asia/Shanghai"
    night = datetime(2029, 3, 1, 1, 0, tzinfo=ZoneInfo(zone))
    runs: list[datetime] = []

    def nightly() -> dict:
        runs.append(clock.now())
        if len(runs) <= 2:
            raise RuntimeError("database restarting")
        return {"day": "2029-02-28"}

    job = Job("nightly", DailyAt(night.time(), zone), nightly, Backoff(0.2, 10, 600))
    with clock.travel(night - timedelta(seconds=0.3)), caplog.at_level(logging.WARNING):
        scheduler = run_for(1.4, [job])
    status = scheduler.statuses["nightly"]
    assert (status.runs, status.failures, status.last_ok, status.retrying) == (3, 2, True, 0)
    assert night <= runs[0] < night + timedelta(seconds=0.2)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(runs)]
    assert 0.2 <= gaps[0] < 0.35 and 0.4 <= gaps[1] < 0.55, gaps
    assert datetime.fromisoformat(scheduler.seen["nightly"]["next_run_at"]) == night + timedelta(
        days=1
    )
    retries = [r.getMessage() for r in caplog.records if "job nightly: retry" in r.getMessage()]
    assert [message.split(" at ")[0] for message in retries] == [
        "job nightly: retry 1",
        "job nightly: retry 2",
    ]


def test_the_nightly_job_of_serve_and_worker_retries_with_the_configured_backoff(tmp_path):
    from lienwatch.config import Settings
    from lienwatch.jobs import NIGHTLY, NIGHTLY_RETRY_MAX_S, scheduler_jobs
    from lienwatch.store.db import make_engine, session_factory

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'x.db'}",
        scheduler={"nightly_retry_first_s": 30, "nightly_retry_for_s": 7_200},
        ledger={"key_file": tmp_path / "ledger.key"},  # the jobs make the key: not in the tree
    )
    jobs = scheduler_jobs(session_factory(make_engine(settings.database_url)), settings)
    [nightly] = [job for job in jobs if job.name == NIGHTLY]
    assert nightly.retry == Backoff(first_s=30, max_s=NIGHTLY_RETRY_MAX_S, for_s=7_200)
    assert all(job.retry is None for job in jobs if job is not nightly)
