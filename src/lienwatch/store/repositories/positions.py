"""Positions: bulk loads (COPY on PostgreSQL) and the gateway's rows.

Every write here also moves each device's ``devices.last_fix_at`` forward to its newest fix:
the latest fix of a device is then one probe of the unique index (device, fix time) at that
time, in the one month partition holding it (:meth:`PositionRepository.last_fix`,
:func:`last_fixes`), not a look into every month.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import sqlite3
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, and_, delete, select, text, true
from sqlalchemy.orm import Session, aliased

from lienwatch.domain.positions import PositionColumns
from lienwatch.store.db import among
from lienwatch.store.partitions import ensure_month_partitions
from lienwatch.store.repositories.common import insert_ignoring_duplicates
from lienwatch.store.repositories.devices import DeviceRepository
from lienwatch.store.tables import Device, Position


class PositionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add_many(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Store fixes, dropping duplicates of (device, fix time); return how many were new."""
        new = insert_ignoring_duplicates(self.session, Position.__table__, rows)
        _note_newest(self.session, ((r["device_id"], r["fix_time"]) for r in rows))
        return new

    def track(self, device_id: int, start: datetime, end: datetime) -> list[Position]:
        """A device's fixes with ``start <= fix_time < end`` in time order."""
        query = (
            select(Position)
            .where(Position.device_id == device_id)
            .where(Position.fix_time >= start, Position.fix_time < end)
            .order_by(Position.fix_time)
        )
        return list(self.session.scalars(query))

    def last_fix(self, device_id: int) -> Position | None:
        """The device's newest fix (see the module docstring)."""
        return last_fixes(self.session, [device_id]).get(device_id)

    def delete_before(self, before: datetime, *, limit: int) -> int:
        """Delete up to ``limit`` positions fixed before ``before``; return how many went.
        Small batches keep each transaction (and the locks it holds) short."""
        doomed = select(Position.id).where(Position.fix_time < before).limit(limit)
        result = self.session.execute(
            delete(Position).where(  # the time again: PostgreSQL reads only the old partitions
                Position.fix_time < before, Position.id.in_(doomed.scalar_subquery())
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def last_fixes(session: Session, device_ids: Collection[int]) -> dict[int, Position]:
    """The newest stored fix of each device of ``device_ids`` that has one: the fix at its
    ``last_fix_at``.

    On PostgreSQL the fix is read per device by a ``LATERAL`` subquery (its ``LIMIT`` keeps
    the planner from flattening it into a join it might hash over every month): one probe of
    the unique index in the partition of that time, the others pruned at run time, however
    many months are kept and devices asked."""
    at_last = and_(Position.device_id == Device.id, Position.fix_time == Device.last_fix_at)
    if session.get_bind().dialect.name == "postgresql":
        newest = select(Position).where(at_last).limit(1).lateral()
        query = select(aliased(Position, newest)).select_from(Device).join(newest, true())
    else:
        query = select(Position).join(Device, at_last)
    found = (session.scalars(query.where(ids)) for ids in among(session, Device.id, device_ids))
    return {position.device_id: position for batch in found for position in batch}


def _note_newest(session: Session, fixes: Iterable[tuple[int, datetime]]) -> None:
    """Move ``last_fix_at`` forward for the devices of these (device id, fix time)."""
    newest: dict[int, datetime] = {}
    for device_id, time in fixes:
        if device_id not in newest or time > newest[device_id]:
            newest[device_id] = time
    DeviceRepository(session).note_last_fixes(newest)


def _newest_per_device(columns: PositionColumns) -> Iterable[tuple[int, datetime]]:
    """(device id, newest fix time) of each device in ``columns``."""
    if not len(columns):
        return []
    order = np.lexsort((columns.time, columns.device_id))
    devices = np.asarray(columns.device_id)[order]
    last = np.flatnonzero(np.append(devices[1:] != devices[:-1], True))  # each device's newest
    times = np.asarray(columns.time, dtype=np.int64)[order][last]
    return zip(devices[last].tolist(), (datetime.fromtimestamp(t, UTC) for t in times.tolist()),
               strict=True)  # fmt: skip


def load_positions(session: Session, columns: PositionColumns, *, chunk: int = 200_000) -> int:
    """Bulk-store fixes (received when they were taken), dropping duplicates of (device, time).

    Goes around the ORM for speed: ``executemany`` on SQLite, ``COPY`` into a staging table on
    PostgreSQL. Returns how many fixes were new.
    """
    if session.get_bind().dialect.name == "postgresql":
        if len(columns):  # not into the default partition
            first, last = (datetime.fromtimestamp(int(f(columns.time)), UTC)
                           for f in (np.min, np.max))  # fmt: skip
            ensure_month_partitions(session, first, last)
        new = sum(_copy_positions_postgresql(session, part) for part in _parts(columns, chunk))
    else:
        with _bulk_cache(session):
            cursor = session.connection().connection.driver_connection.cursor()
            new = sum(_insert_positions_sqlite(cursor, part) for part in _parts(columns, chunk))
    _note_newest(session, _newest_per_device(columns))
    return new


def _parts(columns: PositionColumns, chunk: int) -> Iterator[dict[str, np.ndarray]]:
    """The columns a bulk load sends, ``chunk`` fixes at a time."""
    for start in range(0, len(columns), chunk):
        part = slice(start, start + chunk)
        yield {name: getattr(columns, name)[part] for name in _POSITION_FIELDS}


def positions_schema(session: Session) -> list[str]:
    """The SQLite statements that create this store's ``positions`` table and its explicit
    indexes, as the migrations made them: what :func:`stage_positions` builds its file with."""
    return list(session.scalars(text(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'positions' AND sql IS NOT NULL "
        "ORDER BY type DESC, name")))  # fmt: skip


def stage_positions(path: Path, schema: Sequence[str], columns: PositionColumns, *,
                    chunk: int = 250_000) -> int:  # fmt: skip
    """Bulk-store fixes as :func:`load_positions` does, into a new SQLite file at ``path``
    that holds only a ``positions`` table made by ``schema`` (:func:`positions_schema`), for
    :func:`adopt_staged_positions`; return how many were new.

    It touches no store, so it can run in another process while the store is busy with
    other work. The file is scratch: written without a journal or syncs."""
    if path.exists():
        raise FileExistsError(f"staging file: {path} exists; a staging file starts empty")
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in ("journal_mode=OFF", "synchronous=OFF", f"cache_size=-{_BULK_CACHE_KIB}",
                       "temp_store=MEMORY"):  # fmt: skip
            db.execute(f"PRAGMA {pragma}")
        for statement in schema:
            db.execute(statement)
        db.execute("BEGIN")
        stored = sum(_insert_positions_sqlite(db.cursor(), part) for part in _parts(columns, chunk))
        db.execute("COMMIT")
        return stored
    finally:
        db.close()


def adopt_staged_positions(engine: Engine, paths: Sequence[Path]) -> int:
    """Move fixes staged by :func:`stage_positions` into the store's ``positions`` table, which
    must be empty, in one transaction of its own; the files in order, each as if its fixes
    had been loaded after the previous file's (same keys, duplicates of (device, time) after
    the first dropped); return how many were stored.

    The first file's records and index entries are copied as they are (SQLite's transfer of
    one table into an empty one with the same schema, which needs foreign key enforcement off
    on the connection: every staged device is checked against ``devices`` instead); the
    others are inserted after it in their order. The transaction is written through a
    rollback journal when it can be (:func:`_journaled_in_place`)."""
    if engine.dialect.name != "sqlite":
        raise ValueError(f"engine: staged positions go into SQLite, not {engine.dialect.name}")
    pooled = engine.raw_connection()
    db = pooled.driver_connection
    names = [f"staged{i}" for i in range(len(paths))]
    try:
        if db.execute("SELECT EXISTS (SELECT 1 FROM positions)").fetchone()[0]:
            raise ValueError("positions: the table holds fixes; staged fixes go into an empty one")
        enforced = db.execute("PRAGMA foreign_keys").fetchone()[0]
        db.execute("PRAGMA foreign_keys=OFF")  # outside any transaction, or it does nothing
        for name, path in zip(names, paths, strict=True):
            db.execute("ATTACH DATABASE ? AS " + name, (str(path),))
        try:
            _check_staged_devices(db, names)
            with _journaled_in_place(db):
                return _transfer_staged(db, names)
        finally:
            for name in names:
                db.execute(f"DETACH DATABASE {name}")
            db.execute(f"PRAGMA foreign_keys={enforced}")
    finally:
        pooled.close()


def _transfer_staged(db: sqlite3.Connection, names: Sequence[str]) -> int:
    """The attached files' fixes into the empty ``positions``, devices' ``last_fix_at`` moved
    forward, committed (rolled back on any error); return how many fixes were stored."""
    db.execute("BEGIN")
    try:
        before = db.total_changes
        for i, name in enumerate(names):
            if i == 0:  # into the empty table: SQLite's transfer
                db.execute(f"INSERT INTO main.positions SELECT * FROM {name}.positions")
            else:
                db.execute(f"INSERT OR IGNORE INTO main.positions ({_POSITION_COLUMNS}) "
                           f"SELECT {_POSITION_COLUMNS} FROM {name}.positions ORDER BY id")
        stored = db.total_changes - before
        db.execute(_NOTE_NEWEST_SQLITE)
        db.commit()
        return stored
    except BaseException:
        db.rollback()  # before the journal mode is put back, which a transaction would refuse
        raise


@contextlib.contextmanager
def _journaled_in_place(db: sqlite3.Connection) -> Iterator[None]:
    """A rollback journal instead of the WAL for a bulk write on ``db``, then the WAL again.

    Through the WAL every new page is written twice (into the log, then by the checkpoint
    into the database file); with a rollback journal once, in place, and only the pages that
    existed before are journaled. Synchronous ``EXTRA`` makes the commit durable when it
    returns (the WAL's ``NORMAL`` is durable only from the next checkpoint), so the store is
    no less durable. Readers of the store wait while the write runs. The switch needs the
    store to itself: with another connection open it is refused and the write goes through
    the WAL."""
    mode, sync = (db.execute(f"PRAGMA main.{name}").fetchone()[0]
                  for name in ("journal_mode", "synchronous"))  # fmt: skip
    if mode != "wal":
        yield
        return
    try:
        db.execute("PRAGMA main.journal_mode=DELETE")  # not the attached files' modes
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode != sqlite3.SQLITE_BUSY:
            raise
        yield  # another connection has the store open
        return
    db.execute("PRAGMA main.synchronous=EXTRA")
    try:
        yield
    finally:
        db.execute(f"PRAGMA main.journal_mode={mode}")
        db.execute(f"PRAGMA main.synchronous={sync}")


#: Every device's ``last_fix_at`` moved forward to its newest stored fix (the adoption's): one
#: probe of the unique index (device, fix time) per device, not a pass over every fix.
_NOTE_NEWEST_SQLITE = (
    "UPDATE devices SET last_fix_at = newest.at FROM (SELECT id, (SELECT max(fix_time) "
    "FROM positions WHERE device_id = devices.id) AS at FROM devices) AS newest "
    "WHERE devices.id = newest.id AND newest.at IS NOT NULL "
    "AND (devices.last_fix_at IS NULL OR devices.last_fix_at < newest.at)"
)


def _check_staged_devices(db: sqlite3.Connection, names: Sequence[str]) -> None:
    """Every staged fix's device is in ``devices`` (the adoption itself does not check).

    A file's devices are read by skipping from one to the next along its unique index (one
    probe per device), not by a pass over every fix."""
    for name in names:
        unknown = db.execute(
            "WITH RECURSIVE staged(device_id) AS ("
            f"SELECT min(device_id) FROM {name}.positions UNION ALL "
            f"SELECT (SELECT min(device_id) FROM {name}.positions WHERE device_id > "
            "staged.device_id) FROM staged WHERE staged.device_id IS NOT NULL) "
            "SELECT device_id FROM staged WHERE device_id IS NOT NULL "
            "AND device_id NOT IN (SELECT id FROM main.devices) LIMIT 1").fetchone()  # fmt: skip
        if unknown is not None:
            raise ValueError(f"device_id: staged fixes of device {unknown[0]}, which the store "
                             "does not have")  # fmt: skip


_BULK_CACHE_KIB = 262_144  # SQLite page cache while bulk loading, so the unique index fits


@contextlib.contextmanager
def _bulk_cache(session: Session) -> Iterator[None]:
    """A large SQLite page cache on this connection for the load, the previous one after."""
    cursor = session.connection().connection.driver_connection.cursor()
    cache = int(cursor.execute("PRAGMA cache_size").fetchone()[0])
    cursor.execute(f"PRAGMA cache_size=-{_BULK_CACHE_KIB}")
    try:
        yield
    finally:
        cursor.execute(f"PRAGMA cache_size={cache}")


_POSITION_FIELDS = ("device_id", "time", "lat", "lon", "speed_kmh", "course", "valid", "alarms")


_POSITION_COLUMNS = (
    "device_id, fix_time, received_at, lat, lon, speed_kmh, course, valid, alarms, archived"
)


def _utc_text(epoch_seconds: np.ndarray) -> list[str]:
    """Epoch seconds as ``YYYY-MM-DD hh:mm:ss.ffffff`` (SQLAlchemy's SQLite datetime text).

    Each day of the span is formatted once and each second of the day once per process
    (:func:`_clock_texts`), then the two are joined per fix: positions span few days, and
    string arrays are slow to edit in NumPy."""
    days, seconds = np.divmod(np.asarray(epoch_seconds, dtype=np.int64), 86_400)
    if not len(days):
        return []
    first = int(days.min())
    span = np.arange(first, int(days.max()) + 1, dtype=np.int64)
    day_text = np.datetime_as_string((span * 86_400).astype("datetime64[s]"), unit="D")
    joined = np.array(day_text.tolist(), dtype=object)[days - first] + _clock_texts()[seconds]
    return joined.tolist()


@functools.cache
def _clock_texts() -> np.ndarray:
    """`` hh:mm:ss.000000`` of every second of the day, indexed by the second."""
    hours, rest = np.divmod(np.arange(86_400), 3_600)
    return np.array(
        [f" {h:02d}:{m:02d}:{s:02d}.000000"
         for h, m, s in zip(hours.tolist(), *np.divmod(rest, 60), strict=True)],
        dtype=object,
    )  # fmt: skip


def _position_columns(part: dict[str, np.ndarray], times: list[str]) -> tuple[list[Any], ...]:
    """(device_id, time, lat, lon, speed_kmh, course, valid, alarms) as lists."""
    return (
        part["device_id"].tolist(),
        times,
        part["lat"].tolist(),
        part["lon"].tolist(),
        part["speed_kmh"].astype(float).tolist(),
        part["course"].astype(int).tolist(),
        part["valid"].astype(bool).tolist(),
        part["alarms"].tolist(),
    )


def _position_rows(part: dict[str, np.ndarray], times: list[str]) -> Iterable[tuple[Any, ...]]:
    """Whole rows in ``_POSITION_COLUMNS`` order: received when taken, not archived."""
    device, time, *rest = _position_columns(part, times)
    return zip(device, time, time, *rest, [False] * len(times), strict=True)


_ROWS_PER_INSERT = 128  # rows per multi-row INSERT of a bulk load (8 parameters each)


def _insert_positions_sqlite(cursor: sqlite3.Cursor, part: dict[str, np.ndarray]) -> int:
    """Multi-row INSERTs of ``_ROWS_PER_INSERT`` rows, each row's time bound once (the fix
    was received when taken) and the constants written as literals: SQLite's cost per
    statement and per bound value is most of a bulk load's, not the B-tree's."""
    times = _utc_text(part["time"])
    columns = _position_columns(part, times)
    width = len(columns)
    values = list(itertools.chain.from_iterable(zip(*columns, strict=True)))
    whole = len(times) - len(times) % _ROWS_PER_INSERT
    before = cursor.execute("SELECT total_changes()").fetchone()[0]
    step = width * _ROWS_PER_INSERT
    cursor.executemany(
        _bulk_insert(_ROWS_PER_INSERT, width),
        (values[i : i + step] for i in range(0, whole * width, step)),
    )
    rest = range(whole * width, len(values), width)
    cursor.executemany(_bulk_insert(1, width), (values[i : i + width] for i in rest))
    return cursor.execute("SELECT total_changes()").fetchone()[0] - before


@functools.cache
def _bulk_insert(rows: int, width: int) -> str:
    """``INSERT OR IGNORE`` of ``rows`` positions given as (device_id, time, lat, lon,
    speed_kmh, course, valid, alarms): numbered parameters, the time used twice."""
    tuples = []
    for row in range(rows):
        p = [f"?{row * width + k + 1}" for k in range(width)]
        tuples.append(f"({p[0]}, {p[1]}, {p[1]}, {', '.join(p[2:])}, 0)")
    return f"INSERT OR IGNORE INTO positions ({_POSITION_COLUMNS}) VALUES {', '.join(tuples)}"


def _copy_positions_postgresql(session: Session, part: dict[str, np.ndarray]) -> int:
    times = [t + "+00" for t in _utc_text(part["time"])]
    return _copy_rows_postgresql(session, _position_rows(part, times))


def _insert_rows_sqlite(session: Session, rows: Iterable[tuple[Any, ...]]) -> int:
    cursor = session.connection().connection.driver_connection.cursor()
    before = cursor.execute("SELECT total_changes()").fetchone()[0]
    cursor.executemany(
        f"INSERT OR IGNORE INTO positions ({_POSITION_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return cursor.execute("SELECT total_changes()").fetchone()[0] - before


def _copy_rows_postgresql(session: Session, rows: Iterable[tuple[Any, ...]]) -> int:
    cursor = session.connection().connection.driver_connection.cursor()
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS positions_staging ON COMMIT DELETE ROWS AS "
        f"SELECT {_POSITION_COLUMNS} FROM positions WITH NO DATA"
    )
    cursor.execute("TRUNCATE positions_staging")
    with cursor.copy(f"COPY positions_staging ({_POSITION_COLUMNS}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    cursor.execute(
        f"INSERT INTO positions ({_POSITION_COLUMNS}) SELECT {_POSITION_COLUMNS} "
        "FROM positions_staging ON CONFLICT DO NOTHING"
    )
    return cursor.rowcount


#: One fix as :func:`store_position_rows` takes it, in this column order; times aware UTC.
PositionRow = tuple[int, datetime, datetime, float, float, float, int, bool, str, bool]


def store_position_rows(session: Session, rows: Sequence[PositionRow]) -> int:
    """Bulk-store fixes given as rows of (device_id, fix_time, received_at, lat, lon,
    speed_kmh, course, valid, alarms, archived), dropping duplicates of (device, fix time);
    return how many were new.

    The path of :func:`load_positions` (``executemany`` on SQLite, ``COPY`` on PostgreSQL)
    for rows that arrive one by one, such as the gateway's.
    """
    if not rows:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        new = _copy_rows_postgresql(session, rows)
    else:
        new = _insert_rows_sqlite(
            session, ((r[0], _sqlite_time(r[1]), _sqlite_time(r[2]), *r[3:]) for r in rows)
        )
    _note_newest(session, ((r[0], r[1]) for r in rows))
    return new


def _sqlite_time(moment: datetime) -> str:
    """An aware time as SQLAlchemy's SQLite UTC text (``YYYY-MM-DD hh:mm:ss.ffffff``)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

