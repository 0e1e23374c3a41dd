"""A small asyncio job scheduler: named blocking jobs run in worker threads on a timetable.

``lienwatch serve``, ``lienwatch worker`` and ``lienwatch followup run`` run their periodic work
through it. A job runs every N seconds (:class:`Every`) or once a day at a local time in a
given zone (:class:`DailyAt`). Each job is one loop on the event loop that hands its callable
to a worker thread and waits for it, so a job never overlaps itself and the loop (gateway,
HTTP) is never blocked. A failure is logged with its traceback and the job runs again at its
next time, or sooner when the job has a :class:`Backoff`: retried after growing waits while
the retry still comes before its next regular time (a failed nightly run is retried the same
night, not a day later). Stopping lets running jobs finish (graceful shutdown). Every job keeps a
:class:`JobStatus` for the health endpoint.

There is no database code here: the jobs (:mod:`lienwatch.jobs`) open their own transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from time import monotonic
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lienwatch import clock

log = logging.getLogger(__name__)

#: A wait longer than this is cut into pieces re-checked against the wall clock, so a
#: suspended machine or a clock step does not push a daily job a day late.
MAX_SLEEP_S = 30.0


class Timetable(Protocol):
    def first(self, now: datetime) -> datetime:
        """When the job first runs after the scheduler starts at ``now``."""
        ...

    def next_after(self, started: datetime) -> datetime:
        """When the job runs next, given that its last run started at ``started``."""
        ...

    def describe(self) -> str:
        """The timetable in words, for status and logs."""
        ...


@dataclass(frozen=True, slots=True)
class Every:
    """Every ``seconds``, counted from the start of the previous run; the first run at start.

    A run that takes longer than the interval is followed at once by the next one (never by
    a second copy of itself)."""

    seconds: float

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"seconds: must be positive, got {self.seconds}")

    def first(self, now: datetime) -> datetime:
        return now

    def next_after(self, started: datetime) -> datetime:
        return started + timedelta(seconds=self.seconds)

    def describe(self) -> str:
        return f"every {self.seconds:g} s"


@dataclass(frozen=True, slots=True)
class DailyAt:
    """Once a day at the local wall-clock time ``at`` in the IANA ``zone``.

    With ``at_start`` the job also runs once when the scheduler starts: for jobs that catch
    up what was missed while the process was down (and do nothing when nothing was)."""

    at: time
    zone: str
    at_start: bool = False

    def __post_init__(self) -> None:
        if self.at.tzinfo is not None:
            raise ValueError(f"at: {self.at} must be a local time without an offset")
        try:
            ZoneInfo(self.zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"zone: unknown IANA time zone {self.zone!r}") from None

    def first(self, now: datetime) -> datetime:
        return now if self.at_start else self.next_after(now)

    def next_after(self, started: datetime) -> datetime:
        """The first local ``at`` strictly after ``started``, in UTC."""
        zone = ZoneInfo(self.zone)
        day = started.astimezone(zone).date()
        while (moment := datetime.combine(day, self.at, tzinfo=zone)) <= started:
            day += timedelta(days=1)
        return moment.astimezone(UTC)

    def describe(self) -> str:
        return f"daily at {self.at.isoformat(timespec='minutes')} {self.zone}"


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retries of a failed run: the first after ``first_s``, each next wait doubled up to
    ``max_s``, none later than ``for_s`` after the first failure of the streak nor at or
    after the job's next regular time (which then runs as usual)."""

    first_s: float
    max_s: float
    for_s: float

    def __post_init__(self) -> None:
        for name in ("first_s", "max_s", "for_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be positive, got {getattr(self, name)}")

    def retry_at(
        self, *, failed: datetime, streak_began: datetime, attempt: int, regular: datetime
    ) -> datetime | None:
        """When to retry after failure number ``attempt`` (1 for the first) of a streak that
        began at ``streak_began``, the last one at ``failed``; None: wait for ``regular``."""
        wait = min(self.first_s * 2 ** (attempt - 1), self.max_s)
        moment = failed + timedelta(seconds=wait)
        if moment >= regular or moment > streak_began + timedelta(seconds=self.for_s):
            return None
        return moment


@dataclass(frozen=True, slots=True)
class Job:
    """A named blocking callable on a timetable; ``run`` returns a JSON-able summary.
    ``retry``: when a failed run is tried again before its next regular time."""

    name: str
    timetable: Timetable
    run: Callable[[], dict[str, Any]]
    retry: Backoff | None = None


