"""Engines and sessions. The caller owns the transaction: services never commit."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Select,
    any_,
    bindparam,
    create_engine,
    event,
    insert,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.exc import DatabaseError as DriverDatabaseError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.dml import Insert

from lienwatch.errors import DatabaseBusy, LienwatchError, Refused


class DatabaseError(LienwatchError):
    """The database cannot be reached or the URL is invalid."""


#: Connections a process keeps open to PostgreSQL, and those it may open beyond them for a
#: while (an API process runs up to 40 requests at once in threads: the others wait their turn).
POOL_SIZE, POOL_OVERFLOW = 10, 10

#: How long a SQLite write waits for another connection's write lock (the driver's
#: ``timeout``) before it fails with :class:`~lienwatch.errors.DatabaseBusy`: far longer
#: than a business change holds it, short enough that a request does not hang on a
#: command that keeps the lock (a bulk import beside ``lienwatch serve``).
SQLITE_BUSY_TIMEOUT_S = 10.0

#: The execution option naming the BEGIN a SQLite transaction starts with (:func:`transaction`
#: sets ``IMMEDIATE``; a transaction without it begins deferred).
SQLITE_BEGIN = "lienwatch_sqlite_begin"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the settings lienwatch relies on.

    SQLite gets foreign keys enforced, WAL journaling (readers never block the writer), a
    busy timeout of ``SQLITE_BUSY_TIMEOUT_S`` unless ``connect_args`` give the driver's
    ``timeout``, and transactions begun by SQLAlchemy rather than by the driver
    (:func:`_sqlite_begin`); PostgreSQL URLs without a driver use psycopg 3, and the pool
    keeps up to ``POOL_SIZE`` connections (SQLAlchemy's 5 made every request beyond five at
    once open and close a connection of its own: a new server process each, under an API's
    load).
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("postgresql"):
        kwargs = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW, **kwargs}
    if url.startswith("sqlite"):
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_S, **kwargs.get("connect_args", {})}
        kwargs = {**kwargs, "connect_args": connect_args}
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, ModuleNotFoundError) as exc:
        raise DatabaseError(f"database_url {url!r}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction control begins a transaction only before an INSERT,
    # UPDATE or DELETE: the reads before it ran outside (a read-then-write could write over
    # a change committed in between) and a SAVEPOINT began one by itself (committed apart
    # when released). _sqlite_begin begins every transaction instead, as SQLAlchemy's
    # SQLite documentation shows.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """BEGIN, or the kind the connection's ``SQLITE_BEGIN`` option names. A write must hold
    the lock from its first read: a deferred transaction that has read cannot take it while
    another writer holds it or has committed since, and SQLite refuses it at once, without
    waiting the busy timeout."""
    kind = connection.get_execution_options().get(SQLITE_BEGIN, "")
    connection.exec_driver_sql(f"BEGIN {kind}".rstrip())


def check_connection(engine: Engine) -> None:
    """Raise :class:`DatabaseError` in one line when the database is unreachable."""
    try:
        with engine.connect():
            pass
    except DriverDatabaseError as exc:  # cannot connect, or the SQLite file is something else
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseError(
            f"cannot connect to {engine.url.render_as_string()}: {reason}"
        ) from None


def read_rows(session: Session, statement: Select[Any]) -> Sequence[Row[Any]]:
    """The rows of a select of columns (no ORM entities) as ``session.execute`` reads them
    (after a flush), without the ORM's result layer, which costs twice the query itself on
    a large read (a nightly run reads every payment of the book)."""
    session.flush()
    return session.connection().execute(statement).all()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session], *, write: bool = True) -> Iterator[Session]:
    """One business change: commit on success, roll back everything on any error but
    :class:`~lienwatch.errors.Refused`, whose record of the refusal is committed before the
    error goes on up (a refused act is a business change too: its outcome is the refusal).

    On SQLite it begins ``IMMEDIATE``: its first statement waits for the write lock (up to
    the busy timeout, then :class:`~lienwatch.errors.DatabaseBusy`), so what it reads stays
    true until it commits. With ``write=False``, for a path that only reads (an API's GET),
    it begins deferred: it never waits for a writer, and a write it made after all would be
    refused at once (DatabaseBusy) whenever another writer got there first."""
    begin = {SQLITE_BEGIN: "IMMEDIATE"} if write else {}
    with factory(execution_options=begin) as session:
        session.begin()
        try:
            yield session
        except Refused:
            session.commit()
            raise
        except OperationalError as exc:
            session.rollback()
            if _sqlite_busy(exc):
                raise DatabaseBusy(f"database {session.get_bind().url.database}: busy, "
                                   "another connection holds its write lock; nothing was "
                                   "changed, try again") from None
            raise
        except BaseException:
            session.rollback()
            raise
        session.commit()


def _sqlite_busy(exc: OperationalError) -> bool:
    """Whether ``exc`` is SQLite's SQLITE_BUSY ("database is locked") or one of its kinds."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


@dataclass(frozen=True, slots=True)
class Database:
    """A process's engine and its session factory."""

    engine: Engine
    factory: sessionmaker[Session]


@contextmanager
def open_database(url: str) -> Iterator[Database]:
    """The database at ``url``, checked reachable (:class:`DatabaseError` in one line if
    not); the engine is disposed on exit."""
    engine = make_engine(url)
    try:
        check_connection(engine)
        yield Database(engine, session_factory(engine))
    finally:
        engine.dispose()


def chunks(items: list[Any], size: int = 5000) -> Iterator[list[Any]]:
    """``items`` in lists short enough for one ``IN (...)`` clause on every backend."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def among(session: Session, column: Any, values: Collection[Any]) -> list[ColumnElement[bool]]:
    """Conditions that together select the rows whose ``column`` is one of ``values``, one
    statement each. On PostgreSQL a single ``column = ANY(:array)``: one parameter, so the
    statement's text is the same for any number of values and neither the driver nor the
    server parses a long list again; elsewhere ``IN`` lists of :func:`chunks`' size."""
    values = list(values)
    if not values:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return [column == any_(bindparam(None, values, type_=ARRAY(column.type)))]
    return [column.in_(chunk) for chunk in chunks(values)]


# Deferred inserts: rows on the hot path of every act (ledger entries) wait in the session and
# go in with one multi-row insert per table when it flushes or commits; a rollback drops them.
_DEFERRED = "lienwatch.deferred"  # session.info key: [(table or statement, row), ...]


def defer_insert(session: Session, into: Any, row: dict[str, Any]) -> None:
    """Insert ``row`` at ``session``'s next flush or commit, in its transaction: into a table
    (or mapped class), or through an ``INSERT`` statement of its own (one whose values refer
    to rows deferred before it). Until then it is invisible to queries (call
    :func:`write_deferred` first)."""
    session.info.setdefault(_DEFERRED, []).append((into, row))


def write_deferred(session: Session) -> None:
    """Insert the rows deferred in ``session`` now: one statement per table or statement,
    in the order each was first deferred into."""
    waiting = session.info.pop(_DEFERRED, None)
    if not waiting:
        return
    targets: dict[Any, list[dict[str, Any]]] = {}
    for into, row in waiting:
        targets.setdefault(into, []).append(row)
    for into, rows in targets.items():
        session.execute(into if isinstance(into, Insert) else insert(into), rows)


@contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """A savepoint around a step that may fail alone (a duplicate insert): deferred rows of
    the acts before it are written outside it, and those deferred inside it are dropped
    with it when it rolls back."""
    write_deferred(session)
    try:
        with session.begin_nested():
            yield
            write_deferred(session)
    except BaseException:
        session.info.pop(_DEFERRED, None)
        raise


@event.listens_for(Session, "before_flush")
def _write_before_flush(session: Session, _context: object, _instances: object) -> None:
    write_deferred(session)


@event.listens_for(Session, "before_commit")
def _write_before_commit(session: Session) -> None:
    write_deferred(session)


@event.listens_for(Session, "after_soft_rollback")
def _drop_on_rollback(session: Session, previous: Any) -> None:
    if not previous.nested:  # a savepoint's own are dropped by savepoint()
        session.info.pop(_DEFERRED, None)
