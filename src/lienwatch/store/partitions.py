"""Positions partitioned by month on PostgreSQL (declarative range partitioning on ``fix_time``).

``positions`` is the partitioned parent; each UTC month is a partition ``positions_pYYYYMM``
and ``positions_default`` takes a fix of a month with no partition yet (a fix is never refused
for want of one). Partitions are made ahead of time by the ``position_partitions`` job and
before a bulk load for the months it covers; a month made while the default partition holds
some of its fixes takes them over. Old months are dropped whole by ``lienwatch positions
purge`` (detached, then dropped: no row is deleted one by one). SQLite keeps one table.

The parent's primary key is (id, fix_time): a unique key of a partitioned table must hold the
partition key. The ORM keeps ``id`` as the key (ids come from one sequence, unique anyway).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from lienwatch.store.tables import Position

PARENT = Position.__tablename__
DEFAULT = f"{PARENT}_default"
#: Months made ahead of the current one, so writes never fall into the default partition.
MONTHS_AHEAD = 2
#: How long detaching or attaching a partition waits for the parent's lock before giving up
#: (and the command failing with nothing changed) rather than queueing every writer behind it.
LOCK_TIMEOUT = "5s"
PARTITIONS_LOCK = 0x6C777074  # making partitions, one process at a time ("lwpt")
_NAME = re.compile(rf"{PARENT}_p(\d{{4}})(\d{{2}})")


@dataclass(frozen=True, slots=True)
class MonthPartition:
    name: str
    month: date  # the first day of its month

    @property
    def starts(self) -> datetime:
        return datetime.combine(self.month, datetime.min.time(), tzinfo=UTC)

    @property
    def ends(self) -> datetime:
        return datetime.combine(next_month(self.month), datetime.min.time(), tzinfo=UTC)


def month_of(moment: datetime | date) -> date:
    return date(moment.year, moment.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def months(first: date, last: date) -> list[date]:
    """The first days of the months from ``first``'s to ``last``'s, both included."""
    found, month = [], month_of(first)
    while month <= month_of(last):
        found.append(month)
        month = next_month(month)
    return found


def partition_name(month: date) -> str:
    return f"{PARENT}_p{month:%Y%m}"


def is_partitioned(session: Session) -> bool:
    """Whether ``positions`` is partitioned here (PostgreSQL from migration 0029 on)."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    kind = session.scalar(text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:t)"),
                          {"t": PARENT})  # fmt: skip
    return kind == "p"


def month_partitions(session: Session) -> list[MonthPartition]:
    """The month partitions of ``positions``, oldest first (the default partition aside)."""
    names = session.scalars(
        text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
             "WHERE i.inhparent = to_regclass(:t)"), {"t": PARENT}
    )  # fmt: skip
    found = []
    for name in names:
        if match := _NAME.fullmatch(name):
            found.append(MonthPartition(name, date(int(match[1]), int(match[2]), 1)))
    return sorted(found, key=lambda p: p.month)


def ensure_month_partitions(session: Session, first: date, last: date) -> list[str]:
    """Make the missing month partitions from ``first``'s month to ``last``'s; return their
    names. Nothing on SQLite. A month's fixes already in the default partition move into
    its new partition in the same transaction (the caller's)."""
    if not is_partitioned(session):
        return []
    wanted = months(first, last)
    have = {p.month for p in month_partitions(session)}
    if all(month in have for month in wanted):
        return []
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PARTITIONS_LOCK})
    have = {p.month for p in month_partitions(session)}  # another process may have made them
    made = []
    for month in wanted:
        if month not in have:
            _attach_month(session, MonthPartition(partition_name(month), month))
            made.append(partition_name(month))
    return made


def ensure_partitions_ahead(session: Session, *, at: datetime) -> list[str]:
    """The partitions of ``at``'s month and the :data:`MONTHS_AHEAD` after it."""
    month = month_of(at.astimezone(UTC))
    last = month
    for _ in range(MONTHS_AHEAD):
        last = next_month(last)
    return ensure_month_partitions(session, month, last)


def _attach_month(session: Session, partition: MonthPartition) -> None:
    bounds = {"lo": partition.starts, "hi": partition.ends}
    session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    session.execute(text(f"CREATE TABLE {partition.name} (LIKE {PARENT} INCLUDING DEFAULTS)"))
    session.execute(
        text(f"WITH moved AS (DELETE FROM {DEFAULT} WHERE fix_time >= :lo AND fix_time < :hi "
             f"RETURNING *) INSERT INTO {partition.name} SELECT * FROM moved"), bounds
    )  # fmt: skip
    # the bounds as literals: ATTACH takes no parameters
    session.execute(
        text(f"ALTER TABLE {PARENT} ATTACH PARTITION {partition.name} FOR VALUES "
             f"FROM ('{partition.starts.isoformat()}') TO ('{partition.ends.isoformat()}')")
    )  # fmt: skip


def drop_oldest_partition_before(session: Session, before: datetime) -> tuple[str, int] | None:
    """Detach and drop the oldest month partition wholly before ``before``: (its name, the
    fixes it held), or None when there is none. One partition per call, so the caller
    commits each drop on its own; the parent's lock is held only for the detach and waits
    at most :data:`LOCK_TIMEOUT` for it."""
    if not is_partitioned(session):
        return None
    old = [p for p in month_partitions(session) if p.ends <= before]
    if not old:
        return None
    oldest = old[0]
    rows = int(session.scalar(text(f"SELECT count(*) FROM {oldest.name}")) or 0)
    session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    session.execute(text(f"ALTER TABLE {PARENT} DETACH PARTITION {oldest.name}"))
    session.execute(text(f"DROP TABLE {oldest.name}"))
    return oldest.name, rows


def include_object(obj: object, name: str | None, kind: str, reflected: bool, _to: object) -> bool:
    """Alembic's filter: the partitions are the parent's storage, not tables of their own."""
    return not (kind == "table" and reflected and name is not None
                and (name == DEFAULT or _NAME.fullmatch(name) is not None))  # fmt: skip
