"""Positions partitioned by month on PostgreSQL (migration 0029, ``store/partitions.py``): the
migration keeps an existing table's rows, months are made ahead and take over the default
partition's fixes, the purge drops whole months, the product's queries read only the months
they ask for; SQLite keeps one table."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, event, func, inspect, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from lienwatch import clock
from lienwatch.cli import app
from lienwatch.config import Settings
from lienwatch.domain.positions import PositionColumns
from lienwatch.jobs import nightly_run
from lienwatch.services.positions import partitioning, prepare_partitions
from lienwatch.store import migrate, partitions
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.partitions import (
    ensure_month_partitions,
    is_partitioned,
    month_partitions,
)
from lienwatch.store.repositories import PositionRepository
from lienwatch.store.repositories.positions import (
    last_fixes,
    load_positions,
    store_position_rows,
)
from lienwatch.store.tables import LedgerEntry, Position
from tests import factories
from tests.conftest import postgres_database

pytestmark = pytest.mark.postgres

NOW = datetime(2031, 9, 1, 4, 0, tzinfo=UTC)  # far from TEST_NOW, whose months the migration made


@pytest.fixture
def pg() -> Iterator[tuple[str, Engine]]:
    with postgres_database(f"lienwatch_partitions_{os.getpid()}") as url:
        engine = make_engine(url)
        yield url, engine
        engine.dispose()


def _fix(device_id: int, moment: datetime) -> dict:
    return {"device_id": device_id, "fix_time": moment, "received_at": moment,
            "lat": 23.1, "lon": 113.3}  # fmt: skip


def _where(session: Session) -> dict[str, int]:
    """Fixes per partition (the table each row is stored in)."""
    rows = session.execute(
        text("SELECT tableoid::regclass::text, count(*) FROM positions GROUP BY 1")
    ).all()
    return dict(rows)


def test_the_migration_moves_an_existing_table_into_month_partitions_and_back(pg):
    _url, engine = pg
    migrate.upgrade(engine, "0023")
    times = [datetime(2031, 1, 31, 23, 59, 59, tzinfo=UTC), datetime(2031, 2, 1, tzinfo=UTC),
             datetime(2031, 3, 15, 12, tzinfo=UTC)]  # fmt: skip
    with Session(engine) as session, session.begin():
        device_id = factories.device(session, "860000000000001").id
        assert PositionRepository(session).add_many([_fix(device_id, t) for t in times]) == 3
        before = session.execute(select(Position.id, Position.fix_time).order_by(Position.id)).all()
    migrate.upgrade(engine)
    with Session(engine) as session, session.begin():
        assert is_partitioned(session)
        months = [p.month for p in month_partitions(session)]  # from now's month or the oldest
        assert {date(2031, 1, 1), date(2031, 2, 1), date(2031, 3, 1)} <= set(months)
        assert session.execute(select(Position.id, Position.fix_time)
                               .order_by(Position.id)).all() == before  # fmt: skip
        assert _where(session) == {"positions_p203101": 1, "positions_p203102": 1,
                                   "positions_p203103": 1}  # fmt: skip
        # the id sequence goes on after the copied rows; a duplicate fix is still dropped
        later = datetime(2031, 3, 16, tzinfo=UTC)
        assert PositionRepository(session).add_many([_fix(device_id, later),
                                                     _fix(device_id, times[0])]) == 1  # fmt: skip
        assert session.scalar(select(func.max(Position.id))) == before[-1].id + 1
    migrate.downgrade(engine, "0023")
    assert "positions_p203101" not in inspect(engine).get_table_names()
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM positions")) == 4
        assert connection.scalar(text(
            "SELECT relkind FROM pg_class WHERE relname = 'positions'")) == "r"  # fmt: skip


def test_a_month_made_later_takes_its_fixes_over_from_the_default_partition(pg):
    _url, engine = pg
    migrate.upgrade(engine)
    with Session(engine) as session, session.begin():
        device = factories.device(session, "860000000000001")
        PositionRepository(session).add_many([_fix(device.id, NOW)])
        assert _where(session) == {"positions_default": 1}
        made = prepare_partitions(session, at=NOW)
        assert made == ["positions_p203109", "positions_p203110", "positions_p203111"]
        assert _where(session) == {"positions_p203109": 1}
        assert prepare_partitions(session, at=NOW) == []  # made once
        # a bulk load makes the months it covers before storing
        late = int(datetime(2030, 12, 31, 23, tzinfo=UTC).timestamp())
        columns = PositionColumns.of([device.id], [late], [23.1], [113.3])
        assert load_positions(session, columns) == 1
        assert _where(session)["positions_p203012"] == 1


def test_the_purge_drops_whole_months_and_deletes_the_rest_in_batches(pg, monkeypatch, tmp_path):
    url, engine = pg
    migrate.upgrade(engine)
    cut = NOW - timedelta(days=180)  # 2031-03-05T04:00Z
    times = [datetime(2031, 1, 10, tzinfo=UTC), datetime(2031, 2, 10, tzinfo=UTC),
             datetime(2031, 2, 20, tzinfo=UTC), cut - timedelta(seconds=1), cut,
             NOW - timedelta(days=1)]  # fmt: skip
    with transaction(session_factory(engine)) as session:
        ensure_month_partitions(session, times[0], NOW)
        device = factories.device(session, "860000000000001")
        PositionRepository(session).add_many([_fix(device.id, t) for t in times])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIENWATCH_DATABASE_URL", url)
    args = ["positions", "purge", "--older-than", "180d", "--at", NOW.isoformat(), "--by", "ops"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    output = json.loads(result.output)
    # every month wholly before the cut goes (the empty ones the migration made too)
    dropped = output.pop("partitions_dropped")
    assert output == {"before": cut.isoformat(), "deleted": 4}
    assert dropped == sorted(dropped) and dropped[-2:] == ["positions_p203101", "positions_p203102"]
    with Session(engine) as session:
        assert month_partitions(session)[0].name == "positions_p203103"
        stored = session.scalars(select(Position.fix_time).order_by(Position.fix_time)).all()
        assert stored == times[4:]
        purged = LedgerEntry.kind == "positions_purged"
        body = session.scalar(select(LedgerEntry.body).where(purged))
    assert json.loads(body)["data"] == {
        "before": cut.isoformat(), "deleted": 4, "partitions_dropped": dropped
    }


def test_a_vehicles_track_and_latest_fix_read_only_the_months_they_need(pg):
    _url, engine = pg
    migrate.upgrade(engine)
    with transaction(session_factory(engine)) as session:
        ensure_month_partitions(session, datetime(2031, 1, 1, tzinfo=UTC), NOW)
        device = factories.device(session, "860000000000001")
        start = datetime(2031, 1, 1, tzinfo=UTC)
        PositionRepository(session).add_many(
            [_fix(device.id, start + timedelta(hours=7 * n)) for n in range(800)]
        )
        session.execute(text("ANALYZE positions"))
        plan = "\n".join(session.scalars(text(
            "EXPLAIN SELECT * FROM positions WHERE device_id = :d "
            "AND fix_time >= '2031-02-03' AND fix_time < '2031-02-05' ORDER BY fix_time"
        ), {"d": device.id}))  # fmt: skip
        assert "positions_p203102" in plan
        assert not any(f"positions_p2031{m:02d}" in plan for m in (1, 3, 4, 5, 6, 7, 8, 9))
        assert "positions_default" not in plan
        track = PositionRepository(session).track(
            device.id, datetime(2031, 2, 3, tzinfo=UTC), datetime(2031, 2, 5, tzinfo=UTC)
        )
        assert len(track) == 48 // 7 and all(p.fix_time.month == 2 for p in track)
        assert PositionRepository(session).last_fix(device.id).fix_time == start + timedelta(
            hours=7 * 799
        )


def test_the_latest_fix_of_devices_is_one_probe_in_the_month_of_their_last_fix(pg):
    """``last_fixes`` (the fleet page, ``PositionRepository.last_fix``) reads the fix at each
    device's ``last_fix_at``: PostgreSQL prunes the other months at run time (``never
    executed``), however many months are kept; every write path keeps ``last_fix_at`` on the
    newest fix."""
    _url, engine = pg
    migrate.upgrade(engine)
    start = datetime(2031, 1, 1, tzinfo=UTC)
    with transaction(session_factory(engine)) as session:
        ensure_month_partitions(session, start, NOW)
        one, other = (factories.device(session, f"86000000000000{n}").id for n in (1, 2))
        PositionRepository(session).add_many(
            [_fix(one, start + timedelta(hours=7 * n)) for n in range(800)]  # to 2031-08-30
        )
        store_position_rows(session, [(other, start, start, 23.1, 113.3, 0.0, 0, True, "", False)])
        newest = int(datetime(2031, 4, 2, tzinfo=UTC).timestamp())
        load_positions(session, PositionColumns.of([other, other], [newest - 60, newest],
                                                   [23.1, 23.2], [113.3, 113.4]))  # fmt: skip
        PositionRepository(session).add_many([_fix(other, start + timedelta(days=1))])  # older
        session.execute(text("ANALYZE"))
    statements: list[tuple[str, dict]] = []

    def seen(_conn, _cursor, statement, parameters, _context, _many) -> None:
        statements.append((statement, parameters))

    with transaction(session_factory(engine)) as session:
        event.listen(engine, "before_cursor_execute", seen)
        try:
            latest = last_fixes(session, [one, other])
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        assert {d: p.fix_time for d, p in latest.items()} == {
            one: start + timedelta(hours=7 * 799), other: datetime(2031, 4, 2, tzinfo=UTC)}
        assert latest[other].lat == 23.2
        (statement, parameters), = statements
        session.execute(text("SET LOCAL enable_seqscan = off"))  # tiny months: read whole
        plan = session.connection().exec_driver_sql(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + statement, parameters
        ).scalars().all()  # fmt: skip
    scanned = [line for line in plan if "positions_" in line and "never executed" not in line]
    assert all("Index" in line for line in scanned), plan
    assert {line.split(" on ")[1].split()[0] for line in scanned} == {
        "positions_p203108", "positions_p203104"}, plan  # fmt: skip


def test_sqlite_keeps_one_table(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'one.sqlite3'}")
    migrate.upgrade(engine)
    with Session(engine) as session, session.begin():
        assert not is_partitioned(session)
        assert prepare_partitions(session, at=NOW) == []
    assert not [t for t in inspect(engine).get_table_names() if t.startswith("positions_")]
    engine.dispose()


def test_the_nightly_job_makes_the_coming_months(pg, tmp_path):
    url, engine = pg
    migrate.upgrade(engine)
    settings = Settings(database_url=url, ledger={"key_file": tmp_path / "ledger.key"})
    with clock.travel(NOW):
        summary = nightly_run(session_factory(engine), settings)()
        assert summary["position_partitions_made"] == [
            "positions_p203109", "positions_p203110", "positions_p203111"
        ]  # fmt: skip
        assert nightly_run(session_factory(engine), settings)()["position_partitions_made"] == []


def test_a_large_unpartitioned_table_is_converted_online_while_a_writer_writes(
    pg, monkeypatch, tmp_path, caplog
):
    """Migration 0029 leaves a table above its limit as it is; ``lienwatch positions
    partition`` then converts it in batches while another session keeps writing, inserting
    and deleting: every row is kept with its id, the writer is never refused, the swap gives
    the copy the table's names and sequence, and a second run finds nothing to do."""
    url, engine = pg
    migrate.upgrade(engine, "0023")
    start = datetime(2031, 1, 1, tzinfo=UTC)
    with transaction(session_factory(engine)) as session:
        device = factories.device(session, "860000000000001").id
        PositionRepository(session).add_many(
            [_fix(device, start + timedelta(days=5 * n)) for n in range(40)])  # to 2031-07
    monkeypatch.setattr(partitions, "MIGRATION_CONVERTS_UP_TO", 30)
    migrate.upgrade(engine)
    assert "left unpartitioned" in caplog.text
    factory = session_factory(engine)
    with transaction(factory) as session:
        assert not is_partitioned(session)
        before = session.execute(select(Position.id, Position.fix_time)).all()
    written: list[datetime] = []
    stop = threading.Event()

    def writer() -> None:  # a store writer: a fix every few milliseconds, one transaction each
        moment = datetime(2031, 8, 1, tzinfo=UTC)
        while not stop.is_set():
            moment += timedelta(minutes=1)
            with transaction(factory) as session:
                store_position_rows(session, [(device, moment, moment, 23.1, 113.3, 0.0, 0,
                                               True, "", False)])  # fmt: skip
            written.append(moment)
            time.sleep(0.005)

    thread = threading.Thread(target=writer)
    thread.start()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIENWATCH_DATABASE_URL", url)
    try:
        with transaction(factory) as session:  # started by hand: the writer deletes meanwhile
            mark = partitioning(session, at=NOW).mark  # the rows the trigger did not see
        with transaction(factory) as session:
            session.execute(text("DELETE FROM positions WHERE id = :i"), {"i": before[0].id})
        result = CliRunner().invoke(app, ["positions", "partition", "--batch", "7", "--json"])
    finally:
        stop.set()
        thread.join(timeout=30)
    assert result.exit_code == 0, result.output
    output = json.loads(result.output)
    assert output["batches"] == -(-mark // 7) and mark >= 40 and written  # 7 ids a batch
    with transaction(factory) as session:
        assert is_partitioned(session)
        after = set(session.execute(select(Position.id, Position.fix_time)).all())
        assert len(after) == len(before) - 1 + len(written)  # nothing lost, nothing doubled
        assert output["rows"] <= len(after)  # the writer went on after the swap
        assert set(before[1:]) <= after and before[0] not in after
        assert {t for _, t in after} >= set(written)
        assert _where(session)["positions_p203101"] == 6  # the migration's months and more
        names = set(session.scalars(text(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'positions'::regclass")))
        assert names == {"pk_positions", "uq_positions_device_id_fix_time",
                         "fk_positions_device_id_devices"}  # fmt: skip
        assert session.scalar(text(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'positions'::regclass "
            "AND NOT tgisinternal")) == 0
        assert PositionRepository(session).add_many([_fix(device, NOW)]) == 1
        assert session.scalar(select(func.max(Position.id))) > max(i for i, _ in after)
    again = CliRunner().invoke(app, ["positions", "partition"])
    assert again.exit_code != 0 and "already partitioned" in str(again.exception)
