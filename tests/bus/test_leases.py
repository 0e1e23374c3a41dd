"""Partition leases in a JetStream key-value bucket, on the local NATS server: a worker
takes its fair share, gives up what it owns beyond it, and a worker that stops renewing
loses its partitions to the others when the leases expire."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import pickle
import random
import re
import uuid
import zlib
from collections.abc import AsyncIterator

import nats
import pytest
from nats.js import JetStreamContext

from lienwatch.bus.leases import (
    Checkpoint,
    Checkpoints,
    Leases,
    StaleWrite,
    fair_share,
    live_entries,
    preferred_order,
)
from lienwatch.bus.references import ReferenceBucket
from tests.bus.test_bus import nats_server  # noqa: F401  (a fixture)

LEASE_S = 2.0


@contextlib.asynccontextmanager
async def jetstream(*buckets: str) -> AsyncIterator[JetStreamContext]:
    """JetStream on the local server; the key-value ``buckets`` deleted on exit."""
    client = await nats.connect("nats://127.0.0.1:4222")
    js = client.jetstream()
    try:
        yield js
    finally:
        for bucket in buckets:
            with contextlib.suppress(Exception):
                await js.delete_key_value(bucket)
        await client.close()


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
        async with jetstream(f"{stream}_LEASES", f"{stream}_CHECKPOINTS") as js:
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

    asyncio.run(run())


def test_live_entries_are_the_keys_holding_a_value_now(nats_server):  # noqa: F811
    """An empty bucket has none (nats-py's ``keys()`` raises there); a deleted or purged key
    is left out, though its marker is still a message of the stream."""
    bucket = f"LW_LIVE_{uuid.uuid4().hex[:10]}"

    async def run() -> None:
        async with jetstream(bucket) as js:
            kv = await js.create_key_value(bucket=bucket)
            assert await live_entries(js, kv, bucket) == {}
            for key in ("worker.a", "worker.b", "partition.0", "partition.1"):
                await kv.put(key, key.encode())
            await kv.delete("worker.b")
            await kv.purge("partition.1")
            assert await live_entries(js, kv, bucket) == {"partition.0": b"partition.0",
                                                      "worker.a": b"worker.a"}  # fmt: skip

    asyncio.run(run())


def test_a_checkpoint_of_any_size_is_written_in_pieces_and_replaced_whole(nats_server):  # noqa: F811
    """3 MB of state (three times NATS's 1 MB max_payload) in 256 KiB pieces; the next
    checkpoint's head replaces it and purges its pieces; pieces gone read as no checkpoint;
    the single-entry layout of older versions is read as it is."""
    stream = f"LW_CHUNKS_{uuid.uuid4().hex[:10]}"
    big = random.Random(7).randbytes(3 * 1024 * 1024)  # incompressible
    bucket = f"{stream}_CHECKPOINTS"

    async def run() -> None:
        async with jetstream(f"{stream}_CHECKPOINTS") as js:
            checkpoints = await Checkpoints.open(js, stream)
            await checkpoints.put(3, Checkpoint(1_000, big))
            assert await checkpoints.get(3) == Checkpoint(1_000, big)
            pieces = sorted(set(await live_entries(js, checkpoints.kv, bucket)) - {"partition.3"})
            assert [re.sub(r"\.[0-9a-f]{8}\.", ".", key) for key in pieces] == sorted(
                f"partition.3.1000.{k}" for k in range(12))  # each write's pieces its token

            await checkpoints.put(3, Checkpoint(2_000, b"small"))
            assert await checkpoints.get(3) == Checkpoint(2_000, b"small")
            (piece,) = set(await live_entries(js, checkpoints.kv, bucket)) - {"partition.3"}
            assert piece.startswith("partition.3.2000.") and piece.endswith(".0")

            await checkpoints.kv.purge(piece)  # a writer that lost the race
            assert await checkpoints.get(3) is None
            old = {"chunks": 1, "bytes": 3, "sha256": hashlib.sha256(b"old").hexdigest()}
            await checkpoints.kv.put("partition.3.5.0", b"old")  # before pieces had tokens
            await checkpoints.kv.put("partition.3", (5).to_bytes(8, "big") + b"LWCK"
                                     + json.dumps(old).encode())  # fmt: skip
            assert await checkpoints.get(3) == Checkpoint(5, b"old")

            older = (77).to_bytes(8, "big") + b"state of an older lienwatch"
            await checkpoints.kv.put("partition.4", older)
            assert await checkpoints.get(4) == Checkpoint(77, b"state of an older lienwatch")

    asyncio.run(run())


class _Partition:
    """The part of a partition's LiveMonitor the sharing of long stays uses."""

    def __init__(self, stays: list, forgotten_until: int) -> None:
        self.stays, self.forgotten_until, self.mark = stays, forgotten_until, 5
        self.neighbours, self.neighbours_forgotten_until = None, None

    async def share_stays(self, neighbours, forgotten_until) -> tuple[list, int]:
        self.neighbours, self.neighbours_forgotten_until = list(neighbours), forgotten_until
        return self.stays, self.forgotten_until


def test_two_workers_give_each_partition_the_long_stays_of_the_others(nats_server):  # noqa: F811
    """Through the ``<stream>_STAYS`` bucket on the local NATS server: the cluster detector
    of each partition sees the stays of the partitions other workers own, and the newest end
    of a stay they forgot; a partition's stays as a worker of an earlier version wrote them
    (the list alone) are read with nothing forgotten."""
    from types import SimpleNamespace

    from lienwatch.bus.partitioned import PartitionedMonitor, _Owned
    from lienwatch.monitor.detectors.base import StayRecord
    from lienwatch.monitor.model import Fix

    stream = f"LW_STAYS_{uuid.uuid4().hex[:10]}"
    anchor = Fix(*([0] * len(Fix._fields)))

    def stay(vehicle: str) -> StayRecord:
        return StayRecord(vehicle, f"B-{vehicle}", 100, 200, anchor._replace(device_id="D"))

    async def run() -> None:
        async with jetstream(f"{stream}_STAYS") as js:
            bucket = await Checkpoints.open(js, stream, "STAYS")
            bus = SimpleNamespace(settings=SimpleNamespace(partitions=3))
            workers = [PartitionedMonitor(bus, None, None, None, lease_s=3, checkpoint_s=1,
                                          stays=bucket) for _ in range(2)]  # fmt: skip
            parts = [_Partition([stay("V0")], 300), _Partition([stay("V1")], 100),
                     _Partition([stay("V2")], 200)]  # fmt: skip
            workers[0].owned = {0: _Owned(parts[0]), 1: _Owned(parts[1])}
            workers[1].owned = {2: _Owned(parts[2])}
            for worker in (*workers, workers[0]):  # the second share sees the first's
                await worker._share_stays(bucket)
            seen = [sorted(s.vehicle_id for s in part.neighbours) for part in parts]
            assert seen == [["V1", "V2"], ["V0", "V2"], ["V0", "V1"]]
            assert [part.neighbours_forgotten_until for part in parts] == [200, 300, 300]
            assert bucket.kv is not None and await bucket.get(2) is not None

            older = zlib.compress(pickle.dumps([stay("V9")]))  # the stays alone
            await bucket.put(2, Checkpoint(5, older))
            await workers[0]._share_stays(bucket)
            assert sorted(s.vehicle_id for s in parts[0].neighbours) == ["V1", "V9"]
            assert parts[0].neighbours_forgotten_until == 100

    asyncio.run(run())


def test_giving_up_a_lease_that_expired_and_was_taken_again_leaves_it_alone(nats_server):  # noqa: F811
    """A slow worker stopping after its lease expired and another took the partition: its
    give-up is refused by the revision and raises nothing (a worker used to exit 1 here)."""
    stream = f"LW_GIVE_{uuid.uuid4().hex[:10]}"

    async def run() -> None:
        async with jetstream(f"{stream}_LEASES") as js:
            a = await Leases.open(js, stream, "a", LEASE_S)
            b = await Leases.open(js, stream, "b", LEASE_S)
            assert await a.take(0)
            await asyncio.sleep(LEASE_S * 1.5)  # a does not renew: the lease expires
            assert await b.take(0)
            await a.give_up(0)
            assert await b.owners() == {0: "b"}

    asyncio.run(run())


def test_two_publishers_of_references_never_overwrite_each_other(nats_server):  # noqa: F811
    """A publication is written on the revision of the head its publisher read: one that
    finds another publication written meanwhile is refused (StaleWrite), its pieces gone,
    and the other publication stays whole."""
    stream = f"LW_REFS_{uuid.uuid4().hex[:10]}"

    async def run() -> None:
        async with jetstream(f"{stream}_REFERENCES") as js:
            first = await ReferenceBucket.open(js, stream)
            second = await ReferenceBucket.open(js, stream)
            assert await first.publish(b"zones 1") == 1
            read = await first.store.head(0)  # the first publisher reads the head ...
            assert await second.publish(b"x" * 300_000) == 2  # ... the second publishes
            with pytest.raises(StaleWrite, match="written by another writer"):
                await first.store.put(0, Checkpoint(read[0] + 1, b"zones 2"), last=read[1])
            assert await first.latest() == Checkpoint(2, b"x" * 300_000)
            live = await live_entries(js, first.store.kv, f"{stream}_REFERENCES")
            assert len(live) == 1 + 2  # the head and the second's two pieces
            assert await first.publish(b"zones 3") == 3  # read again: supersedes it

    asyncio.run(run())
