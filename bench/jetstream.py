"""The JetStream store writer against a bare nats-py fetch loop, on one backlog in one run.

Publishes ``--positions`` fixes of ``--devices`` devices to a fresh stream as gateways do:
one fix per ``publish`` call, ``--in-flight`` calls at once (the connections of the gateways;
``JetStreamBus.publish`` groups the fixes of a partition published while its previous message
is on its way). Then drains the whole backlog with three durable consumers of that stream,
one after the other:

- ``bare``: nats-py ``pull_subscribe`` and ``fetch(batch=256, timeout=1)`` on a consumer
  with the server's defaults, each payload decoded and each message acknowledged, nothing
  else done (the baseline);
- ``consumer, no-op``: ``JetStreamBus.subscribe`` (decoding, the loop, acknowledgements)
  with a handler that does nothing;
- ``store writer``: ``JetStreamBus.subscribe`` with the store writer of ``lienwatch worker``
  (``writing_to(StoreFixWriter)``) on PostgreSQL: COPY into ``positions``, ``last_fix_at``.

Each prints positions/s and the ratio to the bare loop. Then the bare loop and the store
writer drain the backlog again while another connection holds up to 900 messages without
acknowledging them (a worker killed with a batch in hand, until the 30 s ack wait ends): where
the pulls of issue 21 stalled. Last, a store writer runs while the same number of positions is
published again (end to end, publisher and consumer on one event loop). The store writer must
keep up with at least 20,000 positions/s (issue 21). Needs NATS with JetStream at ``--nats`` and
PostgreSQL at ``LIENWATCH_BENCH_PG_URL`` (default postgres on 127.0.0.1:5432); the benchmark
creates and drops its own stream and database.

    python bench/jetstream.py [--positions 200000] [--devices 2000] [--in-flight 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import nats
from nats.aio.client import Client
from nats.js.api import ConsumerConfig
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from lienwatch.bus import JetStreamBus, decode_fixes
from lienwatch.bus.jetstream import MAX_ACK_PENDING
from lienwatch.config import BusSettings
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Device, Position
from lienwatch.store.telematics import StoreFixWriter
from lienwatch.telematics.fixes import Fix, writing_to

ADMIN_URL = os.environ.get(
    "LIENWATCH_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# a database of its own: two runs at once must not drop each other's
DATABASE = f"lienwatch_bench_jetstream_{os.getpid()}"
START = datetime(2026, 11, 28, tzinfo=UTC)
TARGET = 20_000  # positions/s the store writer must keep up with (issue 21)


def backlog(device_ids: Sequence[int], positions: int, start: int = 0) -> list[Fix]:
    """One fix per second of each device in turn."""
    return [
        Fix(device_id=device_ids[n % len(device_ids)], time=START + timedelta(seconds=n),
            lat=30.0, lon=120.0, speed_kmh=40.0, course=90, valid=True, alarms="",
            archived=False, received_at=START + timedelta(seconds=n))
        for n in range(start, start + positions)
    ]  # fmt: skip


async def publish(bus: JetStreamBus, fixes: list[Fix], in_flight: int) -> float:
    """Publish one fix per call, ``in_flight`` calls at a time; seconds taken."""
    began = time.perf_counter()
    for start in range(0, len(fixes), in_flight):
        await asyncio.gather(*(bus.publish([fix]) for fix in fixes[start : start + in_flight]))
    return time.perf_counter() - began


async def hold(settings: BusSettings, durable: str, held: int, config: ConsumerConfig | None
               ) -> tuple[Client, int]:  # fmt: skip
    """Create ``durable`` and take ``held`` messages from it on a connection of its own that
    never acknowledges them: a worker killed with a batch in hand, until the ack wait (30 s)
    ends. The connection and the fixes held."""
    client = await nats.connect(settings.nats_url)
    pull = await client.jetstream().pull_subscribe(
        f"{settings.subject_prefix}.>", durable=durable, stream=settings.stream, config=config
    )
    messages = await pull.fetch(batch=held, timeout=5) if held else []
    return client, sum(len(decode_fixes(m.data)) for m in messages)


async def bare(settings: BusSettings, positions: int, held: int = 0) -> float:
    """The baseline: a plain nats-py fetch loop over a fresh durable with the server's default
    settings (what lienwatch ≤ issue 21 ran with); positions/s until it decoded and
    acknowledged every fix not ``held`` (see :func:`hold`)."""
    durable = f"bench-bare-{held}"
    killed, left_out = await hold(settings, durable, held, None)
    client = await nats.connect(settings.nats_url)
    pull = await client.jetstream().pull_subscribe_bind(durable=durable, stream=settings.stream)
    began, got = time.perf_counter(), left_out
    while got < positions:
        try:
            batch = await pull.fetch(batch=256, timeout=1)
        except TimeoutError:
            continue
        for message in batch:
            got += len(decode_fixes(message.data))
            await message.ack()
    took = time.perf_counter() - began
    await client.close()
    await killed.close()
    return (positions - left_out) / took


async def consumer(
    settings: BusSettings, name: str, positions: int,
    handler: Callable[[Sequence[Fix]], Awaitable[None]], *,
    held: int = 0, load: Callable[[], Awaitable[float]] | None = None,
) -> float:  # fmt: skip
    """A lienwatch consumer over a fresh durable; positions/s until it handled ``positions``
    fixes (the backlog but those ``held``, or those ``load()`` publishes while it runs)."""
    killed, left_out = await hold(
        settings, name, held, ConsumerConfig(max_ack_pending=MAX_ACK_PENDING)
    )
    bus = await JetStreamBus.connect(settings)
    handled = left_out
    done = asyncio.Event()

    async def counting(fixes: Sequence[Fix]) -> None:
        nonlocal handled
        await handler(fixes)
        handled += len(fixes)
        if handled >= positions:
            done.set()

    began = time.perf_counter()
    await bus.subscribe(name, counting)
    if load is not None:
        await load()
    await done.wait()
    took = time.perf_counter() - began
    await bus.close()
    await killed.close()
    return (positions - left_out) / took


def database(devices: int) -> tuple[str, list[int]]:
    """A fresh migrated PostgreSQL database with ``devices`` devices: its URL and their ids."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    admin.dispose()
    url = make_url(ADMIN_URL).set(database=DATABASE).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate.upgrade(engine)
    with transaction(session_factory(engine)) as session:
        rows = [Device(ident=f"0139{n:08d}", protocol="jt808", kind="wired")
                for n in range(devices)]  # fmt: skip
        session.add_all(rows)
        session.flush()
        ids = [row.id for row in rows]
    engine.dispose()
    return url, ids


