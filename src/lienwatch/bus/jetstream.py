"""The NATS JetStream position bus: one stream, subjects partitioned by vehicle.

Fixes are published to ``<prefix>.<partition>`` with partition = device id mod partitions,
so every fix of a device lands in one partition, in order, and a worker that owns a set of
partitions sees whole vehicles. ``publish`` returns once the server has acknowledged every
message (stored in the stream): that is what durable means here. Consumers are durable pull
consumers: a batch is acknowledged after the handler returns and redelivered if it raised or
the process died first (at least once; the store drops the duplicates).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import nats
from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from lienwatch.config import BusSettings
from lienwatch.telematics.fixes import Fix, FixHandler

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _moment(micros: int) -> datetime:
    return datetime.fromtimestamp(micros / 1_000_000, UTC)


def encode_fixes(fixes: Sequence[Fix]) -> bytes:
    """Fixes as a compact JSON array of arrays (times in epoch microseconds)."""
    rows = [
        [
            f.device_id, _micros(f.time), f.lat, f.lon, f.speed_kmh, f.course,
            int(f.valid), f.alarms, int(f.archived), _micros(f.received_at),
        ]
        for f in fixes
    ]  # fmt: skip
    return json.dumps(rows, separators=(",", ":")).encode()


def decode_fixes(payload: bytes) -> list[Fix]:
    """Undo :func:`encode_fixes`.

    Raises:
        ValueError: the payload is not a batch of fixes.
    """
    try:
        return [
            Fix(
                device_id=int(row[0]), time=_moment(row[1]), lat=float(row[2]),
                lon=float(row[3]), speed_kmh=float(row[4]), course=int(row[5]),
                valid=bool(row[6]), alarms=str(row[7]), archived=bool(row[8]),
                received_at=_moment(row[9]),
            )
            for row in json.loads(payload)
        ]  # fmt: skip
    except (TypeError, IndexError, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"payload: not a batch of fixes ({exc})") from None


class JetStreamBus:
    """:class:`~lienwatch.telematics.fixes.PositionBus` on a NATS JetStream stream.

    Build it with :meth:`connect`, which creates the stream if it does not exist.
    """

    def __init__(self, client: Client, stream: JetStreamContext, settings: BusSettings) -> None:
        self.client = client
        self.js = stream
        self.settings = settings
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def connect(cls, settings: BusSettings) -> JetStreamBus:
        """Connect to ``settings.nats_url`` and make sure the stream exists."""
        client = await nats.connect(settings.nats_url, connect_timeout=5, max_reconnect_attempts=3)
        js = client.jetstream()
        config = StreamConfig(
            name=settings.stream, subjects=[f"{settings.subject_prefix}.>"], duplicate_window=120
        )
        await js.add_stream(config)
        return cls(client, js, settings)

    def subject(self, device_id: int) -> str:
        """The subject of a device's partition."""
        return f"{self.settings.subject_prefix}.{device_id % self.settings.partitions}"

    async def publish(self, fixes: Sequence[Fix]) -> None:
        """One message per partition present in ``fixes``; return once all are acknowledged."""
        by_subject: dict[str, list[Fix]] = defaultdict(list)
        for fix in fixes:
            by_subject[self.subject(fix.device_id)].append(fix)
        await asyncio.gather(
            *(
                self.js.publish(subject, encode_fixes(part), stream=self.settings.stream)
                for subject, part in by_subject.items()
            )
        )

    async def subscribe(
        self, name: str, handler: FixHandler, *, partitions: Sequence[int] | None = None
    ) -> None:
        """Run a durable pull consumer ``name`` over all partitions (or the given ones) in a
        background task until :meth:`close`."""
        prefix = self.settings.subject_prefix
        subjects = (
            [f"{prefix}.>"] if partitions is None else [f"{prefix}.{p}" for p in partitions]
        )
        for subject in subjects:
            durable = name if partitions is None else f"{name}-{subject.rsplit('.', 1)[1]}"
            pull = await self.js.pull_subscribe(
                subject, durable=durable, stream=self.settings.stream
            )
            self._tasks.append(asyncio.create_task(self._consume(durable, pull, handler)))

    async def _consume(self, name: str, pull: JetStreamContext.PullSubscription,
                       handler: FixHandler) -> None:  # fmt: skip
        while True:
            try:
                messages = await pull.fetch(batch=256, timeout=1)
            except NatsTimeout:
                continue
            fixes: list[Fix] = []
            good = []
            for message in messages:
                try:
                    fixes.extend(decode_fixes(message.data))
                    good.append(message)
                except ValueError as exc:  # a poison message must not block the partition
                    log.error("consumer %s: dropping message on %s: %s", name, message.subject, exc)
                    await message.term()
            try:
                await handler(fixes)
            except Exception:
                log.exception("consumer %s: handler failed; %d messages redelivered", name,
                              len(good))  # fmt: skip
                for message in good:
                    with contextlib.suppress(Exception):
                        await message.nak(delay=1)
                continue
            for message in good:
                await message.ack()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        # Not drain(): a cancelled pull request would hold it for its whole timeout. Every
        # publish has been acknowledged already; unacknowledged deliveries come back later.
        await self.client.close()