@dataclass
class JobStatus:
    """What a job did last (times in UTC). ``last_result`` is the summary of the last run if
    it succeeded; ``last_error`` (with ``last_error_at``) is the last failure, kept after
    later successes so a health check can still see it."""

    name: str
    timetable: str
    running: bool = False
    runs: int = 0  # finished runs, failures included
    failures: int = 0
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_duration_s: float | None = None
    last_ok: bool | None = None
    last_result: dict[str, Any] | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    next_run_at: datetime | None = None
    retrying: int = 0  # failures in a row now being retried; 0 when the next run is regular

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO strings."""
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in self.__dict__.items()
        }


RunListener = Callable[[JobStatus], None]


class Scheduler:
    """Runs ``jobs`` on their timetables from :meth:`start` until :meth:`stop`.

    ``on_run`` is called on the event loop after every run (success or failure) with the
    job's status, e.g. to print a line per run or to stop after a number of runs.
    """

    def __init__(self, jobs: Sequence[Job], *, on_run: RunListener | None = None) -> None:
        names = [job.name for job in jobs]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"jobs: duplicate name {name!r}")
        self.jobs = list(jobs)
        self.on_run = on_run
        self.statuses = {job.name: JobStatus(job.name, job.timetable.describe()) for job in jobs}
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start every job's loop on the running event loop."""
        self._tasks = [
            asyncio.create_task(self._loop(job, self.statuses[job.name]), name=f"job {job.name}")
            for job in self.jobs
        ]

    async def stop(self) -> None:
        """No new runs; wait for the runs in progress to finish."""
        self._stopping.set()
        busy = [status.name for status in self.statuses.values() if status.running]
        if busy:
            log.info("scheduler: waiting for %s to finish", ", ".join(busy))
        await asyncio.gather(*self._tasks)

    def status(self) -> dict[str, dict[str, Any]]:
        """Every job's status by name, JSON-ready."""
        return {name: status.as_dict() for name, status in self.statuses.items()}

    async def _loop(self, job: Job, status: JobStatus) -> None:
        due = streak_began = job.timetable.first(clock.now())
        while True:
            status.next_run_at = due
            if not await self._sleep_until(due):
                status.next_run_at = None
                return
            started = clock.now()
            await _run(job, status, started)
            streak_began = started if status.retrying == 0 else streak_began
            due = job.timetable.next_after(started)
            retry = _retry_at(job, status, streak_began, due)
            status.retrying = status.retrying + 1 if retry is not None else 0
            due = retry or due
            if self.on_run is not None:
                try:
                    self.on_run(status)
                except Exception:  # a broken listener must not stop the job
                    log.exception("scheduler: the run listener failed after %s", job.name)

    async def _sleep_until(self, due: datetime) -> bool:
        """Wait until ``due``; False if the scheduler is stopping."""
        while (wait := (due - clock.now()).total_seconds()) > 0 and not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=min(wait, MAX_SLEEP_S))
        return not self._stopping.is_set()


def _retry_at(
    job: Job, status: JobStatus, streak_began: datetime, regular: datetime
) -> datetime | None:
    """When the run that just failed is retried, or None (it succeeded, the job has no
    backoff, or the retry would come too late)."""
    if status.last_ok or job.retry is None or status.last_finished_at is None:
        return None
    moment = job.retry.retry_at(
        failed=status.last_finished_at, streak_began=streak_began,
        attempt=status.retrying + 1, regular=regular,
    )  # fmt: skip
    if moment is not None:
        log.warning("job %s: retry %d at %s", job.name, status.retrying + 1, moment.isoformat())
    return moment


async def _run(job: Job, status: JobStatus, started: datetime) -> None:
    """One run of ``job`` in a worker thread, recorded in ``status``; never raises."""
    status.running, status.last_started_at = True, started
    began = monotonic()
    try:
        result = await asyncio.to_thread(job.run)
    except Exception as exc:
        log.exception("job %s failed; it runs again %s", job.name, job.timetable.describe())
        status.failures += 1
        status.last_ok, status.last_result = False, None
        status.last_error, status.last_error_at = f"{type(exc).__name__}: {exc}", clock.now()
    else:
        status.last_ok, status.last_result = True, result
    finally:
        status.runs += 1
        status.running = False
        status.last_finished_at = clock.now()
        status.last_duration_s = round(monotonic() - began, 3)


@contextlib.asynccontextmanager
async def running_scheduler(
    jobs: Sequence[Job], *, on_run: RunListener | None = None
) -> AsyncIterator[Scheduler]:
    """A started :class:`Scheduler` for the block; stopped gracefully on exit."""
    scheduler = Scheduler(jobs, on_run=on_run)
    scheduler.start()
    try:
        yield scheduler
    finally:
        await scheduler.stop()
