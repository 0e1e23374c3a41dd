"""Positions kept for a time: ``lienwatch positions purge`` deletes those older than a cut."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from lienwatch.ledger.entries import EntryKind
from lienwatch.services.ledger import record
from lienwatch.store.repositories import PositionRepository

#: Positions deleted per transaction: short transactions, short locks.
PURGE_BATCH = 10_000


def purge_positions_batch(session: Session, *, before: datetime, limit: int = PURGE_BATCH) -> int:
    """Delete one batch of positions fixed before ``before``; return how many went. The
    caller commits each batch and calls again until a batch comes back smaller than
    ``limit``, then records the purge (:func:`record_purge`)."""
    return PositionRepository(session).delete_before(before, limit=limit)


def record_purge(
    session: Session, *, before: datetime, deleted: int, at: datetime, by: str | None
) -> None:
    """Record in the ledger that the positions fixed before ``before`` were purged."""
    record(session, EntryKind.POSITIONS_PURGED, subject="positions", at=at, by=by,
           data={"before": before.isoformat(), "deleted": deleted})  # fmt: skip
