"""Due follow-up steps in batches: ``run_due_steps`` honours its limit, oldest due first; the
tick job drains a backlog batch by batch; two workers on one PostgreSQL database share a pool
of due steps and execute each exactly once; a batch that fails re-sends with the same keys."""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from lienwatch.config import FollowupSettings, Settings
from lienwatch.followup.model import FollowupError, TriggerKind
from lienwatch.jobs import tick_and_drain
from lienwatch.services.followup import FollowupService, TickReport
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Action, ContactAttempt, LedgerEntry, Loan, Task, Trigger
from tests import factories
from tests.conftest import postgres_database
from tests.receivers import SmsGateway
from tests.services.test_followup_engine import service

CATALOGUE = ProductCatalogue()
MORNING = datetime(2026, 2, 17, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai
OPENING = datetime(2026, 2, 17, 0, 0, tzinfo=UTC)  # 08:00 there: contact hours begin
SECRET = "s3cret-shared-with-the-sms-gateway"
QUIET = date(2026, 1, 1)  # loans disbursed then have no routine check due on MORNING
REVIEW_DUE = date(2026, 1, 15)  # ... and these a tracker review (30 days), raised by the tick


def settings_for(url: str, gateway: SmsGateway, step_batch: int) -> Settings:
    providers = {"sms": {"provider": "webhook", "url": gateway.url, "secret": SECRET}}
    return Settings(
        database_url=url, followup=FollowupSettings(step_batch=step_batch, providers=providers)
    )


def due_pool(
    factory: sessionmaker[Session], settings: Settings, *, texts: int, reviews: int = 0,
    review_due: int = 0,
) -> None:  # fmt: skip
    """``texts`` loans whose missed-installment text is due (one a minute from 08:00 local,
    raised newest first, so ids run against due order); the first ``reviews`` of them also
    have a payment-anomaly review (an agent step) due; the last ``review_due`` are old enough
    for the tick to raise a tracker review (a GPS check) on MORNING."""
    with transaction(factory) as session:
        engine = FollowupService.from_settings(
            session, settings.followup, time_zone=settings.time_zone, catalogue=CATALOGUE
        )
        loans = [
            factories.loan(
                session, f"L{n}", disbursed_on=REVIEW_DUE if n >= texts - review_due else QUIET
            )
            for n in range(texts)
        ]
        for n, loan in reversed(list(enumerate(loans))):
            engine.raise_trigger(
                loan_id=loan.id, kind=TriggerKind.MISSED_INSTALLMENT, source_key=f"test:{n}",
                anchor_at=OPENING + timedelta(minutes=n % 30), at=OPENING,
            )  # fmt: skip
        for n, loan in enumerate(loans[:reviews]):
            engine.raise_trigger(
                loan_id=loan.id, kind=TriggerKind.PAYMENT_ANOMALY, source_key=f"review:{n}",
                anchor_at=OPENING, at=OPENING,
            )  # fmt: skip


def text_keys(factory: sessionmaker[Session]) -> list[str]:
    with transaction(factory) as session:
        return list(session.scalars(select(Action.idempotency_key).where(Action.kind == "sms")))


def test_a_batch_takes_at_most_its_limit_oldest_due_first(db_session):
    engine, gateway = service(db_session)
    triggers = []
    for n in range(5):
        loan = factories.loan(db_session, f"L{n}", disbursed_on=QUIET)
        triggers.append(
            engine.raise_trigger(
                loan_id=loan.id,
                kind=TriggerKind.MISSED_INSTALLMENT,
                source_key=f"test:{n}",
                anchor_at=OPENING + timedelta(minutes=10 - 2 * n),
                at=OPENING,
            )
        )
    oldest = sorted(triggers, key=lambda t: t.next_due_at)
    with pytest.raises(FollowupError, match="limit: must be at least 1, got 0"):
        engine.run_due_steps(at=MORNING, limit=0)
    first = engine.run_due_steps(at=MORNING, limit=2)
    assert (first.steps, first.executed) == (2, 2)
    texted = [t for t in triggers if t.step == 1]
    assert sorted(texted, key=lambda t: t.id) == sorted(oldest[:2], key=lambda t: t.id)
    rest = engine.run_due_steps(at=MORNING, limit=10)
    assert (rest.steps, rest.executed) == (3, 3) and len(gateway.sent) == 5
    assert engine.run_due_steps(at=MORNING, limit=10).steps == 0
    # The tick runs the same batches: nothing is left for it.
    assert engine.tick(at=MORNING, step_limit=1).steps == 0


def test_the_tick_job_drains_a_backlog_in_batches_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'lienwatch.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = session_factory(engine)
    with SmsGateway(delay=0).running() as gateway:
        settings = settings_for(url, gateway, step_batch=2)
        due_pool(factory, settings, texts=5)
        summary = tick_and_drain(factory, settings, catalogue=CATALOGUE, at=MORNING)
        # The tick's own batch (2), a full batch (2), a short one (1), an empty one: it stops.
        assert (summary["batches"], summary["steps"], summary["executed"]) == (3, 5, 5)
        assert summary["skipped"] == 0
        assert sorted(gateway.keys) == sorted(text_keys(factory)) and len(gateway.keys) == 5
        again = tick_and_drain(factory, settings, catalogue=CATALOGUE, at=MORNING)
        assert (again["batches"], again["steps"]) == (0, 0) and len(gateway.keys) == 5
    engine.dispose()


def step_rows(factory: sessionmaker[Session]) -> dict[str, list]:
    """What batches of steps wrote, by content: ids, the senders' receipts and the random
    part of generated action keys aside."""
    with transaction(factory) as session:
        ref = dict(session.execute(select(Loan.id, Loan.ref)).all())
        key = {i: stable(k) for i, k in session.execute(select(Action.id, Action.idempotency_key))}
        actions = select(Action.idempotency_key, Action.kind, Action.outcome, Action.performed_at,
                         Action.note, Action.details["requested"].as_string())  # fmt: skip
        triggers = select(Trigger.source_key, Trigger.step, Trigger.next_due_at,
                          Trigger.deadline_at, Trigger.first_action_at, Trigger.resolved_at)
        tasks = select(Task.key, Task.channel, Task.priority, Task.due_at, Task.status)
        return {
            "actions": sorted((stable(k), *rest) for k, *rest in session.execute(actions)),
            "attempts": sorted((ref[a.loan_id], a.channel, a.at, a.recipient, a.agency,
                                a.allowed, a.rule, a.connected, a.conversation, a.consented,
                                key.get(a.action_id))
                               for a in session.scalars(select(ContactAttempt))),
            "triggers": sorted(session.execute(triggers).all()),
            "tasks": sorted(session.execute(tasks).all()),
            "ledger": sorted(stable(b) for b in session.scalars(select(LedgerEntry.body))),
        }


def stable(text: str) -> str:
    """``text`` without the random tail of generated action keys (``…T080000:<16 hex>``)."""
    return re.sub(r"(T\d{6}):[0-9a-f]{16}", r"\1", text)


@pytest.mark.postgres
def test_batches_of_steps_write_the_same_rows_on_postgresql_and_sqlite(tmp_path):
    """The step batches' rows (actions with their ledger entries, the contact attempts linked
    to their actions, the triggers moved on, the queued tasks) are the same on both
    backends, whose claims read the ids differently (``= ANY`` against IN lists)."""
    written = {}
    with postgres_database(f"lienwatch_same_rows_{os.getpid()}", migrated=True) as pg_url:
        for url in (pg_url, f"sqlite:///{tmp_path / 'lienwatch.sqlite3'}"):
            engine = make_engine(url)
            migrate.upgrade(engine)
            factory = session_factory(engine)
            with SmsGateway(delay=0).running() as gateway:  # each its own: receipts from 1
                settings = settings_for(url, gateway, step_batch=4)
                due_pool(factory, settings, texts=9, reviews=3, review_due=3)
                summary = tick_and_drain(factory, settings, catalogue=CATALOGUE, at=MORNING)
            assert (summary["executed"], summary["queued"]) == (12, 3)
            written[engine.dialect.name] = step_rows(factory)
            engine.dispose()
    postgres, sqlite = written["postgresql"], written["sqlite"]
    assert len(postgres["attempts"]) == 9 and all(a[-1] for a in postgres["attempts"])
    for table in postgres:
        assert postgres[table] == sqlite[table], table


@pytest.mark.postgres
def test_two_workers_share_a_pool_of_due_steps_and_execute_each_once():
    texts, reviews, review_due = 30, 6, 6
    with (
        postgres_database(f"lienwatch_batches_{os.getpid()}") as url,
        SmsGateway(delay=0.02).running() as gateway,
    ):
        engine = make_engine(url)
        migrate.upgrade(engine)
        factory = session_factory(engine)
        settings = settings_for(url, gateway, step_batch=4)
        due_pool(factory, settings, texts=texts, reviews=reviews, review_due=review_due)
        start = threading.Barrier(2)
        summaries: list[dict] = []
        failures: list[BaseException] = []

        def worker() -> None:
            start.wait()
            try:
                summaries.append(tick_and_drain(factory, settings, catalogue=CATALOGUE, at=MORNING))
            except BaseException as exc:  # reported below, with the other worker's result
                failures.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not failures and len(summaries) == 2
        # One ticked (it raised the tracker reviews), the other skipped or ticked after it.
        assert sum(s["raised"].get("tracker_review", 0) for s in summaries) == review_due
        assert all(s["steps"] > 0 for s in summaries), summaries  # both did part of the work
        assert sum(s["steps"] for s in summaries) == texts + reviews + review_due
        assert sum(s["executed"] for s in summaries) == texts + review_due
        assert sum(s["queued"] for s in summaries) == reviews
        # Every text went out once, under the key of the one action that records it.
        keys = text_keys(factory)
        assert len(keys) == texts and Counter(gateway.keys) == Counter(keys)
        with transaction(factory) as session:
            checks = select(func.count()).where(Action.kind == "gps_check")
            assert session.scalar(checks) == review_due
            per_trigger = select(Task.trigger_id, func.count()).group_by(Task.trigger_id)
            assert sorted(n for _, n in session.execute(per_trigger)) == [1] * reviews
            due = select(func.count()).where(
                Trigger.resolved_at.is_(None), Trigger.next_due_at <= MORNING
            )
            assert session.scalar(due) == reviews  # only the reviews wait, in the queue
        engine.dispose()


@pytest.mark.postgres
def test_a_failed_batch_is_retried_with_the_same_idempotency_keys():
    with postgres_database(f"lienwatch_retry_{os.getpid()}") as url:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")

        def lose_the_connection(number: int) -> None:
            """The first text arrives: the worker's database connection dies before its
            batch commits (the worker is idle in its transaction, waiting for us)."""
            if number == 1:
                with admin.connect() as connection:
                    connection.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                            "AND state = 'idle in transaction'"
                        )
                    )

        with SmsGateway(delay=0, on_request=lose_the_connection).running() as gateway:
            engine = make_engine(url)
            migrate.upgrade(engine)
            factory = session_factory(engine)
            settings = settings_for(url, gateway, step_batch=4)
            due_pool(factory, settings, texts=6)
            with pytest.raises(OperationalError):
                tick_and_drain(factory, settings, catalogue=CATALOGUE, at=MORNING)
            assert text_keys(factory) == []  # the failed batch undid itself
            lost = list(gateway.keys)
            summary = tick_and_drain(factory, settings, catalogue=CATALOGUE, at=MORNING)
        assert summary["executed"] == 6 and lost
        keys = text_keys(factory)
        # Re-sent under the same keys: a gateway that dedups by key delivers each text once.
        assert set(lost) <= set(keys) and Counter(gateway.keys) == Counter(keys + lost)
        engine.dispose()
        admin.dispose()


