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

from lienwatch.errors import ConflictError
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


# Converting an unpartitioned ``positions`` online (``lienwatch positions partition``): a
# partitioned copy is built beside it while writers go on writing into it (a trigger mirrors
# every change), the rows before the trigger are copied in batches of their own, and a short
# final transaction swaps the two tables.

#: The largest table migration 0029 converts in its own transaction (holding the table's
#: lock for the copy, about 35 s per million rows measured); a larger one is left as it is
#: for the online conversion.
MIGRATION_CONVERTS_UP_TO = 1_000_000
BUILDING = f"{PARENT}_partitioned"  # the partitioned copy while it is built
_MIRROR = f"{PARENT}_mirror"  # the trigger (and its function) copying changes into it
_COLUMNS = ("id, device_id, fix_time, received_at, lat, lon, speed_kmh, course, valid, alarms, "
            "archived")  # fmt: skip
#: The table's constraints, by name (the copy's carry ``_new`` until the swap).
_CONSTRAINTS = {
    "pk_positions": "PRIMARY KEY (id, fix_time)",
    "uq_positions_device_id_fix_time": "UNIQUE (device_id, fix_time)",
    "fk_positions_device_id_devices": "FOREIGN KEY (device_id) REFERENCES devices (id)",
}


class ConversionError(ConflictError):
    """The online conversion cannot go on in the state the tables are in (named)."""


@dataclass(frozen=True, slots=True)
class Conversion:
    """Where an online conversion stands: rows with ids up to ``mark`` predate the mirror
    trigger and are copied in batches, those up to ``copied_to`` already."""

    mark: int
    copied_to: int

    @property
    def copied(self) -> bool:
        return self.copied_to >= self.mark


def conversion(session: Session) -> Conversion | None:
    """The conversion under way (its state is the copy's table comment), None if none is."""
    comment = session.scalar(
        text("SELECT obj_description(to_regclass(:t), 'pg_class')"), {"t": BUILDING}
    )
    if comment is None:
        return None
    mark, copied_to = (int(part) for part in comment.split(":"))
    return Conversion(mark, copied_to)


def _note(session: Session, state: Conversion) -> None:
    session.execute(text(f"COMMENT ON TABLE {BUILDING} IS '{state.mark}:{state.copied_to}'"))


def start_conversion(session: Session, *, at: datetime) -> Conversion:
    """Build the empty partitioned copy (a partition for every month from the oldest fix to
    :data:`MONTHS_AHEAD` after ``at``'s, and the default) and the trigger mirroring every
    later insert, update and delete into it. The table's lock waits for the writes in flight
    (at most :data:`LOCK_TIMEOUT`): every row the trigger does not mirror has an id up to
    the mark read after it."""
    if session.get_bind().dialect.name != "postgresql":
        raise ConversionError("positions: month partitions are PostgreSQL's (SQLite keeps one "
                              "table): nothing to do")  # fmt: skip
    if is_partitioned(session):
        raise ConversionError("positions: already partitioned: nothing to do")
    if conversion(session) is not None:
        raise ConversionError(f"positions: a conversion is under way ({BUILDING} exists)")
    oldest = session.scalar(text(f"SELECT min(fix_time) FROM {PARENT}"))  # writers go on
    newest = session.scalar(text(f"SELECT max(fix_time) FROM {PARENT}"))
    # From here writers wait (milliseconds of catalogue changes). positions is locked before
    # devices (the foreign key), in the writers' order, so that neither waits for the other.
    session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    session.execute(text(f"LOCK TABLE {PARENT} IN SHARE ROW EXCLUSIVE MODE"))
    session.execute(text(f"CREATE TABLE {BUILDING} (LIKE {PARENT} INCLUDING DEFAULTS) "
                         "PARTITION BY RANGE (fix_time)"))  # fmt: skip
    for name, definition in _CONSTRAINTS.items():
        session.execute(text(f"ALTER TABLE {BUILDING} ADD CONSTRAINT {name}_new {definition}"))
    last = month_of(at.astimezone(UTC))
    for _ in range(MONTHS_AHEAD):
        last = next_month(last)
    first = min(month_of(oldest), month_of(at)) if oldest else month_of(at)
    for month in months(first, max(last, month_of(newest)) if newest else last):
        part = MonthPartition(partition_name(month), month)
        bounds = f"FROM ('{part.starts.isoformat()}') TO ('{part.ends.isoformat()}')"
        session.execute(text(f"CREATE TABLE {part.name} PARTITION OF {BUILDING} "
                             f"FOR VALUES {bounds}"))  # fmt: skip
    session.execute(text(f"CREATE TABLE {DEFAULT} PARTITION OF {BUILDING} DEFAULT"))
    session.execute(text(f"""
        CREATE FUNCTION {_MIRROR}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                DELETE FROM {BUILDING} WHERE id = OLD.id AND fix_time = OLD.fix_time;
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                INSERT INTO {BUILDING} ({_COLUMNS}) SELECT {_COLUMNS} FROM (SELECT NEW.*) AS n
                ON CONFLICT DO NOTHING;
            END IF;
            RETURN NULL;
        END $$"""))  # fmt: skip
    session.execute(text(f"CREATE TRIGGER {_MIRROR} AFTER INSERT OR UPDATE OR DELETE ON "
                         f"{PARENT} FOR EACH ROW EXECUTE FUNCTION {_MIRROR}()"))  # fmt: skip
    state = Conversion(int(session.scalar(text(f"SELECT coalesce(max(id), 0) FROM {PARENT}"))), 0)
    _note(session, state)
    return state


