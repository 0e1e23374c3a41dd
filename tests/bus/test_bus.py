"""The position bus: in-process group commit into the store, and NATS JetStream for real."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import delete, func, select

from lienwatch.bus import InProcessBus, JetStreamBus, decode_fixes, encode_fixes
from lienwatch.config import BusSettings
from lienwatch.store.db import session_factory, transaction
from lienwatch.store.tables import Device, Position
from lienwatch.store.telematics import StoreFixWriter
from lienwatch.telematics.fixes import Fix, writing_to
from tests import factories
from tests.conftest import IN_CI

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def fixes(device_id: int, count: int, *, start: int = 0) -> list[Fix]:
    return [
        Fix(device_id=device_id, time=NOW + timedelta(seconds=start + n), lat=30.0 + n * 1e-4,
            lon=120.0, speed_kmh=12.5, course=90, valid=True, alarms="power_cut" if n == 0 else "",
            archived=n % 2 == 1, received_at=NOW + timedelta(minutes=1))
        for n in range(count)
    ]  # fmt: skip


@pytest.fixture
def device_ids(db_engine) -> Iterator[list[int]]:
    """Three committed devices (the bus commits), removed with their positions afterwards."""
    factory = session_factory(db_engine)
    with transaction(factory) as session:
        made = [factories.device(session, f"bus{uuid.uuid4().hex[:12]}") for _ in range(3)]
        ids = [d.id for d in made]
    yield ids
    with transaction(factory) as session:
        session.execute(delete(Position).where(Position.device_id.in_(ids)))
        session.execute(delete(Device).where(Device.id.in_(ids)))


def count_positions(engine, device_ids: list[int]) -> int:
    with transaction(session_factory(engine)) as session:
        query = select(func.count()).select_from(Position)
        return session.scalar(query.where(Position.device_id.in_(device_ids)))


def test_fix_payload_round_trip():
    batch = fixes(7, 3)
    assert decode_fixes(encode_fixes(batch)) == batch
    with pytest.raises(ValueError, match="payload"):
        decode_fixes(b'[[1, 2]]')


def test_in_process_bus_commits_concurrent_publishers_together(db_engine, device_ids):
    factory = session_factory(db_engine)
    bus = InProcessBus(StoreFixWriter(factory))
    delivered: list[int] = []

    async def run() -> None:
        async def collect(batch) -> None:
            delivered.append(len(batch))

        await bus.subscribe("monitor", collect)
        await asyncio.gather(*(bus.publish(fixes(d, 10)) for d in device_ids))
        await bus.publish(fixes(device_ids[0], 10))  # a resend: durable, not new
        # The store's bulk path raises the driver's own error.
        with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError), match=r"(?i)foreign"):
            await bus.publish(fixes(999_999_999, 1))  # no such device: the commit fails
        await bus.close()

    asyncio.run(run())
    assert (bus.stats.published, bus.stats.new, bus.stats.failed_commits) == (40, 30, 1)
    assert bus.stats.commits == 2  # three publishers, one transaction
    assert sum(delivered) == 40
    assert count_positions(db_engine, device_ids) == 30
    with transaction(factory) as session:
        device = session.get(Device, device_ids[0])
        assert device.last_fix_at == NOW + timedelta(seconds=9)


@pytest.fixture
def nats_server() -> None:
    """The local NATS server: mandatory with CI=true, else the test is skipped without it."""
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=2).close()
    except OSError as exc:
        if IN_CI:
            pytest.fail(f"CI=true but NATS is unreachable on 127.0.0.1:4222: {exc}")
        pytest.skip("NATS is not running on 127.0.0.1:4222")


def test_jetstream_bus_partitions_by_device_and_redelivers_until_stored(
    db_engine, device_ids, nats_server
):
    tag = uuid.uuid4().hex[:10]
    settings = BusSettings(kind="jetstream", stream=f"LW_TEST_{tag}",
                           subject_prefix=f"lwtest.{tag}", partitions=2)  # fmt: skip
    writer = StoreFixWriter(session_factory(db_engine))
    attempts = []

    async def flaky_store(batch) -> None:
        attempts.append(len(batch))
        if len(attempts) == 1:
            raise RuntimeError("store briefly down")
        await writing_to(writer)(batch)

    async def run() -> tuple[dict[str, int], dict]:
        bus = await JetStreamBus.connect(settings)
        try:
            await bus.publish([f for d in device_ids for f in fixes(d, 5)])
            info = await bus.js.stream_info(settings.stream)
            subjects = {
                subject: (await bus.js.get_last_msg(settings.stream, subject)).data
                for subject in (bus.subject(d) for d in device_ids)
            }
            await bus.subscribe("store-writer", flaky_store)
            # Past the server's 30 s ack wait: a failed batch is asked for again in a second
            # (nak), and a message whose nak was lost still comes back after the ack wait (seen
            # once under faketime beside another suite: 10 of 15 fixes back within 30 s).
            deadline = asyncio.get_running_loop().time() + 45
            while count_positions(db_engine, device_ids) < 15:
                assert asyncio.get_running_loop().time() < deadline, attempts
                await asyncio.sleep(0.1)
            assert info.state.messages == 2  # three devices in two partitions
            status = (await bus.status())["consumers"]["store-writer"]
            return {s: len(decode_fixes(data)) for s, data in subjects.items()}, status
        finally:
            await bus.js.delete_stream(settings.stream)
            await bus.close()

    per_subject, status = asyncio.run(run())
    assert set(per_subject) == {f"lwtest.{tag}.{d % 2}" for d in device_ids}
    assert count_positions(db_engine, device_ids) == 15
    assert len(attempts) >= 2  # the failed batch came back
    # at least once: a message whose ack was late is handled again (seen once beside the
    # any-day suites: 20 fixes handled for 15), the store keeping each fix once (above)
    assert (status["errors"], status["state"]) == (1, "running") and status["fixes"] >= 15
    assert status["last_error"] == "RuntimeError: store briefly down"