def fresh_stream(nats_url: str) -> BusSettings:
    tag = uuid.uuid4().hex[:8]
    return BusSettings(kind="jetstream", nats_url=nats_url, stream=f"LW_BENCH_{tag}",
                       subject_prefix=f"lwbench.{tag}")  # fmt: skip


async def run(args: argparse.Namespace) -> None:
    url, device_ids = database(args.devices)
    engine = make_engine(url)
    writer = writing_to(StoreFixWriter(session_factory(engine)))
    settings, live = fresh_stream(args.nats), fresh_stream(args.nats)
    gateway, live_gateway = await JetStreamBus.connect(settings), await JetStreamBus.connect(live)
    try:
        took = await publish(gateway, backlog(device_ids, args.positions), args.in_flight)
        messages = (await gateway.js.stream_info(settings.stream)).state.messages
        print(f"published {args.positions:,} positions, one per call, {args.in_flight} calls "
              f"in flight, in {took:.2f} s ({args.positions / took:,.0f} positions/s): "
              f"{messages:,} messages")  # fmt: skip
        base = await bare(settings, args.positions)
        show("bare nats-py fetch loop (baseline)", base, base)

        async def nothing(fixes: Sequence[Fix]) -> None:
            return None

        noop = await consumer(settings, "bench-noop", args.positions, nothing)
        show("lienwatch consumer, no-op handler", noop, base)
        rate = await consumer(settings, "bench-store-writer", args.positions, writer)
        show("lienwatch store writer, PostgreSQL", rate, base)
        held = min(900, messages // 2)
        print(f"{held} messages held unacknowledged by a killed worker (its ack wait: 30 s):")
        show("  bare nats-py fetch loop", await bare(settings, args.positions, held), base)
        rate = await consumer(settings, "bench-held", args.positions, writer, held=held)
        show("  lienwatch store writer, PostgreSQL", rate, base)
        again = backlog(device_ids, args.positions, start=args.positions)
        published: list[float] = []

        async def load() -> float:
            published.append(await publish(live_gateway, again, args.in_flight))
            return published[0]

        rate = await consumer(live, "bench-live", args.positions, writer, load=load)
        show("store writer while publishing (e2e)", rate, base)
        print(f"  publishing took {published[0]:.2f} s ({args.positions / published[0]:,.0f} "
              f"positions/s); the last position was stored "
              f"{args.positions / rate - published[0]:.2f} s after the last publish")  # fmt: skip
        with transaction(session_factory(engine)) as session:
            stored = session.scalar(select(func.count()).select_from(Position))
        print(f"stored {stored:,} of {2 * args.positions:,}; target {TARGET:,} positions/s")
    finally:
        for bus in (gateway, live_gateway):
            await bus.js.delete_stream(bus.settings.stream)
            await bus.close()
        engine.dispose()


def show(name: str, rate: float, baseline: float) -> None:
    print(f"{name:38} {rate:>9,.0f} positions/s  ratio to bare {rate / baseline:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=200_000)
    parser.add_argument("--devices", type=int, default=2_000)
    parser.add_argument("--in-flight", type=int, default=500)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
