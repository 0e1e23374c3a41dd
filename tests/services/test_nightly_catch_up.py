"""The nightly run's catch-up: missing days oldest first, bounded, never a day twice; on
PostgreSQL one worker at a time."""

from __future__ import annotations

import os
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from lienwatch.services.servicing import run_next_missing_day, run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import LoanSnapshot
from tests import factories
from tests.conftest import postgres_database

CATALOGUE = ProductCatalogue()
# Later than any day other tests record in the shared PostgreSQL database, so the latest
# snapshot is this test's own.
SEEDED = date(2031, 2, 20)


def catch_up(session, *, through: date, max_days: int) -> list[date]:
    """Run missing days until none is left, as the nightly job does; the days run."""
    days: list[date] = []
    while True:
        after = days[-1] if days else None
        step = run_next_missing_day(
            session, CATALOGUE, through=through, max_days=max_days, after=after
        )
        if step.day is None:
            return days
        assert step.counts is not None and step.counts.loans >= 1 and not step.busy
        days.append(step.day)


def recorded_days(session) -> list[date]:
    return list(session.scalars(select(LoanSnapshot.as_of).distinct().order_by(LoanSnapshot.as_of)))


def test_missing_days_run_oldest_first_at_most_max_days_and_never_twice(db_session):
    factories.loan(db_session)
    run_nightly(db_session, CATALOGUE, as_of=SEEDED)
    through = SEEDED + timedelta(days=9)
    last_three = [through - timedelta(days=n) for n in (2, 1, 0)]
    assert catch_up(db_session, through=through, max_days=3) == last_three
    assert catch_up(db_session, through=through, max_days=3) == []  # recorded: not again
    assert recorded_days(db_session)[-4:] == [SEEDED, *last_three]
    # A short outage is caught up whole.
    assert catch_up(db_session, through=through + timedelta(days=2), max_days=3) == [
        through + timedelta(days=1), through + timedelta(days=2),
    ]  # fmt: skip


def test_a_book_without_snapshots_misses_only_the_last_day(db_session):
    factories.loan(db_session)
    through = date(2026, 3, 10)
    assert catch_up(db_session, through=through, max_days=7) == [through]


def test_max_days_must_be_positive(db_session):
    with pytest.raises(ValueError, match="max_days: must be at least 1, got 0"):
        run_next_missing_day(db_session, CATALOGUE, through=date(2026, 3, 1), max_days=0)


@pytest.mark.postgres
def test_a_second_worker_is_busy_while_the_first_runs_a_day_and_then_takes_the_next():
    with postgres_database(f"lienwatch_nightly_{os.getpid()}") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        factory = session_factory(engine)
        with transaction(factory) as session:
            factories.loan(session)
            run_nightly(session, CATALOGUE, as_of=date(2026, 3, 1))
        through = date(2026, 3, 3)
        first, second = factory(), factory()
        try:
            with first.begin():
                mine = run_next_missing_day(first, CATALOGUE, through=through, max_days=7)
                with second.begin():
                    other = run_next_missing_day(second, CATALOGUE, through=through, max_days=7)
            assert mine.day == date(2026, 3, 2) and not mine.busy
            assert (other.day, other.busy) == (None, True)
            # Committed: the second worker takes the next missing day, not the same one.
            with second.begin():
                other = run_next_missing_day(second, CATALOGUE, through=through, max_days=7)
            assert (other.day, other.busy) == (date(2026, 3, 3), False)
        finally:
            first.close()
            second.close()
        with transaction(factory) as session:
            assert recorded_days(session) == [date(2026, 3, n) for n in (1, 2, 3)]
        engine.dispose()
