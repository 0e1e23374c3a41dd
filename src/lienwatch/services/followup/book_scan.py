"""The day's book scan: the follow-up checks that read the whole open book (routine checks,
pre-due reminders and LTV breaches from the snapshot, the coverage check, the resolution of
triggers by the snapshot and the loans' statuses) run in the first tick of each business day
and again when a nightly run brings a new snapshot. The scan is recorded as an ``events`` row
keyed by the day and the snapshot day; the ticks after it read only what is new or changed
since: loans and triggers with greater ids, triggers of alerts, loans given a final status by
hand. So a tick costs what is due or changed, not the open book (issue 20).

A loan booked in a transaction that commits after a scan read a greater id is caught by the
next day's scan (routine checks are raised up to seven days late, ``CATCH_UP_DAYS``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from lienwatch.store.followup import FINAL_LOAN_STATUSES
from lienwatch.store.repositories.common import insert_ignoring_duplicates
from lienwatch.store.tables import Event, Loan, Trigger

BOOK_SCAN = "followup_book_scan"


@dataclass(frozen=True, slots=True)
class BookScan:
    """A book scan: the greatest loan and trigger ids when it began."""

    key: str
    loan_id: int
    trigger_id: int

    def changed(self, query: Select) -> list[Select]:
        """``query`` (over open triggers) narrowed to the triggers that may have changed since
        the scan, as several queries each served by an index."""
        loans = select(Loan.id).where(or_(
            Loan.id > self.loan_id,
            and_(Loan.operator_status.is_not(None), Loan.status.in_(FINAL_LOAN_STATUSES)),
        ))  # fmt: skip
        return [
            query.where(Trigger.id > self.trigger_id),
            query.where(Trigger.alert_id.is_not(None)),
            query.where(Trigger.loan_id.in_(loans)),
        ]


def scan_key(today: date, snapshot_day: date | None) -> str:
    return f"{BOOK_SCAN}:{today.isoformat()}:{snapshot_day.isoformat() if snapshot_day else '-'}"


def last_scan(session: Session, key: str) -> BookScan | None:
    """The book scan recorded under ``key``, None when none ran yet."""
    payload = session.scalar(select(Event.payload).where(Event.key == key))
    return None if payload is None else BookScan(key, payload["loan_id"], payload["trigger_id"])


def begin_scan(session: Session, key: str) -> BookScan:
    """A book scan beginning now (to record with :func:`record_scan` once it is done)."""
    loan_id = session.scalar(select(func.coalesce(func.max(Loan.id), 0)))
    trigger_id = session.scalar(select(func.coalesce(func.max(Trigger.id), 0)))
    return BookScan(key, int(loan_id or 0), int(trigger_id or 0))


def record_scan(session: Session, scan: BookScan, *, at: datetime) -> None:
    insert_ignoring_duplicates(session, Event.__table__, [{
        "kind": BOOK_SCAN, "key": scan.key, "occurred_at": at, "created_at": at,
        "payload": {"loan_id": scan.loan_id, "trigger_id": scan.trigger_id},
    }])  # fmt: skip
