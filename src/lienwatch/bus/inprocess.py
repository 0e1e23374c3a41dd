"""The in-process position bus: an asyncio queue in front of the store, with group commit.

``publish`` puts its batch on a queue and waits; one writer task takes every batch waiting
(up to ``max_fixes``), stores them in one transaction through a
:class:`~lienwatch.telematics.fixes.FixWriter` running in a worker thread, and then wakes the
publishers. So durable means committed, and a hundred connections publishing at once cost one
commit, not a hundred. Subscribers get each committed batch afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from lienwatch.telematics.fixes import Fix, FixHandler, FixWriter

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BusStats:
    """Running counts: fixes published (made durable), of which new (not duplicates)."""

    published: int = 0
    new: int = 0
    commits: int = 0
    failed_commits: int = 0


class InProcessBus:
    """:class:`~lienwatch.telematics.fixes.PositionBus` committing to the store in-process.

    Args:
        writer: stores fixes (blocking; run in a worker thread).
        max_fixes: most fixes committed in one transaction.
    """

    def __init__(self, writer: FixWriter, *, max_fixes: int = 20_000) -> None:
        if max_fixes < 1:
            raise ValueError(f"max_fixes: must be at least 1, got {max_fixes}")
        self.writer = writer
        self.max_fixes = max_fixes
        self.stats = BusStats()
        self._queue: asyncio.Queue[tuple[Sequence[Fix], asyncio.Future[None]]] = asyncio.Queue()
        self._handlers: dict[str, FixHandler] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def publish(self, fixes: Sequence[Fix]) -> None:
        """Return once ``fixes`` are committed; raise the writer's error if the commit failed."""
        if self._closed:
            raise RuntimeError("position bus: closed")
        if not fixes:
            return
        if self._task is None:
            self._task = asyncio.create_task(self._write_loop(), name="position-bus-writer")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((fixes, done))
        await done

    async def subscribe(self, name: str, handler: FixHandler) -> None:
        """Call ``handler`` with every batch committed from now on; ``name`` must be unique.

        A handler that raises is logged: the batch is already in the store to read back.
        """
        if name in self._handlers:
            raise ValueError(f"name: a subscriber {name!r} already exists")
        self._handlers[name] = handler

    async def close(self) -> None:
        """Stop the writer after the batches already queued; later publishes raise."""
        self._closed = True
        if self._task is not None:
            self._queue.put_nowait(((), asyncio.get_running_loop().create_future()))
            await self._task
            self._task = None

    async def _write_loop(self) -> None:
        while True:
            group = [await self._queue.get()]
            size = len(group[0][0])
            while size < self.max_fixes and not self._queue.empty():
                group.append(self._queue.get_nowait())
                size += len(group[-1][0])
            batch = [fix for fixes, _ in group for fix in fixes]
            if batch:
                await self._commit(batch, [done for fixes, done in group if fixes])
            if any(not fixes for fixes, _ in group):  # the stop mark of close()
                return

    async def _commit(self, batch: list[Fix], waiters: list[asyncio.Future[None]]) -> None:
        try:
            new = await asyncio.to_thread(self.writer.write, batch)
        except Exception as exc:  # every waiter learns its fixes are not durable
            self.stats.failed_commits += 1
            log.error("position bus: commit of %d fixes failed: %s", len(batch), exc)
            for done in waiters:
                if not done.done():
                    done.set_exception(exc)
            return
        self.stats.commits += 1
        self.stats.published += len(batch)
        self.stats.new += new
        for done in waiters:
            if not done.done():
                done.set_result(None)
        for name, handler in list(self._handlers.items()):
            try:
                await handler(batch)
            except Exception:
                log.exception("position bus: subscriber %s failed on %d fixes", name, len(batch))
