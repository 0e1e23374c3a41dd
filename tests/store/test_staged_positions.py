"""Fixes staged in scratch SQLite files and adopted by the store are the rows a bulk load of
the same fixes stores, keys included."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from sqlalchemy import select

from lienwatch.domain.positions import PositionColumns
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.repositories import (
    adopt_staged_positions,
    load_positions,
    positions_schema,
    stage_positions,
)
from lienwatch.store.tables import Device, Position
from tests.conftest import head_sqlite

START = 1_790_000_000  # epoch seconds, 2026-09-21


def fixes(devices: list[int], count: int = 600, seed: int = 3) -> PositionColumns:
    """``count`` fixes over ``devices``, some of them repeated (same device and time)."""
    rng = np.random.default_rng(seed)
    device = rng.choice(devices, count)
    time = START + rng.integers(0, 400, count) * 30
    lat, lon = rng.uniform(30, 31, count), rng.uniform(120, 121, count)
    return PositionColumns.of(device, time, lat, lon,
                              speed_kmh=rng.uniform(0, 90, count).round(),
                              course=rng.integers(0, 360, count),
                              alarms=rng.choice(["", "sos", "power_cut"], count))  # fmt: skip


def store(path, device_count: int = 4):
    """A migrated SQLite store with ``device_count`` devices: engine, factory, device keys."""
    engine = make_engine(head_sqlite(path))
    factory = session_factory(engine)
    with transaction(factory) as session:
        session.add_all(Device(ident=f"D{i}", protocol="jt808", kind="wired")
                        for i in range(device_count))  # fmt: skip
    with transaction(factory) as session:
        keys = list(session.scalars(select(Device.id).order_by(Device.id)))
    return engine, factory, keys


def rows(factory) -> list[tuple]:
    with transaction(factory) as session:
        return [
            tuple(row) for row in session.execute(select(Position.__table__).order_by(Position.id))
        ]


def newest_fixes(factory) -> list[tuple]:
    with transaction(factory) as session:
        return list(session.execute(select(Device.id, Device.last_fix_at).order_by(Device.id)))


def settings(engine) -> tuple:
    with engine.connect() as connection:
        return tuple(connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                     for name in ("foreign_keys", "journal_mode", "synchronous"))  # fmt: skip


@pytest.mark.parametrize("shared", [False, True], ids=["store to itself", "another connection"])
def test_adopted_files_hold_the_rows_of_one_bulk_load(tmp_path, shared):
    """With the store to itself the adoption writes through a rollback journal, with another
    connection open through the WAL: the same rows either way, the settings put back."""
    loaded_engine, loaded, keys = store(tmp_path / "loaded.sqlite3", device_count=5)
    columns = fixes(keys[:4])  # a device without fixes keeps last_fix_at NULL
    with transaction(loaded) as session:
        stored = load_positions(session, columns, chunk=128)
        schema = positions_schema(session)
    assert 0 < stored < len(columns)  # the repeated fixes dropped
    engine, factory, _ = store(tmp_path / "adopted.sqlite3", device_count=5)
    before = settings(engine)
    halves = [columns.take(slice(0, 250)), columns.take(slice(250, None))]  # repeats across too
    paths = [tmp_path / f"part{i}.sqlite3" for i in range(2)]
    staged = [
        stage_positions(path, schema, half, chunk=100)
        for path, half in zip(paths, halves, strict=True)
    ]
    files = [path.read_bytes() for path in paths]
    other = sqlite3.connect(tmp_path / "adopted.sqlite3") if shared else None
    if other is not None:
        other.execute("SELECT count(*) FROM devices").fetchone()
    assert adopt_staged_positions(engine, paths) == stored < sum(staged)
    log = tmp_path / "adopted.sqlite3-wal"  # the fixes written in place, or through the log
    assert (log.exists() and log.stat().st_size > 0) == shared
    assert rows(factory) == rows(loaded)
    assert [path.read_bytes() for path in paths] == files  # only read
    assert newest_fixes(factory) == newest_fixes(loaded)
    assert newest_fixes(factory)[-1][1] is None
    assert before == settings(engine) == (1, "wal", 1)  # the connection went back as it was
    if other is not None:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        other.close()
    for e in (engine, loaded_engine):
        e.dispose()


def test_the_store_refuses_staged_fixes_of_unknown_devices_and_into_a_filled_table(tmp_path):
    engine, factory, keys = store(tmp_path / "store.sqlite3")
    with transaction(factory) as session:
        schema = positions_schema(session)
    unknown = tmp_path / "unknown.sqlite3"
    stage_positions(unknown, schema, fixes([*keys, 999]))
    with pytest.raises(ValueError, match="device_id: staged fixes of device 999"):
        adopt_staged_positions(engine, [unknown])
    assert rows(factory) == []
    known = tmp_path / "known.sqlite3"
    stage_positions(known, schema, fixes(keys))
    assert adopt_staged_positions(engine, [known]) > 0
    with pytest.raises(ValueError, match="positions: the table holds fixes"):
        adopt_staged_positions(engine, [known])
    with pytest.raises(FileExistsError, match=r"staging file: .* exists"):
        stage_positions(known, schema, fixes(keys))
    assert sqlite3.connect(known).execute("SELECT count(*) FROM positions").fetchone()[0] > 0
    engine.dispose()


def test_a_failed_adoption_leaves_the_store_as_it_was(tmp_path):
    engine, factory, keys = store(tmp_path / "store.sqlite3")
    with transaction(factory) as session:
        schema = positions_schema(session)
    good, bad = tmp_path / "good.sqlite3", tmp_path / "bad.sqlite3"
    stage_positions(good, schema, fixes(keys))
    with sqlite3.connect(bad) as db:  # known devices, but not a staged positions table
        db.execute("CREATE TABLE positions (device_id INTEGER)")
        db.execute("INSERT INTO positions VALUES (?)", (keys[0],))
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        adopt_staged_positions(engine, [good, bad])  # fails after the first file went in
    assert rows(factory) == []
    assert all(at is None for _, at in newest_fixes(factory))
    assert settings(engine) == (1, "wal", 1)
    assert adopt_staged_positions(engine, [good]) > 0  # and a retry goes through
    engine.dispose()
