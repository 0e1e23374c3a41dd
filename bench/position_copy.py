"""Batched position writes into PostgreSQL: ``COPY`` against ``executemany``, same run.

The store writer and the scaled-out workers store fixes in batches through
``store_position_rows``, which on PostgreSQL copies each batch into a staging table and
inserts from it, dropping duplicates of (device, fix time). The peer is the same batches
through ``insert_ignoring_duplicates`` (SQLAlchemy ``executemany`` of ``INSERT ... ON
CONFLICT DO NOTHING RETURNING``, batched into multi-row VALUES). Both write the same rows
into the same migrated table (emptied between rounds), one transaction per batch; the rounds
alternate so neither always runs on a warmer server. A third contestant copies the same
batches into a database of its own at revision 0023, where ``positions`` is one plain table
(before migration 0029 partitioned it by month): the price of the partitions on ingest.
Prints one JSON object.

    python bench/position_copy.py [--rows 200000] [--batch 5000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.partitions import ensure_month_partitions
from lienwatch.store.repositories import PositionRow, insert_ignoring_duplicates
from lienwatch.store.repositories.positions import store_position_rows
from lienwatch.store.tables import Device, Position

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEVICES = 1_000
START = datetime(2026, 11, 1, tzinfo=UTC)
COLUMNS = ("device_id", "fix_time", "received_at", "lat", "lon", "speed_kmh", "course",
           "valid", "alarms", "archived")  # fmt: skip


def fixes(device_ids: Sequence[int], count: int) -> list[PositionRow]:
    """``count`` fixes, every device reporting every 30 s, as the gateway hands them over."""
    rows = []
    for n in range(count):
        moment = START + timedelta(seconds=30 * (n // len(device_ids)))
        lat, lon = 23.1 + n % 97 * 1e-4, 113.3 + n % 89 * 1e-4
        rows.append((device_ids[n % len(device_ids)], moment, moment, lat, lon, 42.0, 90,
                     True, "", False))  # fmt: skip
    return rows


def copy_batch(session: Session, batch: Sequence[PositionRow]) -> int:
    return store_position_rows(session, batch)


def executemany_batch(session: Session, batch: Sequence[PositionRow]) -> int:
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in batch]
    return insert_ignoring_duplicates(session, Position.__table__, rows)


def timed(
    factory: sessionmaker[Session], write: Callable[[Session, Sequence[PositionRow]], int],
    rows: Sequence[PositionRow], batch: int,
) -> float:  # fmt: skip
    """Seconds to store ``rows`` in batches of ``batch`` into an empty table."""
    with transaction(factory) as session:
        session.execute(text("TRUNCATE positions"))
    began = time.perf_counter()
    stored = 0
    for start in range(0, len(rows), batch):
        with transaction(factory) as session:
            stored += write(session, rows[start : start + batch])
    took = time.perf_counter() - began
    if stored != len(rows):
        raise SystemExit(f"{write.__name__} stored {stored} of {len(rows)} rows")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--admin-url", default=ADMIN_URL)
    args = parser.parse_args()
    names = [f"lienwatch_bench_copy_{os.getpid()}", f"lienwatch_bench_copy_plain_{os.getpid()}"]
    admin = create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engines = []
    try:
        for name, revision in zip(names, ("head", "0023"), strict=True):
            url = make_url(args.admin_url).set(database=name)
            engines.append(make_engine(url.render_as_string(hide_password=False)))
            migrate.upgrade(engines[-1], revision)
        factory, plain = (session_factory(engine) for engine in engines)
        for each in (factory, plain):
            with transaction(each) as session:
                devices = [Device(ident=f"86{n:013d}", protocol="jt808", kind="wired")
                           for n in range(DEVICES)]  # fmt: skip
                session.add_all(devices)
                session.flush()
                rows = fixes([device.id for device in devices], args.rows)
        with transaction(factory) as session:  # the months of the fixes, as a bulk load makes
            ensure_month_partitions(session, rows[0][1], rows[-1][1])
        seconds: dict[str, float] = {"copy": 0.0, "executemany": 0.0, "copy_plain": 0.0}
        for round_ in range(args.rounds):
            order = [("copy", factory, copy_batch), ("executemany", factory, executemany_batch),
                     ("copy_plain", plain, copy_batch)]  # fmt: skip
            for label, into, write in order if round_ % 2 == 0 else order[::-1]:
                seconds[label] += timed(into, write, rows, args.batch)
    finally:
        for engine in engines:
            engine.dispose()
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    total = args.rows * args.rounds
    print(json.dumps({
        "rows": args.rows, "batch": args.batch, "rounds": args.rounds,
        "copy_rows_per_s": round(total / seconds["copy"]),
        "executemany_rows_per_s": round(total / seconds["executemany"]),
        "copy_speedup": round(seconds["executemany"] / seconds["copy"], 2),
        "copy_plain_table_rows_per_s": round(total / seconds["copy_plain"]),
        "partitioned_over_plain": round(seconds["copy_plain"] / seconds["copy"], 2),
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