@pytest.mark.postgres
def test_a_trigger_raised_while_a_batch_closes_its_case_opens_a_new_case():
    with postgres_database(f"lienwatch_close_race_{os.getpid()}") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        factory = session_factory(engine)
        with transaction(factory) as session:
            loan_id = factories.loan(session, disbursed_on=QUIET).id
            service(session)[0].raise_trigger(
                loan_id=loan_id, kind=TriggerKind.PRE_DUE, source_key="pre_due:1",
                anchor_at=OPENING, at=OPENING,
            )  # fmt: skip
        raised: list[Trigger | None] = []

        def raise_anomaly() -> None:
            with transaction(factory) as session:
                raised.append(
                    service(session)[0].raise_trigger(
                        loan_id=loan_id,
                        kind=TriggerKind.PAYMENT_ANOMALY,
                        source_key="reversal:1",
                        anchor_at=MORNING,
                        at=MORNING,
                    )
                )

        batch = factory()
        try:
            with batch.begin():
                # The reminder is the case's last step: the batch closes the case ...
                assert service(batch)[0].run_due_steps(at=MORNING, limit=10).cases_closed == 1
                # ... while a payment reversal is raised on the loan: it waits for the batch.
                other = threading.Thread(target=raise_anomaly)
                other.start()
                wait_for_a_lock_wait(engine)
            other.join(timeout=10)
        finally:
            batch.close()
        [trigger] = raised
        assert trigger is not None
        with transaction(factory) as session:
            cases = session.execute(
                text("SELECT id, status FROM cases WHERE loan_id = :loan ORDER BY id"),
                {"loan": loan_id},
            ).all()
        assert [status for _, status in cases] == ["closed", "new"]
        assert trigger.case_id == cases[1].id  # not the case the batch closed
        engine.dispose()


