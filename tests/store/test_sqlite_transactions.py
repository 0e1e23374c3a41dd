"""SQLite write transactions under contention, through the same transaction() the CLI and
API use, on a real file with two connections in two threads: a business change takes the
write lock when it begins (BEGIN IMMEDIATE), so a second one that reads then writes waits
for the first to commit and then reads what it committed, instead of failing half way with
"database is locked" or writing over it; a read-only session does not wait for writers."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from lienwatch.errors import DatabaseBusy, Refused
from lienwatch.store.db import make_engine, savepoint, session_factory, transaction

#: How long a test thread waits for the other before the test gives up (no test waits this
#: long when it passes).
PATIENCE_S = 20


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a new SQLite file holding one counter at 0 and an empty refusals table."""
    engine = make_engine(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    with transaction(session_factory(engine)) as session:
        session.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        session.execute(text("INSERT INTO counter VALUES (0)"))
        session.execute(text("CREATE TABLE refusals (why TEXT NOT NULL)"))
    yield session_factory(engine)
    engine.dispose()


def count(session: Session) -> int:
    return session.scalar(text("SELECT n FROM counter"))


def increment(session: Session) -> int:
    """Read the counter, then write it one higher: a read-then-write business change."""
    seen = count(session)
    session.execute(text("UPDATE counter SET n = :n"), {"n": seen + 1})
    return seen


def while_holding_the_lock(factory: sessionmaker[Session], other: Callable[[], None]) -> None:
    """Run ``other`` in this thread while another thread's transaction has read and written
    the counter and holds the write lock, uncommitted, for a moment (until ``other`` is
    done, or 0.3 s when ``other`` waits for the lock); the holder commits and is joined."""
    holding, other_done, failures = threading.Event(), threading.Event(), []

    def holder() -> None:
        try:
            with transaction(factory) as session:
                increment(session)
                holding.set()
                _wait_for(other_done, 0.3)
        except BaseException as error:  # reported by the test's thread
            failures.append(error)
            holding.set()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert holding.wait(PATIENCE_S)
        other()
    finally:
        other_done.set()
        thread.join(PATIENCE_S)
    assert not failures, failures


def _wait_for(event: threading.Event, seconds: float) -> None:
    """``event.wait(seconds)`` in short sleeps: under faketime (the any-day suites) a timed
    wait on a condition never wakes up, its deadline set by the faked monotonic clock."""
    deadline = time.monotonic() + seconds
    while not event.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_business_change_waits_for_the_one_holding_the_lock_and_reads_its_result(factory):
    seen = []

    def second() -> None:
        with transaction(factory) as session:
            seen.append(increment(session))

    while_holding_the_lock(factory, second)
    with factory() as session:
        assert count(session) == 2  # neither increment lost
    assert seen == [1]  # the second read after the first committed


def test_a_read_in_a_savepoint_before_the_write_waits_too(factory):
    """A savepoint as the first statement no longer starts SQLite's transaction by itself
    (so its write is no longer refused at once, nor committed apart from the transaction)."""

    def second() -> None:
        with transaction(factory) as session, savepoint(session):
            increment(session)

    while_holding_the_lock(factory, second)
    with factory() as session:
        assert count(session) == 2
    with pytest.raises(RuntimeError), transaction(factory) as session:
        with savepoint(session):
            increment(session)
        raise RuntimeError("after the savepoint")
    with factory() as session:
        assert count(session) == 2  # the savepoint was rolled back with its transaction


def test_a_refusal_waits_for_the_lock_and_its_record_commits(factory):
    def refused() -> None:
        with pytest.raises(Refused), transaction(factory) as session:
            seen = count(session)
            session.execute(text("INSERT INTO refusals VALUES (:why)"), {"why": f"at {seen}"})
            raise Refused("contact: outside the allowed hours")

    while_holding_the_lock(factory, refused)
    with factory() as session:
        assert session.scalars(text("SELECT why FROM refusals")).all() == ["at 1"]
        assert count(session) == 1


def test_a_reader_does_not_wait_for_a_writer(factory):
    seen = []

    def reader() -> None:
        with factory() as session:  # a read-only path: a deferred transaction
            seen.append(count(session))

    while_holding_the_lock(factory, reader)
    assert seen == [0]  # read while the writer held its uncommitted change


def test_a_lock_held_past_the_busy_timeout_is_a_one_line_error_naming_the_database(tmp_path):
    path = tmp_path / "busy.sqlite3"
    engine = make_engine(f"sqlite:///{path}", connect_args={"timeout": 0.2})
    with transaction(session_factory(engine)) as session:
        session.execute(text("CREATE TABLE t (n INTEGER)"))
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process's writer
        with pytest.raises(DatabaseBusy) as caught, transaction(session_factory(engine)) as s:
            s.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        other.close()
        engine.dispose()
    message = str(caught.value)
    assert str(path) in message and "busy" in message and "\n" not in message
