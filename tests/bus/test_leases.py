"""Partition leases in a JetStream key-value bucket, on the local NATS server: a worker
takes its fair share, gives up what it owns beyond it, and a worker that stops renewing
loses its partitions to the others when the leases expire."""

from __future__ import annotations

import asyncio
import uuid

import nats
import pytest

from lienwatch.bus.leases import Checkpoint, Checkpoints, Leases, fair_share, preferred_order
from tests.bus.test_bus import nats_server  # noqa: F401  (a fixture)

LEASE_S = 2.0


@pytest.mark.parametrize(("partitions", "workers", "share"),
                         [(16, 1, 16), (16, 2, 8), (16, 3, 6), (4, 8, 1), (4, 0, 4)])  # fmt: skip
def test_fair_share_covers_every_partition(partitions, workers, share):
    assert fair_share(partitions, workers) == share
    assert share * max(workers, 1) >= partitions


def test_each_worker_tries_the_partitions_in_an_order_of_its_own():
    orders = {worker: preferred_order(8, worker) for worker in ("host-1", "host-2", "host-3")}
    assert all(sorted(order) == list(range(8)) for order in orders.values())
    assert len({order[0] for order in orders.values()}) > 1


def test_leases_are_shared_given_up_and_taken_over_when_they_expire(nats_server):  # noqa: F811
    stream = f"LW_LEASES_{uuid.uuid4().hex[:10]}"

    async def run() -> None:
        client = await nats.connect("nats://127.0.0.1:4222")
        js = client.jetstream()
        try:
            a = await Leases.open(js, stream, "a", LEASE_S)
            b = await Leases.open(js, stream, "b", LEASE_S)
            assert await a.heartbeat() == 1
            assert [await a.take(p) for p in range(4)] == [True] * 4
            assert await b.heartbeat() == 2
            assert [await b.take(p) for p in range(4)] == [False] * 4  # all owned
            await a.give_up(2)
            await a.give_up(3)
            assert [await b.take(p) for p in (2, 3)] == [True, True]
            assert await a.owners() == {0: "a", 1: "a", 2: "b", 3: "b"}
            for _ in range(3):  # b renews, a does not: a's leases and heartbeat expire
                await asyncio.sleep(LEASE_S / 2)
                assert [await b.renew(p) for p in (2, 3)] == [True, True]
                await b.heartbeat()
            assert await b.heartbeat() == 1
            assert [await b.take(p) for p in (0, 1)] == [True, True]
            assert [await a.renew(p) for p in (0, 1)] == [False, False]  # lost, not stolen back
            assert await b.owners() == {0: "b", 1: "b", 2: "b", 3: "b"}

            checkpoints = await Checkpoints.open(js, stream)
            assert await checkpoints.get(0) is None
            await checkpoints.put(0, Checkpoint(123_456, b"state"))
            assert await checkpoints.get(0) == Checkpoint(123_456, b"state")
        finally:
            for bucket in (f"{stream}_LEASES", f"{stream}_CHECKPOINTS"):
                await js.delete_key_value(bucket)
            await client.close()

    asyncio.run(run())