@pytest.mark.postgres
def test_the_watchdog_waits_for_a_batch_doing_the_step_at_risk():
    with postgres_database(f"lienwatch_watch_race_{os.getpid()}") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        factory = session_factory(engine)
        with transaction(factory) as session:
            loan_id = factories.loan(session, disbursed_on=QUIET).id
            check = service(session)[0].raise_trigger(
                loan_id=loan_id, kind=TriggerKind.TRACKER_REVIEW, source_key="review:1",
                anchor_at=OPENING, at=OPENING,
            )  # fmt: skip
            assert check is not None
            at_risk = check.deadline_at - timedelta(hours=1)  # within the 2 h lead
        reports: list[TickReport] = []

        def tick() -> None:
            with transaction(factory) as session:
                reports.append(service(session)[0].tick(at=at_risk))

        batch = factory()
        try:
            with batch.begin():
                assert service(batch)[0].run_due_steps(at=at_risk, limit=10).executed == 1
                other = threading.Thread(target=tick)
                other.start()
                wait_for_a_lock_wait(engine)
            other.join(timeout=10)
        finally:
            batch.close()
        [report] = reports
        # The check was done when the watchdog looked: nothing to escalate or breach.
        assert (report.escalated, report.breached, report.skipped) == (0, 0, 0)
        with transaction(factory) as session:
            kinds = select(Action.kind).where(Action.kind.in_(["escalation", "gps_check"]))
            assert list(session.scalars(kinds)) == ["gps_check"]
        engine.dispose()


def wait_for_a_lock_wait(engine) -> None:
    """Until a session of the engine's database waits for a row lock (20 s at most)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 20
    with engine.connect() as connection:
        # pg_stat_activity is a snapshot taken once per transaction: look in a new one each time.
        while not connection.execute(query).scalar():
            connection.rollback()
            assert time.monotonic() < deadline, "nobody waited for the batch's locks"
            time.sleep(0.02)
