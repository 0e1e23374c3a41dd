"""Positions kept for a time: ``lienwatch positions purge`` removes those older than a cut;
``lienwatch positions partition`` converts an unpartitioned PostgreSQL table online.

On PostgreSQL the months wholly before the cut are month partitions dropped whole
(``store/partitions.py``); the rest (the cut's own month, the default partition, and every
position on SQLite) is deleted in batches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from lienwatch.ledger.entries import EntryKind
from lienwatch.services.ledger import record
from lienwatch.store.partitions import (
    Conversion,
    abandon_conversion,
    conversion,
    copy_batch,
    drop_oldest_partition_before,
    ensure_partitions_ahead,
    finish_conversion,
    start_conversion,
)
from lienwatch.store.repositories import PositionRepository

#: Positions deleted per transaction: short transactions, short locks.
PURGE_BATCH = 10_000
#: Positions copied per transaction by the online conversion.
PARTITION_BATCH = 50_000


def drop_partition_before(session: Session, *, before: datetime) -> tuple[str, int] | None:
    """Drop the oldest month partition wholly before ``before`` (PostgreSQL): (its name, the
    positions it held), None when no such partition is left. The caller commits each drop and
    calls again until None, then deletes the rest with :func:`purge_positions_batch`."""
    return drop_oldest_partition_before(session, before)


def purge_positions_batch(session: Session, *, before: datetime, limit: int = PURGE_BATCH) -> int:
    """Delete one batch of positions fixed before ``before``; return how many went. The
    caller commits each batch and calls again until a batch comes back smaller than
    ``limit``, then records the purge (:func:`record_purge`)."""
    return PositionRepository(session).delete_before(before, limit=limit)


def record_purge(
    session: Session,
    *,
    before: datetime,
    deleted: int,
    at: datetime,
    by: str | None,
    partitions: list[str] | None = None,
) -> None:
    """Record in the ledger that the positions fixed before ``before`` were purged (and
    which month partitions were dropped for it)."""
    data: dict[str, object] = {"before": before.isoformat(), "deleted": deleted}
    if partitions:
        data["partitions_dropped"] = partitions
    record(session, EntryKind.POSITIONS_PURGED, subject="positions", at=at, by=by, data=data)


def prepare_partitions(session: Session, *, at: datetime) -> list[str]:
    """Make the month partitions of ``at``'s month and the next ones (PostgreSQL; nothing on
    SQLite); return those made. The ``position_partitions`` job calls it daily."""
    return ensure_partitions_ahead(session, at=at)


def partitioning(session: Session, *, at: datetime, restart: bool = False) -> Conversion:
    """The online conversion of an unpartitioned ``positions`` (PostgreSQL), started if none
    is under way (``restart``: the one under way dropped first); ConflictError when the table
    is partitioned already. Then the caller commits, copies with :func:`partition_batch`
    until :attr:`Conversion.copied`, and swaps with :func:`finish_partitioning`, each in a
    transaction of its own."""
    if restart:
        abandon_conversion(session)
    return conversion(session) or start_conversion(session, at=at)


def partition_batch(session: Session, *, rows: int = PARTITION_BATCH) -> Conversion:
    """Copy one batch of the rows written before the conversion started."""
    return copy_batch(session, rows=rows)


def finish_partitioning(session: Session) -> int:
    """Swap the partitioned copy in (a short exclusive lock); return the rows it holds."""
    return finish_conversion(session)
