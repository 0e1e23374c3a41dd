"""The scheduler's jobs: the follow-up tick and the nightly servicing run.

Each job is a blocking callable for :class:`lienwatch.scheduling.Job` that opens its own
transactions, so ``lienwatch serve``, ``lienwatch worker`` and ``lienwatch followup run`` run
the same code. Both are safe with several workers on one PostgreSQL database: the tick and the
nightly run each hold an advisory lock (the others skip), due steps are claimed with
``SKIP LOCKED``, and every outbound message carries an idempotency key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from lienwatch.config import Settings
from lienwatch.domain.calendar import ended_business_day
from lienwatch.scheduling import DailyAt, Every, Job
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import transaction
from lienwatch.store.followup import FollowupService
from lienwatch.store.servicing import run_next_missing_day

FOLLOWUP_TICK = "followup_tick"
NIGHTLY = "nightly"

Summary = dict[str, Any]


def followup_tick(factory: sessionmaker[Session], settings: Settings) -> Callable[[], Summary]:
    """One follow-up tick at the current time in its own transaction; returns the tick report.

    The strategy, providers and products are checked once here, so a bad configuration
    stops the command at start with one line instead of failing every tick."""
    catalogue = ProductCatalogue.from_tables(settings.products)
    with factory() as session:  # builds the strategy and providers; touches no table
        FollowupService.from_settings(session, settings.followup, catalogue=catalogue)

    def tick() -> Summary:
        with transaction(factory) as session:
            service = FollowupService.from_settings(session, settings.followup, catalogue=catalogue)
            return service.tick(now=datetime.now(UTC)).as_dict()

    return tick


def nightly_run(factory: sessionmaker[Session], settings: Settings) -> Callable[[], Summary]:
    """The nightly servicing run for every missing business day up to yesterday (in
    ``time_zone``), oldest first, one transaction per day; returns the days it ran.

    At most ``[scheduler] nightly_catch_up_days`` days are caught up after downtime. With
    several workers on PostgreSQL each day is run by one of them (``busy``: another worker
    held the run when this one looked)."""
    catalogue = ProductCatalogue.from_tables(settings.products)

    def run() -> Summary:
        through = ended_business_day(datetime.now(UTC), settings.time_zone)
        days: list[str] = []
        bucket_changes = status_changes = 0
        last: date | None = None
        while True:
            with transaction(factory) as session:
                step = run_next_missing_day(
                    session, catalogue, through=through, after=last,
                    max_days=settings.scheduler.nightly_catch_up_days,
                    workers=settings.servicing.workers,
                )  # fmt: skip
            if step.day is None or step.counts is None:
                break
            last = step.day
            days.append(step.day.isoformat())
            bucket_changes += step.counts.bucket_changes
            status_changes += step.counts.status_changes
        return {
            "through": through.isoformat(), "days": days, "bucket_changes": bucket_changes,
            "status_changes": status_changes, "busy": step.busy,
        }  # fmt: skip

    return run


def scheduler_jobs(factory: sessionmaker[Session], settings: Settings) -> list[Job]:
    """The jobs of ``serve`` and ``worker``: the follow-up tick every ``followup_tick_s``
    and the nightly run at ``nightly_at`` local time (and once at start, to catch up)."""
    scheduler = settings.scheduler
    return [
        Job(FOLLOWUP_TICK, Every(scheduler.followup_tick_s), followup_tick(factory, settings)),
        Job(
            NIGHTLY,
            DailyAt(scheduler.nightly_at, settings.time_zone, at_start=True),
            nightly_run(factory, settings),
        ),
    ]
