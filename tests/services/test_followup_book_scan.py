"""The follow-up tick reads the whole book once per business day and snapshot (the day's book
scan), then only what changed: loans booked since, triggers raised since, triggers of alerts,
loans closed by hand (``services/followup/book_scan.py``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from lienwatch.services.followup.book_scan import BOOK_SCAN
from lienwatch.services.followup.intake import Intake
from lienwatch.services.servicing import run_nightly
from lienwatch.store.repositories.loans import LoanRepository
from lienwatch.store.tables import Event, Trigger
from tests import factories
from tests.services.test_followup_engine import CATALOGUE, MORNING, service

GO_LIVE = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
DISBURSED = date(2026, 5, 2)  # the first tracker review falls due on 2026-06-01


def reviews(session) -> list[str]:
    return list(session.scalars(select(Trigger.source_key)
                                .where(Trigger.kind == "tracker_review").order_by(Trigger.id)))


def scans(session) -> list[str]:
    return list(session.scalars(select(Event.key).where(Event.kind == BOOK_SCAN)
                                .order_by(Event.id)))  # fmt: skip


def test_later_ticks_of_the_day_read_only_what_changed_and_still_follow_it_up(
    db_session, monkeypatch
):
    looked: list[int | None] = []
    live_loans = Intake._live_loans

    def spy(self, today, *, after=None):
        looked.append(after)
        return live_loans(self, today, after=after)

    monkeypatch.setattr(Intake, "_live_loans", spy)
    first = factories.loan(db_session, "L1", disbursed_on=DISBURSED)
    engine, _ = service(db_session)
    engine.tick(at=GO_LIVE)
    assert reviews(db_session) == [f"tracker_review:{first.id}:1"]
    assert scans(db_session) == [f"{BOOK_SCAN}:2026-06-01:-"]
    assert looked[-1] is None  # the day's book scan: every live loan

    second = factories.loan(db_session, "L2", disbursed_on=DISBURSED)  # booked after the scan
    engine.tick(at=GO_LIVE + timedelta(hours=1))
    assert looked[-1] == first.id  # only the loans booked since
    assert reviews(db_session) == [f"tracker_review:{first.id}:1",
                                   f"tracker_review:{second.id}:1"]  # fmt: skip
    assert len(scans(db_session)) == 1

    engine.tick(at=GO_LIVE + timedelta(days=1))  # a new day: the book is scanned again
    assert scans(db_session)[-1] == f"{BOOK_SCAN}:2026-06-02:-" and looked[-1] is None


def test_a_loan_closed_by_hand_after_the_scan_has_its_triggers_resolved(db_session):
    missed = factories.loan(db_session)  # misses its installment of 2026-02-15
    for day in (date(2026, 2, 15), date(2026, 2, 16)):
        run_nightly(db_session, CATALOGUE, as_of=day)
    engine, _ = service(db_session)
    engine.tick(at=MORNING)
    triggers = list(db_session.scalars(select(Trigger).where(
        Trigger.loan_id == missed.id, Trigger.resolved_at.is_(None))))  # fmt: skip
    assert [t.kind for t in triggers] == ["missed_installment"]
    engine.tick(at=MORNING + timedelta(days=1))  # the next day's scan: the trigger is older
    assert len(scans(db_session)) == 2 and triggers[0].resolved_at is None
    LoanRepository(db_session).set_operator_status(missed, "settled")
    engine.tick(at=MORNING + timedelta(days=1, hours=1))
    assert {t.resolution for t in triggers} == {"loan settled"}
    assert len(scans(db_session)) == 2
