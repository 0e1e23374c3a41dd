"""Partition leases and monitor checkpoints in JetStream key-value buckets.

Leases (bucket ``<stream>_LEASES``, entries expiring after ``lease_s``):

- ``worker.<id>``: a worker's heartbeat, written at every round; the workers alive are those
  whose heartbeat has not expired.
- ``partition.<n>``: the worker owning partition n. Taken with a create (refused while it
  exists), renewed with an update on the revision the owner last wrote (refused if anyone
  else wrote since), given up with a delete on that revision. An owner that stops renewing
  (killed, stuck, cut off) loses it when the entry expires, and another worker takes it.

Each worker aims at its fair share, ``ceil(partitions / workers alive)``: it gives up what it
owns beyond it (a worker joined) and takes free partitions up to it (a worker left or died).

Checkpoints (bucket ``<stream>_CHECKPOINTS``, kept): ``partition.<n>`` holds the stream
sequence a monitor state covers (8 bytes, big-endian) followed by the state.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import (
    BucketNotFoundError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NoKeysError,
)
from nats.js.kv import KeyValue

_SEQUENCE_BYTES = 8


def fair_share(partitions: int, workers: int) -> int:
    """How many partitions each of ``workers`` alive should own."""
    return math.ceil(partitions / max(workers, 1))


def preferred_order(partitions: int, worker: str) -> list[int]:
    """The order in which ``worker`` tries free partitions: a rotation of its own, so workers
    starting together do not all race for partition 0."""
    start = sum(worker.encode()) % partitions
    return [(start + n) % partitions for n in range(partitions)]


async def _bucket(js: JetStreamContext, config: KeyValueConfig) -> KeyValue:
    try:
        return await js.key_value(config.bucket)
    except BucketNotFoundError:
        return await js.create_key_value(config)


class Leases:
    """This worker's view of the lease bucket; see the module docstring."""

    def __init__(self, kv: KeyValue, worker: str) -> None:
        self.kv = kv
        self.worker = worker
        self.revisions: dict[int, int] = {}  # partition -> the revision this worker wrote

    @classmethod
    async def open(cls, js: JetStreamContext, stream: str, worker: str, lease_s: float) -> Leases:
        """The lease bucket of ``stream`` (created if missing) as ``worker`` sees it."""
        config = KeyValueConfig(bucket=f"{stream}_LEASES", ttl=lease_s)
        return cls(await _bucket(js, config), worker)

    async def heartbeat(self) -> int:
        """Say this worker is alive; return how many workers are (itself included)."""
        await self.kv.put(f"worker.{self.worker}", b"alive")
        try:
            keys = await self.kv.keys()
        except NoKeysError:  # its own heartbeat expired meanwhile: a very slow round
            return 1
        return max(1, sum(key.startswith("worker.") for key in keys))

    async def take(self, partition: int) -> bool:
        """Own ``partition`` if nobody does."""
        try:
            self.revisions[partition] = await self.kv.create(
                f"partition.{partition}", self.worker.encode()
            )
        except KeyWrongLastSequenceError:
            return False
        return True

    async def renew(self, partition: int) -> bool:
        """Keep ``partition`` another ``lease_s``; False if it was lost meanwhile."""
        try:
            self.revisions[partition] = await self.kv.update(
                f"partition.{partition}", self.worker.encode(), last=self.revisions[partition]
            )
        except KeyWrongLastSequenceError:
            del self.revisions[partition]
            return False
        return True

    async def give_up(self, partition: int) -> None:
        """Free ``partition`` for another worker (unless someone took it already)."""
        revision = self.revisions.pop(partition, None)
        if revision is not None:
            with contextlib.suppress(KeyWrongLastSequenceError):
                await self.kv.delete(f"partition.{partition}", last=revision)

    async def owners(self) -> dict[int, str]:
        """Every partition owned, with its owner (for health and tests)."""
        try:
            keys = await self.kv.keys()
        except NoKeysError:
            return {}
        found = {}
        for key in keys:
            if key.startswith("partition."):
                with contextlib.suppress(KeyNotFoundError):
                    entry = await self.kv.get(key)
                    found[int(key.split(".")[1])] = (entry.value or b"").decode()
        return found

    async def leave(self) -> None:
        """Stop the heartbeat (the partitions are given up one by one before)."""
        with contextlib.suppress(Exception):
            await self.kv.delete(f"worker.{self.worker}")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    sequence: int
    state: bytes


class Checkpoints:
    """The checkpoint bucket of a stream; see the module docstring."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, stream: str) -> Checkpoints:
        return cls(await _bucket(js, KeyValueConfig(bucket=f"{stream}_CHECKPOINTS")))

    async def get(self, partition: int) -> Checkpoint | None:
        try:
            entry = await self.kv.get(f"partition.{partition}")
        except KeyNotFoundError:
            return None
        value = entry.value or b""
        sequence = int.from_bytes(value[:_SEQUENCE_BYTES], "big")
        return Checkpoint(sequence, value[_SEQUENCE_BYTES:])

    async def put(self, partition: int, checkpoint: Checkpoint) -> None:
        value = checkpoint.sequence.to_bytes(_SEQUENCE_BYTES, "big") + checkpoint.state
        await self.kv.put(f"partition.{partition}", value)
