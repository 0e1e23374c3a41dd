"""JetStream consumers as an operator relies on them: they outlive a NATS restart and a lost
consumer without losing a position, and health says when they cannot. (The idle spell is
tested with the real processes, in tests/test_scaled_out.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import nats
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from lienwatch.bus import JetStreamBus, jetstream
from lienwatch.bus.jetstream import CLOSE_TIMEOUT_S
from lienwatch.config import BusSettings, GatewaySettings, Settings
from lienwatch.runtime import STORE_WRITER, health_app, health_report
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Position
from lienwatch.store.telematics import StoreFixWriter
from lienwatch.telematics.fixes import Fix, FixHandler, writing_to
from tests import factories
from tests.bus.test_bus import NOW, fixes, nats_server  # noqa: F401  (a fixture)
from tests.conftest import HEALTH_TOKEN, head_sqlite
from tests.natsd import NatsServer, own_nats  # noqa: F401  (a fixture)


@dataclass
class Store:
    engine: Engine
    factory: sessionmaker[Session]
    device_id: int

    def times(self) -> list[int]:
        """Seconds after NOW of the stored fixes (the store keeps one per device and time)."""
        with transaction(self.factory) as session:
            query = select(Position.fix_time).where(Position.device_id == self.device_id)
            stored = session.scalars(query)
            return sorted(int((moment - NOW).total_seconds()) for moment in stored)

    def writer(self) -> FixHandler:
        return writing_to(StoreFixWriter(self.factory))


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    """A migrated SQLite store with one device (the consumer loop does not care which store)."""
    engine = make_engine(head_sqlite(tmp_path / "bus.sqlite3"))
    factory = session_factory(engine)
    with transaction(factory) as session:
        device_id = factories.device(session, "013900001111").id
    yield Store(engine, factory, device_id)
    engine.dispose()


def bus_settings(nats_url: str = "nats://127.0.0.1:4222", **extra: int) -> BusSettings:
    tag = uuid.uuid4().hex[:10]
    return BusSettings(kind="jetstream", nats_url=nats_url, stream=f"LW_TEST_{tag}",
                       subject_prefix=f"lwtest.{tag}", partitions=2, **extra)  # fmt: skip


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``condition()`` held; fails naming ``what`` after ``timeout``."""
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout, f"no {what} within {timeout} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - began


def one_fix(device_id: int, second: int) -> list[Fix]:
    return fixes(device_id, 1, start=second)


def test_a_nats_restart_loses_no_acknowledged_position(store, own_nats: NatsServer):  # noqa: F811
    settings = bus_settings(own_nats.url)
    acknowledged: list[int] = []

    async def gateway(bus: JetStreamBus, stop: asyncio.Event) -> None:
        """Publish a fix every 20 ms as a gateway would; a device hears back only if durable."""
        second = 0
        while not stop.is_set():
            second += 1
            try:
                await bus.publish(one_fix(store.device_id, second))
                acknowledged.append(second)
            except Exception:  # not acknowledged: the device sends it again later
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.02)

    async def run() -> tuple[dict, list[str]]:
        gateway_bus = await JetStreamBus.connect(settings)
        worker_bus = await JetStreamBus.connect(settings)
        stop = asyncio.Event()
        try:
            await worker_bus.subscribe(STORE_WRITER, store.writer())
            publishing = asyncio.create_task(gateway(gateway_bus, stop))
            await wait_until(lambda: len(store.times()) >= 20, 20, "positions before the restart")
            await asyncio.to_thread(own_nats.stop)
            down = await health_report(Settings(bus=settings), worker_bus)()
            await asyncio.sleep(6)  # longer than nats-py's default reconnection attempts
            await asyncio.to_thread(own_nats.start)
            await wait_until(lambda: worker_bus.client.is_connected, 20, "reconnection")
            count = len(acknowledged)
            await wait_until(lambda: len(acknowledged) >= count + 20, 20, "publishes after it")
            stop.set()
            await publishing
            await wait_until(lambda: set(acknowledged) <= set(store.times()), 60, "every fix")
            return (await worker_bus.status()), down.lagging
        finally:
            await worker_bus.js.delete_stream(settings.stream)
            await gateway_bus.close()
            await worker_bus.close()

    status, lagging_while_down = asyncio.run(run())
    assert set(acknowledged) <= set(store.times())
    assert "bus: reconnecting" in lagging_while_down
    assert status["disconnects"] == 1 and status["connection"] == "connected"
    assert status["gave_up"] is None  # 6 s away: more than nats-py's default three attempts
    consumer = status["consumers"][STORE_WRITER]
    assert consumer["state"] == "running" and consumer["errors"] >= 1  # it noticed, and went on


