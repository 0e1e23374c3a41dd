"""Bulk position load into SQLite (``load_positions``), against a bare insert in the same run.

The positions of a simulated book (``--loans`` loans over ``--days`` days, seed 7, as the demo
loads them) are stored by ``lienwatch.store.repositories.load_positions`` into a freshly
migrated SQLite database, in one transaction, from the columns (the timing includes turning
them into rows). The baseline is the least SQLite does for the same rows from Python: one
``executemany`` of ready-made tuples into a bare table with the same columns and no index,
key or constraint. The ratio is the price of lienwatch's load (rows built from columns, the
(device, time) uniqueness that drops duplicates, foreign keys) against that floor; below 1
the load beats the floor (it sends rows in multi-row INSERTs). Each figure is printed per
second of wall time and per CPU-second of the process (on a shared machine the CPU figure
is the one the load does not skew).

The demo's way is measured beside them: the fixes staged by ``--workers`` processes, each into
a scratch SQLite file of its own (``stage_positions``), then moved into the store in one
transaction (``adopt_staged_positions``: SQLite's transfer of the first file's records and
index entries as they are, the others inserted after it, written in place through a rollback
journal since the store has no other connection open). Its CPU figure counts the workers'.

    python bench/position_load.py [--loans 2000] [--days 120] [--workers 2]
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import sqlite3
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from lienwatch.sim import SimConfig, generate
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.repositories import (
    adopt_staged_positions,
    load_positions,
    positions_schema,
    stage_positions,
)
from lienwatch.store.repositories.positions import _position_rows, _utc_text
from lienwatch.store.tables import Device

BARE = (
    "CREATE TABLE positions (device_id INTEGER, fix_time TEXT, received_at TEXT, lat REAL, "
    "lon REAL, speed_kmh REAL, course INTEGER, valid INTEGER, alarms TEXT, archived INTEGER)"
)


def migrated_store(path: Path, positions):
    """A migrated store holding the fixes' devices: its engine and the fixes keyed by them."""
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    factory = session_factory(engine)
    with transaction(factory) as session:
        session.add_all(Device(ident=ident, protocol="jt808", kind="wired")
                        for ident in sorted(set(positions.device_id.tolist())))  # fmt: skip
    with transaction(factory) as session:
        keys = dict(session.query(Device.ident, Device.id).all())
    ids = np.fromiter((keys[d] for d in positions.device_id), dtype=np.int64)
    return engine, replace(positions, device_id=ids)


def lienwatch_load(path: Path, positions) -> tuple[float, float]:
    engine, columns = migrated_store(path, positions)
    started, cpu = time.perf_counter(), time.process_time()
    with transaction(session_factory(engine)) as session:
        stored = load_positions(session, columns, chunk=250_000)
    spent, cpu = time.perf_counter() - started, time.process_time() - cpu
    engine.dispose()
    assert stored == len(positions), stored
    return spent, cpu


def staged_load(path: Path, positions, workers: int) -> tuple[float, float]:
    engine, columns = migrated_store(path, positions)
    with transaction(session_factory(engine)) as session:
        schema = positions_schema(session)
    bounds = np.linspace(0, len(columns), workers + 1).astype(int)
    parts = [columns.take(slice(a, b)) for a, b in itertools.pairwise(bounds)]
    files = [path.with_name(f"staged{i}.sqlite3") for i in range(workers)]
    context = multiprocessing.get_context("fork")
    started, cpu = time.perf_counter(), _cpu_with_children()
    stagers = [context.Process(target=stage_positions, args=(file, schema, part))
               for file, part in zip(files, parts, strict=True)]  # fmt: skip
    for stager in stagers:
        stager.start()
    for stager in stagers:
        stager.join()
        assert stager.exitcode == 0, stager.exitcode
    stored = adopt_staged_positions(engine, files)
    spent, cpu = time.perf_counter() - started, _cpu_with_children() - cpu
    engine.dispose()
    assert stored == len(positions), stored
    return spent, cpu


def _cpu_with_children() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def bare_load(path: Path, positions) -> tuple[float, float]:
    fields = ("device_id", "time", "lat", "lon", "speed_kmh", "course", "valid", "alarms")
    part = {name: getattr(positions, name) for name in fields}
    part["device_id"] = np.unique(positions.device_id.astype(str), return_inverse=True)[1]
    rows = list(_position_rows(part, _utc_text(part["time"])))
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(BARE)
    started, cpu = time.perf_counter(), time.process_time()
    db.execute("BEGIN")
    db.executemany("INSERT INTO positions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute("COMMIT")
    spent, cpu = time.perf_counter() - started, time.process_time() - cpu
    db.close()
    return spent, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=2000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    positions = generate(SimConfig(loans=args.loans, days=args.days, seed=7)).positions
    n = len(positions)
    with tempfile.TemporaryDirectory() as tmp:
        ours = lienwatch_load(Path(tmp) / "lienwatch.sqlite3", positions)
        staged, staged_cpu = staged_load(Path(tmp) / "staged.sqlite3", positions, args.workers)
        bare = bare_load(Path(tmp) / "bare.sqlite3", positions)
    print(f"{n:,} positions ({args.loans:,} loans, {args.days} days)")
    (ours, ours_cpu), (bare, bare_cpu) = ours, bare
    print(f"load_positions into SQLite: {n / ours:,.0f} rows/s ({ours:.1f} s), "
          f"{n / ours_cpu:,.0f} rows per CPU-second")  # fmt: skip
    print(f"staged by {args.workers} workers, then adopted: {n / staged:,.0f} rows/s "
          f"({staged:.1f} s), {n / staged_cpu:,.0f} rows per CPU-second")  # fmt: skip
    print(f"baseline (bare executemany, no index): {n / bare:,.0f} rows/s ({bare:.1f} s), "
          f"{n / bare_cpu:,.0f} rows per CPU-second")  # fmt: skip
    print(f"ratio load_positions/baseline time: {ours / bare:.2f}x "
          f"(CPU {ours_cpu / bare_cpu:.2f}x)")  # fmt: skip
    print(f"ratio staged/baseline time: {staged / bare:.2f}x (CPU {staged_cpu / bare_cpu:.2f}x); "
          f"target 500,000 rows/s: {'met' if n / staged >= 500_000 else 'NOT met'} (staged), "
          f"{'met' if n / ours >= 500_000 else 'NOT met'} (load_positions)")  # fmt: skip


if __name__ == "__main__":
    main()
