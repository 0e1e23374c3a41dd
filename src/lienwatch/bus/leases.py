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

Checkpoints (bucket ``<stream>_CHECKPOINTS``, kept), so a partition of any size checkpoints
under the 1 MB NATS ``max_payload``:

- ``partition.<n>.<sequence>.<k>``: piece k of the state covering stream sequence
  ``sequence``, ``CHUNK_BYTES`` (256 KiB) at most;
- ``partition.<n>``: written after every piece, the stream sequence (8 bytes, big-endian),
  ``LWCK``, then JSON ``{"chunks": m, "bytes": b, "sha256": …}``. Until it is written the
  previous checkpoint stands; the pieces of the previous one are purged after it.

A reader checks the length and digest of the pieces it read against the head: pieces purged
meanwhile (their writer lost the partition while writing) read as no checkpoint. A head
without ``LWCK`` is the single-entry layout of older lienwatch versions (sequence then the
whole state), read as it is; its state version then decides whether it loads
(:mod:`lienwatch.monitor.checkpoint`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import secrets
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import (
    BadRequestError,
    BucketNotFoundError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
)
from nats.js.kv import KeyValue

from lienwatch.errors import ConflictError

_SEQUENCE_BYTES = 8
#: JetStream's error codes of a write refused for its expected last sequence.
_WRONG_LAST = (10071, 10164)
#: The most bytes of state in one key-value entry (NATS refuses messages over 1 MB).
CHUNK_BYTES = 256 * 1024
_CHUNKED = b"LWCK"

log = logging.getLogger(__name__)


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


async def live_entries(js: JetStreamContext, kv: KeyValue, bucket: str) -> dict[str, bytes]:
    """The keys of key-value ``bucket`` that hold a value now, with their values, by key.

    Read from the bucket's stream state (stream ``KV_<bucket>``, subjects ``$KV.<bucket>.<key>``,
    as JetStream lays buckets out) rather than with nats-py's ``KeyValue.keys()``: that one
    lists through a watcher which, when its first messages arrive before it has read its
    consumer's pending count (a loaded machine), ends the list early: some keys or none. A
    subject whose last message marks a delete or purge is left out (its ``get`` fails)."""
    prefix = f"$KV.{bucket}."
    info = await js.stream_info(f"KV_{bucket}", subjects_filter=f"{prefix}>")
    found = {}
    for subject in sorted(info.state.subjects or {}):
        key = subject[len(prefix) :]
        with contextlib.suppress(KeyNotFoundError):
            found[key] = (await kv.get(key)).value or b""
    return found


class Leases:
    """This worker's view of the lease bucket; see the module docstring."""

    def __init__(self, js: JetStreamContext, kv: KeyValue, bucket: str, worker: str) -> None:
        self.js, self.kv, self.bucket = js, kv, bucket
        self.worker = worker
        self.revisions: dict[int, int] = {}  # partition -> the revision this worker wrote

    @classmethod
    async def open(cls, js: JetStreamContext, stream: str, worker: str, lease_s: float) -> Leases:
        """The lease bucket of ``stream`` (created if missing) as ``worker`` sees it."""
        config = KeyValueConfig(bucket=f"{stream}_LEASES", ttl=lease_s)
        return cls(js, await _bucket(js, config), config.bucket, worker)

    async def heartbeat(self) -> int:
        """Say this worker is alive; return how many workers are (itself included)."""
        await self.kv.put(f"worker.{self.worker}", b"alive")
        keys = await live_entries(self.js, self.kv, self.bucket)
        # at least itself: its own heartbeat may have expired meanwhile in a very slow round
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
        """Free ``partition`` for another worker (unless it expired or someone took it
        already: then it is not this worker's to free)."""
        revision = self.revisions.pop(partition, None)
        if revision is None:
            return
        try:
            await self.kv.delete(f"partition.{partition}", last=revision)
        except BadRequestError as exc:  # a delete's wrong last sequence is not converted
            if not isinstance(exc, KeyWrongLastSequenceError) and exc.err_code not in _WRONG_LAST:
                raise

    async def owners(self) -> dict[int, str]:
        """Every partition owned, with its owner (for health and tests)."""
        entries = await live_entries(self.js, self.kv, self.bucket)
        return {int(key.split(".")[1]): value.decode() for key, value in entries.items()
                if key.startswith("partition.")}  # fmt: skip

    async def leave(self) -> None:
        """Stop the heartbeat (the partitions are given up one by one before)."""
        with contextlib.suppress(Exception):
            await self.kv.delete(f"worker.{self.worker}")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    sequence: int
    state: bytes


class StaleWrite(ConflictError):
    """A conditional write found the head changed since its writer read it."""


class Checkpoints:
    """The checkpoint bucket of a stream; see the module docstring."""

    def __init__(self, kv: KeyValue, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.kv = kv
        self.chunk_bytes = chunk_bytes

    @classmethod
    async def open(
        cls, js: JetStreamContext, stream: str, kind: str = "CHECKPOINTS"
    ) -> Checkpoints:
        """The bucket ``<stream>_<kind>``: the checkpoints, or another partition's state kept
        the same way (``STAYS``: the long stays ``cluster`` compares across partitions)."""
        return cls(await _bucket(js, KeyValueConfig(bucket=f"{stream}_{kind}")))

    async def get(self, partition: int) -> Checkpoint | None:
        """The last checkpoint of ``partition``, or None (never written, or its pieces gone)."""
        head = await self._head(partition)
        if head is None:
            return None
        sequence, chunked, meta = head
        if not chunked:
            return Checkpoint(sequence, meta["state"])
        token = meta.get("token")
        try:
            pieces = await asyncio.gather(*(
                self.kv.get(_piece(partition, sequence, k, token)) for k in range(meta["chunks"])
            ))  # fmt: skip
        except KeyNotFoundError:
            log.warning("checkpoint of partition %d at %d: a piece is gone", partition, sequence)
            return None
        state = b"".join(piece.value or b"" for piece in pieces)
        if len(state) != meta["bytes"] or hashlib.sha256(state).hexdigest() != meta["sha256"]:
            log.warning("checkpoint of partition %d at %d: pieces do not match their head",
                        partition, sequence)  # fmt: skip
            return None
        return Checkpoint(sequence, state)

    async def put(
        self, partition: int, checkpoint: Checkpoint, *, last: int | None = None
    ) -> None:
        """Write the pieces (named by a token of this write, so that two writers never
        overwrite each other's), then the head; then purge the previous checkpoint's pieces.

        With ``last`` the head is written only if its revision is still ``last`` (0: if
        there is none yet); otherwise this write's pieces are purged and StaleWrite raised,
        the other writer's checkpoint left whole."""
        previous = await self._head(partition)
        state, size = checkpoint.state, self.chunk_bytes
        pieces = [state[at : at + size] for at in range(0, len(state), size)] or [b""]
        token = secrets.token_hex(4)
        for k, piece in enumerate(pieces):
            await self.kv.put(_piece(partition, checkpoint.sequence, k, token), piece)
        meta = {"chunks": len(pieces), "bytes": len(state), "token": token,
                "sha256": hashlib.sha256(state).hexdigest()}  # fmt: skip
        head = checkpoint.sequence.to_bytes(_SEQUENCE_BYTES, "big") + _CHUNKED
        key, value = f"partition.{partition}", head + json.dumps(meta).encode()
        try:
            if last is None:
                await self.kv.put(key, value)
            elif last == 0:
                await self.kv.create(key, value)
            else:
                await self.kv.update(key, value, last=last)
        except KeyWrongLastSequenceError:
            await self._purge(partition, checkpoint.sequence, meta)
            raise StaleWrite(f"{key}: written by another writer since revision {last}") from None
        if previous is not None and previous[1]:
            await self._purge(partition, previous[0], previous[2])

    async def head(self, partition: int) -> tuple[int, int] | None:
        """(sequence, revision) of ``partition``'s head, None before any: the revision to
        give :meth:`put` as ``last``."""
        try:
            entry = await self.kv.get(f"partition.{partition}")
        except KeyNotFoundError:
            return None
        return int.from_bytes((entry.value or b"")[:_SEQUENCE_BYTES], "big"), entry.revision or 0

    async def _purge(self, partition: int, sequence: int, meta: dict[str, Any]) -> None:
        for k in range(meta["chunks"]):
            with contextlib.suppress(KeyNotFoundError):
                await self.kv.purge(_piece(partition, sequence, k, meta.get("token")))

    async def sequence(self, partition: int) -> int | None:
        """The stream sequence of ``partition``'s last checkpoint (its head only), or None."""
        head = await self._head(partition)
        return None if head is None else head[0]

    async def _head(self, partition: int) -> tuple[int, bool, dict[str, Any]] | None:
        """(sequence, chunked, the head's JSON or ``{"state": …}`` of the older layout)."""
        try:
            entry = await self.kv.get(f"partition.{partition}")
        except KeyNotFoundError:
            return None
        value = entry.value or b""
        sequence = int.from_bytes(value[:_SEQUENCE_BYTES], "big")
        rest = value[_SEQUENCE_BYTES:]
        if rest.startswith(_CHUNKED):
            return sequence, True, json.loads(rest[len(_CHUNKED) :])
        return sequence, False, {"state": rest}


def _piece(partition: int, sequence: int, k: int, token: str | None) -> str:
    """A piece's key (without a token in the layout of earlier versions)."""
    return f"partition.{partition}.{sequence}.{k}" if token is None else (
        f"partition.{partition}.{sequence}.{token}.{k}")  # fmt: skip