def test_a_consumer_the_server_lost_is_created_again(store, nats_server):  # noqa: F811
    settings = bus_settings()

    async def run() -> tuple[float, dict]:
        bus = await JetStreamBus.connect(settings)
        try:
            await bus.subscribe(STORE_WRITER, store.writer())
            await bus.publish(one_fix(store.device_id, 0))
            await wait_until(lambda: store.times() == [0], 20, "first position")
            await bus.js.delete_consumer(settings.stream, STORE_WRITER)
            await bus.publish(one_fix(store.device_id, 1))
            took = await wait_until(lambda: store.times() == [0, 1], 60, "position after it")
            return took, (await bus.status())["consumers"][STORE_WRITER]
        finally:
            await bus.js.delete_stream(settings.stream)
            await bus.close()

    took, status = asyncio.run(run())
    assert status["resubscribed"] == 1 and status["state"] == "running"
    assert took < 15  # found at the latest by the idle check every 5 s


def test_health_is_degraded_when_a_consumer_lags_and_unavailable_when_it_stopped(
    store, nats_server  # noqa: F811
):
    settings = bus_settings(max_pending=2)
    release = asyncio.Event()

    async def stuck_writer(batch: list[Fix]) -> None:
        await release.wait()  # the store hangs: nothing is acknowledged

    async def run() -> tuple[dict, dict, int, dict, str | None]:
        bus = await JetStreamBus.connect(settings)
        operators = GatewaySettings(health_token=HEALTH_TOKEN)
        app = health_app(store.engine, health_report(Settings(bus=settings), bus), operators)
        transport = httpx.ASGITransport(app=app)
        auth = {"Authorization": f"Bearer {HEALTH_TOKEN}"}
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://worker",
                                         headers=auth) as client:  # fmt: skip
                await bus.subscribe(STORE_WRITER, stuck_writer)
                healthy = (await client.get("/api/v1/health")).json()
                for second in range(3):  # three messages
                    await bus.publish(one_fix(store.device_id, second))
                await asyncio.sleep(0.5)
                lagging = (await client.get("/api/v1/health")).json()
                task = bus.consumers[STORE_WRITER].task
                assert task is not None
                task.cancel()  # whatever ends a consumer's loop
                await asyncio.sleep(0.1)
                stopped = await client.get("/api/v1/health")
                release.set()
                return healthy, lagging, stopped.status_code, stopped.json(), bus.give_up_reason
        finally:
            await bus.js.delete_stream(settings.stream)
            await bus.close()

    healthy, lagging, code, stopped, gave_up = asyncio.run(run())
    assert (healthy["status"], healthy["problems"]) == ("ok", [])
    assert healthy["bus"]["consumers"][STORE_WRITER]["state"] == "running"
    assert lagging["status"] == "degraded"
    assert lagging["problems"] == ["consumer store-writer: 3 messages pending, more than 2"]
    assert code == 503 and stopped["status"] == "unavailable"
    assert stopped["bus"]["consumers"][STORE_WRITER]["state"] == "stopped"
    assert "consumer store-writer: stopped" in stopped["problems"]
    assert gave_up == "consumer store-writer ended: cancelled"  # the process exits on it



def test_concurrent_publishes_of_a_partition_go_out_together(store, nats_server):  # noqa: F811
    settings = bus_settings()

    async def run() -> int:
        bus = await JetStreamBus.connect(settings)
        try:
            await asyncio.gather(*(bus.publish(one_fix(store.device_id, n)) for n in range(200)))
            await bus.subscribe(STORE_WRITER, store.writer())
            await wait_until(lambda: len(store.times()) == 200, 20, "every position")
            return (await bus.js.stream_info(settings.stream)).state.messages
        finally:
            await bus.js.delete_stream(settings.stream)
            await bus.close()

    messages = asyncio.run(run())
    assert store.times() == list(range(200))
    assert messages <= 10  # grouped while a message of the partition was on its way


