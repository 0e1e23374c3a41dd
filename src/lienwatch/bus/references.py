"""Risk zones and permitted regions published once for every monitor: the JetStream
key-value bucket ``<stream>_REFERENCES``, laid out as the checkpoints
(:class:`~lienwatch.bus.leases.Checkpoints`, slot 0, so a document of any size fits under
the NATS ``max_payload``), whose sequence numbers the publications (1, 2, …).

``lienwatch worker references publish`` writes one; every worker and ``serve`` on the
JetStream bus reads the head every ``FOLLOW_EVERY_S`` and takes a new publication (the
bytes are what :class:`lienwatch.adapters.references.PublishedReferences` parses), which
their monitors judge by from their next fleet reload."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from nats.js import JetStreamContext

from lienwatch.bus.leases import Checkpoint, Checkpoints

#: How often a process looks for a new publication (one small key-value read).
FOLLOW_EVERY_S = 2.0
_SLOT = 0

log = logging.getLogger(__name__)


class ReferenceBucket:
    """The bucket of published references; see the module docstring."""

    def __init__(self, store: Checkpoints) -> None:
        self.store = store

    @classmethod
    async def open(cls, js: JetStreamContext, stream: str) -> ReferenceBucket:
        return cls(await Checkpoints.open(js, stream, "REFERENCES"))

    async def publish(self, document: bytes) -> int:
        """Publish ``document``; its sequence number. Written on the revision of the head
        read for the number: a publication by someone else meanwhile is not overwritten, the
        StaleWrite raised names it (publish again to supersede it)."""
        head = await self.store.head(_SLOT)
        sequence, revision = head if head is not None else (0, 0)
        await self.store.put(_SLOT, Checkpoint(sequence + 1, document), last=revision)
        return sequence + 1

    async def latest(self) -> Checkpoint | None:
        """The last publication (``sequence`` and ``state``: the document), None before any."""
        return await self.store.get(_SLOT)

    async def follow(self, take: Callable[[int, bytes], None], *, after: int | None) -> None:
        """Call ``take(sequence, document)`` for each new publication after ``after``, until
        cancelled (a failed read is logged and tried again at the next round)."""
        while True:
            try:
                sequence = await self.store.sequence(_SLOT)
                if sequence is not None and sequence != after:
                    published = await self.latest()
                    if published is not None:
                        take(published.sequence, published.state)
                        after = published.sequence
            except Exception:  # NATS away a moment
                log.exception("references: reading the bucket failed")
            await asyncio.sleep(FOLLOW_EVERY_S)
