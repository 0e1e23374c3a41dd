"""An agent's outcomes recorded in one batch store what recording them one by one stores."""

from __future__ import annotations

import itertools
import shutil
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from lienwatch.errors import NotFoundError
from lienwatch.followup.model import FollowupError, FollowupRefused
from lienwatch.services.followup import AgentOutcome
from lienwatch.services.servicing import run_nightly
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Task
from lienwatch.store.tables.base import Base
from tests import factories
from tests.conftest import head_sqlite
from tests.services.test_followup_engine import CATALOGUE, MORNING, service, user

LOANS = ("L1", "L2", "L3", "L4", "L5")


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """A SQLite book whose loans missed their first installment, ticked until ann's queue
    holds their calls: the file, the queued tasks' ids (most urgent first), the latest due."""
    book = tmp_path_factory.mktemp("outcomes") / "book.sqlite3"
    engine = make_engine(head_sqlite(book))
    factory = session_factory(engine)
    with transaction(factory) as session:
        user(session, "ann")
        user(session, "sue", role="supervisor")
        for ref in LOANS:
            factories.loan(session, ref)
        for day in (date(2026, 2, 15), date(2026, 2, 16)):
            run_nightly(session, CATALOGUE, as_of=day)
        engine_, _ = service(session)
        for hours in range(0, 24 * 6, 8):
            engine_.tick(at=MORNING + timedelta(hours=hours))
            tasks = engine_.queue(agent="ann")
            if len(tasks) == len(LOANS):
                break
        ids = [task.id for task in tasks]
        due = max(task.due_at for task in tasks)
    engine.dispose()
    assert len(ids) == len(LOANS)
    return book, ids, due


@pytest.fixture
def queued(book, tmp_path):
    """A copy of :func:`book` of the test's own."""
    path, ids, due = book
    copy = tmp_path / "book.sqlite3"
    shutil.copyfile(path, copy)
    return copy, ids, due


def outcomes(ids: list[int], due: datetime) -> list[AgentOutcome]:
    """A day's work on the queue: a promise, a conversation, a call refused at night (quiet
    hours), an unknown outcome (rejected, nothing stored), a second promise on the refused
    task once the day opens, a call nobody answered."""
    at = due + timedelta(hours=1)
    night = datetime.combine(at.date(), datetime.min.time(), tzinfo=UTC) + timedelta(hours=15)
    return [
        AgentOutcome(
            ids[0], at, "promise_to_pay", promised_on=at.date() + timedelta(days=3), amount=500_000
        ),
        AgentOutcome(ids[1], at + timedelta(minutes=8), "rpc", note="will pay Friday"),
        AgentOutcome(ids[2], night, "rpc"),
        AgentOutcome(ids[3], at + timedelta(minutes=16), "nonsense"),
        AgentOutcome(
            ids[2],
            night + timedelta(hours=10),
            "promise_to_pay",
            promised_on=at.date() + timedelta(days=5),
            amount=300_000,
        ),
        AgentOutcome(ids[4], night + timedelta(hours=10, minutes=8), "no_answer"),
    ]


def stored(factory) -> dict[str, list[tuple]]:
    """Every table's rows in key order."""
    with transaction(factory) as session:
        return {
            table.name: [
                tuple(row)
                for row in session.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in Base.metadata.sorted_tables
            if inspect(session.get_bind()).has_table(table.name)
        }


def record(book: Path, work: list[AgentOutcome], *, batched: bool,
           monkeypatch) -> tuple[list[str], dict[str, list[tuple]]]:  # fmt: skip
    """Record ``work`` for ann on a copy of ``book`` (in one batch, or call by call): what
    each outcome came to, and the stored rows. The generated keys of timeline entries are
    numbered alike in both runs, and the ledger's clock stands still."""
    numbers = itertools.count()
    monkeypatch.setattr("lienwatch.clock.now", lambda: datetime(2026, 3, 1, tzinfo=UTC))
    monkeypatch.setattr("lienwatch.services.timeline.uuid4",
                        lambda: uuid.UUID(int=next(numbers)))  # fmt: skip
    copy = book.with_name(f"{'batched' if batched else 'one-by-one'}.sqlite3")
    shutil.copyfile(book, copy)
    engine = make_engine(f"sqlite:///{copy}")
    factory = session_factory(engine)
    with transaction(factory) as session:
        engine_, _ = service(session)
        if batched:
            results = engine_.record_outcomes(by="ann", outcomes=work)
        else:
            results = []
            for entry in work:
                try:
                    results.append(
                        engine_.record_outcome(
                            task_id=entry.task_id,
                            by="ann",
                            at=entry.at,
                            outcome=entry.outcome,
                            promised_on=entry.promised_on,
                            amount=entry.amount,
                            note=entry.note,
                        )
                    )
                except FollowupError as error:
                    results.append(error)
    rows = stored(factory)
    engine.dispose()
    return [type(r).__name__ for r in results], rows


def test_a_batch_stores_the_rows_of_its_outcomes_recorded_one_by_one(queued, monkeypatch):
    book, ids, due = queued
    work = outcomes(ids, due)
    one_by_one, rows = record(book, work, batched=False, monkeypatch=monkeypatch)
    assert one_by_one == ["Action", "Action", "FollowupRefused", "FollowupError", "Action",
                          "Action"]  # fmt: skip
    assert len(rows["promises"]) == 2
    batched, again = record(book, work, batched=True, monkeypatch=monkeypatch)
    assert batched == one_by_one
    assert again == rows


def test_a_task_no_longer_queued_stops_the_batch(queued):
    book, ids, due = queued
    at = due + timedelta(hours=1)
    with transaction(session_factory(make_engine(f"sqlite:///{book}"))) as session:
        engine, _ = service(session)
        first, again = AgentOutcome(ids[0], at, "rpc"), AgentOutcome(ids[0], at, "no_answer")
        with pytest.raises(NotFoundError, match=f"task_id: no queued task {ids[0]}"):
            engine.record_outcomes(by="ann", outcomes=[first, again])


def test_a_refused_outcome_is_recorded_and_returned_in_its_place(queued):
    book, ids, due = queued
    night = datetime.combine(due.date(), datetime.min.time(), tzinfo=UTC) + timedelta(hours=16)
    with transaction(session_factory(make_engine(f"sqlite:///{book}"))) as session:
        engine, _ = service(session)
        [refused] = engine.record_outcomes(by="ann", outcomes=[AgentOutcome(ids[0], night, "rpc")])
        assert isinstance(refused, FollowupRefused) and refused.rule == "quiet_hours"
        assert session.get(Task, ids[0]).status == "queued"