def test_a_handler_failing_for_give_up_s_makes_the_bus_give_up(store, nats_server):  # noqa: F811
    settings = bus_settings(give_up_s=2)

    async def broken_store(batch: list[Fix]) -> None:
        raise RuntimeError("store refuses every batch")

    async def run() -> dict:
        bus = await JetStreamBus.connect(settings)
        try:
            await bus.subscribe(STORE_WRITER, broken_store)
            await bus.publish(one_fix(store.device_id, 0))
            await wait_until(bus.gave_up.is_set, 30, "giving up")
            return (await bus.status())["consumers"][STORE_WRITER]
        finally:
            await bus.js.delete_stream(settings.stream)
            await bus.close()

    status = asyncio.run(run())
    assert status["errors"] >= 2
    assert status["last_error"] == "RuntimeError: store refuses every batch"
    assert status["batches"] == 0 and store.times() == []


def test_closing_ends_a_consumer_whose_cancellation_was_lost(store, nats_server, caplog):  # noqa: F811
    """close() cancels the consumer loops, but a cancellation can be lost on its way down:
    Python 3.11's ``asyncio.wait_for``, under nats-py's fetch, returns a message that arrived
    in the same turn instead of raising it, and the loop ran on while close() waited for it
    for ever (the hang of the NATS-restart test under CPU pressure). A handler that swallows
    the cancellation loses it the same way, every time."""
    settings = bus_settings()
    handled: list[list[Fix]] = []

    async def swallowing(batch: list[Fix]) -> None:
        if not handled:  # the first batch stays in hand while the next is fetched
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)
        handled.append(batch)

    async def run() -> float:
        bus = await JetStreamBus.connect(settings)
        try:
            await bus.subscribe(STORE_WRITER, swallowing)
            consumer = bus.consumers[STORE_WRITER]
            await bus.publish(one_fix(store.device_id, 0))
            await wait_until(lambda: consumer.handling is not None, 20, "first batch in hand")
            await bus.publish(one_fix(store.device_id, 1))
            # the second batch fetched, the loop waits for the first: close() cancels it there
            await wait_until(lambda: consumer.handling is None, 20, "second batch fetched")
            began = time.monotonic()
            closing = asyncio.ensure_future(bus.close())
            done, _ = await asyncio.wait([closing], timeout=CLOSE_TIMEOUT_S + 20)
            assert done, "close() did not return"  # before the fix: it waited for ever
            return time.monotonic() - began
        finally:
            async with await nats.connect(settings.nats_url) as client:
                await client.jetstream().delete_stream(settings.stream)

    took = asyncio.run(run())
    assert took < CLOSE_TIMEOUT_S  # the loop ended on its own, nothing was left behind
    assert [len(batch) for batch in handled] == [1, 1]  # the batch fetched was handled too
    assert "left behind" not in caplog.text


def test_closing_leaves_behind_a_batch_that_will_not_end_and_says_so(
    store, nats_server, caplog, monkeypatch  # noqa: F811
):
    """A handler that ignores every cancellation (a store hung in a driver) bounds close() by
    CLOSE_TIMEOUT_S, and the log names what was left running: a stopping process stops."""
    monkeypatch.setattr(jetstream, "CLOSE_TIMEOUT_S", 0.5)
    settings = bus_settings()
    release = asyncio.Event()

    async def stuck(batch: list[Fix]) -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()

    async def run() -> float:
        bus = await JetStreamBus.connect(settings)
        try:
            await bus.subscribe(STORE_WRITER, stuck)
            await bus.publish(one_fix(store.device_id, 0))
            await wait_until(lambda: bus.consumers[STORE_WRITER].handling is not None, 20,
                             "a batch in hand")  # fmt: skip
            began = time.monotonic()
            await asyncio.wait_for(bus.close(), 20)
            return time.monotonic() - began
        finally:
            release.set()  # asyncio.run waits for what is left when it ends
            async with await nats.connect(settings.nats_url) as client:
                await client.jetstream().delete_stream(settings.stream)

    took = asyncio.run(run())
    assert took < 5
    assert "closing: batches in hand still running after 0 s, left behind" in caplog.text