def copy_batch(session: Session, *, rows: int) -> Conversion:
    """Copy the next ``rows`` ids (a range of the primary key) of the rows the trigger did not
    mirror; return the state after it. Writers are not held: the copy reads the old table
    and writes the new one, whose rows the trigger may have written already (skipped)."""
    state = conversion(session)
    if state is None:
        raise ConversionError("positions: no conversion under way")
    upto = min(state.copied_to + rows, state.mark)
    session.execute(
        text(f"INSERT INTO {BUILDING} ({_COLUMNS}) SELECT {_COLUMNS} FROM {PARENT} "
             "WHERE id > :lo AND id <= :hi ON CONFLICT DO NOTHING"),
        {"lo": state.copied_to, "hi": upto},
    )  # fmt: skip
    state = Conversion(state.mark, upto)
    _note(session, state)
    return state


def finish_conversion(session: Session) -> int:
    """Swap the copy in: under the old table's exclusive lock (waited for at most
    :data:`LOCK_TIMEOUT`), check that both hold the same number of rows, drop the trigger,
    give the copy the table's name, constraint names and id sequence, and drop the old table.
    Return the rows. Refused, changing nothing, before every row is copied or if the counts
    differ."""
    state = conversion(session)
    if state is None or not state.copied:
        raise ConversionError("positions: the copy is not finished")
    session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    session.execute(text(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE"))
    old = session.scalar(text(f"SELECT count(*) FROM {PARENT}"))
    new = session.scalar(text(f"SELECT count(*) FROM {BUILDING}"))
    if old != new:
        raise ConversionError(f"positions: {old} rows but the partitioned copy holds {new}; "
                              "nothing swapped (start again with --restart)")  # fmt: skip
    session.execute(text(f"DROP TRIGGER {_MIRROR} ON {PARENT}"))
    session.execute(text(f"DROP FUNCTION {_MIRROR}()"))
    session.execute(text(f"ALTER TABLE {PARENT} RENAME TO {PARENT}_unpartitioned"))
    for name in _CONSTRAINTS:
        session.execute(text(f"ALTER TABLE {PARENT}_unpartitioned RENAME CONSTRAINT {name} "
                             f"TO {name}_old"))  # fmt: skip
    session.execute(text(f"ALTER TABLE {BUILDING} RENAME TO {PARENT}"))
    for name in _CONSTRAINTS:
        session.execute(text(f"ALTER TABLE {PARENT} RENAME CONSTRAINT {name}_new TO {name}"))
    session.execute(text(f"COMMENT ON TABLE {PARENT} IS NULL"))
    session.execute(text(f"ALTER SEQUENCE {PARENT}_id_seq OWNED BY {PARENT}.id"))
    session.execute(text(f"DROP TABLE {PARENT}_unpartitioned"))
    return int(new or 0)


def abandon_conversion(session: Session) -> bool:
    """Drop a conversion under way (the copy and its trigger); False if there was none. The
    old table is untouched."""
    if conversion(session) is None:
        return False
    session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    session.execute(text(f"DROP TRIGGER IF EXISTS {_MIRROR} ON {PARENT}"))
    session.execute(text(f"DROP FUNCTION IF EXISTS {_MIRROR}()"))
    session.execute(text(f"DROP TABLE {BUILDING}"))
    return True
