"""The NATS JetStream position bus: one stream, subjects partitioned by vehicle.

Fixes are published to ``<prefix>.<partition>`` with the partition of the device's vehicle
(:func:`partition_of` its VIN, found through ``vehicle_keys``; a device fitted to no vehicle,
or a bus without ``vehicle_keys``, by device id mod partitions), so every fix of a vehicle
lands in one partition, in order, and a worker that owns a set of partitions sees whole
vehicles (both trackers of a car, for the tracker-pair detector). ``publish`` returns once
the server has acknowledged every message (stored in the stream): that is what durable means
here. Publishes are grouped per
partition: while a partition's message is on its way, the fixes published for it meanwhile
wait and go out together as the next message (up to ``MAX_MESSAGE_FIXES``), so a hundred
connections publishing one fix each cost a few messages, not a hundred, on both sides of
the stream. Consumers are durable pull
consumers: a batch is acknowledged after the handler returns and redelivered if it raised or
the process died first (at least once; the store drops the duplicates).

A consumer's loop never ends while the process runs. Every failure (NATS unreachable, the
server having lost the consumer, the handler raising) is logged with its traceback, counted
in the consumer's status, and retried after a backoff, the pull subscription set up afresh.
Only a consumer failing without a break for ``[bus] give_up_s``, a loop that ended anyway or a
connection nats-py closed for good sets :attr:`JetStreamBus.gave_up`, on which the commands
stop and exit with status 1: a supervisor restarts a dead process, nobody notices a live one
that stopped consuming.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import zlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError

from lienwatch import clock
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


#: Most fixes in one message (about 80 bytes each; NATS refuses payloads over 1 MB).
MAX_MESSAGE_FIXES = 5_000
#: Messages one pull request asks for, and how long it waits on an idle stream (seconds).
FETCH_BATCH = 1_000
FETCH_TIMEOUT_S = 1.0
#: Messages delivered and not yet acknowledged, over all processes sharing a consumer, above
#: which the server delivers no more. The server's default (1,000) is one batch: a worker
#: killed with a batch in hand blocked the others for the whole ack wait (30 s), and a fetch
#: the limit cut short waited out its timeout. Each process holds at most two batches.
MAX_ACK_PENDING = 20_000
#: The wait after a consumer's first failure, doubled at each failure in a row up to the
#: second figure.
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
#: An idle consumer checks this often that the server still has it: a consumer deleted, or
#: a server restarted without its store, leaves pull requests unanswered, like an idle stream.
CHECK_IDLE_S = 5.0
#: How long health waits for the server's figures of a consumer.
INFO_TIMEOUT_S = 2.0
#: The longest a publish may take to be acknowledged. nats-py bounds its request by its own
#: timeout (5 s), but not the writes before it (a flush that waits on the socket during a
#: reconnection): past this, the publishers learn it failed and their devices send again.
PUBLISH_TIMEOUT_S = 15.0
#: The longest :meth:`JetStreamBus.close` (and ``stop_consumer``) waits for each of its steps:
#: the consumer loops to end, the batches in hand to be handled, the connection to close.
#: What is still running then is logged and left behind: a stopping process must stop.
CLOSE_TIMEOUT_S = 10.0


#: How long a gateway trusts its device → vehicle map (a tracker refitted to another car).
VEHICLE_KEYS_TTL_S = 60.0

#: Finds the VIN of the vehicle each given device key is fitted to (blocking; devices fitted
#: to none are left out).
VehicleKeys = Callable[[Collection[int]], dict[int, str]]
#: A partition consumer's handler: the fixes of a batch and the stream sequence of its last
#: message (what a checkpoint taken after it covers).
SequencedHandler = Callable[[list[Fix], int], Awaitable[None]]


def partition_of(vehicle: str, partitions: int) -> int:
    """The partition of a vehicle (by VIN): stable across processes and restarts."""
    return zlib.crc32(vehicle.encode()) % partitions


def _now() -> str:
    return clock.now().isoformat()


@dataclass(slots=True)
class ConsumerStatus:
    """A consumer as this process sees it; :meth:`JetStreamBus.status` adds the server's view.

    ``state`` is ``running``, ``retrying`` (waiting after a failure) or ``stopped`` (its loop
    ended: the process is stopping, or gave up).
    """

    state: str = "running"
    batches: int = 0
    messages: int = 0
    fixes: int = 0
    dropped: int = 0  # messages that were not batches of fixes, terminated
    errors: int = 0
    resubscribed: int = 0  # pull subscriptions set up afresh after a failure
    last_message_at: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    failing_since: float | None = None  # monotonic; None while the last attempt succeeded

    def as_dict(self) -> dict[str, Any]:
        report = asdict(self)
        del report["failing_since"]
        return report


@dataclass(slots=True)
class _Consumer:
    durable: str
    subject: str
    handler: FixHandler | None  # None: the sequenced handler takes the batches
    status: ConsumerStatus = field(default_factory=ConsumerStatus)
    config: ConsumerConfig = field(
        default_factory=lambda: ConsumerConfig(max_ack_pending=MAX_ACK_PENDING)
    )
    sequenced: SequencedHandler | None = None  # called instead of handler when given
    leaving: bool = False  # being stopped on its own (a partition handed over)
    pull: JetStreamContext.PullSubscription | None = None
    task: asyncio.Task[None] | None = None
    handling: asyncio.Task[None] | None = None  # the batch handled while the next is fetched
    checked: float = field(default_factory=time.monotonic)  # the server last confirmed it
    failures: int = 0  # in a row
    handler_failing: bool = False  # the last batch handled raised


class JetStreamBus:
    """:class:`~lienwatch.telematics.fixes.PositionBus` on a NATS JetStream stream.

    Build it with :meth:`connect`, which creates the stream if it does not exist. ``gave_up``
    is set (with ``give_up_reason``) when a consumer cannot go on; see the module docstring.
    """

    def __init__(
        self, client: Client, stream: JetStreamContext, settings: BusSettings,
        vehicle_keys: VehicleKeys | None = None,
    ) -> None:  # fmt: skip
        self.client = client
        self.js = stream
        self.settings = settings
        self.consumers: dict[str, _Consumer] = {}
        self.gave_up = asyncio.Event()
        self.give_up_reason: str | None = None
        self.disconnects = 0
        self._closing = False
        self._outbox: dict[str, list[tuple[Sequence[Fix], asyncio.Future[None]]]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}  # by subject
        self.vehicle_keys = vehicle_keys
        self._vehicles: dict[int, str | None] = {}  # device key -> VIN (None: fitted to none)
        self._vehicles_since = time.monotonic()

    @classmethod
    async def connect(
        cls, settings: BusSettings, vehicle_keys: VehicleKeys | None = None
    ) -> JetStreamBus:
        """Connect to ``settings.nats_url`` and make sure the stream exists.

        A server that does not answer at start fails the call after three attempts. Once
        connected, the client reconnects for ever (every second) after a connection loss;
        ``[bus] give_up_s`` bounds how long the consumers wait for it.
        """
        client = Client()
        bus = cls(client, client.jetstream(), settings, vehicle_keys)
        await client.connect(
            settings.nats_url, connect_timeout=5, max_reconnect_attempts=3,
            reconnect_time_wait=1, error_cb=bus._on_error, disconnected_cb=bus._on_disconnected,
            reconnected_cb=bus._on_reconnected, closed_cb=bus._on_closed,
        )  # fmt: skip
        # nats-py reads this at each reconnection; -1 at connect would retry a wrong URL for ever.
        client.options["max_reconnect_attempts"] = -1
        await bus._add_stream()
        return bus

    async def _add_stream(self) -> None:
        """Create the stream, or find it as configured (the server answers the same)."""
        prefix = self.settings.subject_prefix
        config = StreamConfig(
            name=self.settings.stream, subjects=[f"{prefix}.>"], duplicate_window=120
        )
        await self.js.add_stream(config)

    def subject(self, device_id: int) -> str:
        """The subject of a device's partition (its vehicle's, once :meth:`publish` looked
        the vehicle up)."""
        partitions = self.settings.partitions
        vehicle = self._vehicles.get(device_id)
        partition = device_id % partitions if vehicle is None else partition_of(vehicle, partitions)
        return f"{self.settings.subject_prefix}.{partition}"

    async def publish(self, fixes: Sequence[Fix]) -> None:
        """Return once every fix is in an acknowledged message of its partition; raise the
        server's or the connection's error otherwise."""
        if self.vehicle_keys is not None:
            await self._look_up_vehicles({fix.device_id for fix in fixes})
        by_subject: dict[str, list[Fix]] = defaultdict(list)
        for fix in fixes:
            by_subject[self.subject(fix.device_id)].append(fix)
        await asyncio.gather(*(self._post(subject, part) for subject, part in by_subject.items()))

    async def _look_up_vehicles(self, devices: set[int]) -> None:
        """Learn the vehicles of devices not seen since the map was last renewed."""
        assert self.vehicle_keys is not None
        if time.monotonic() - self._vehicles_since > VEHICLE_KEYS_TTL_S:
            self._vehicles, self._vehicles_since = {}, time.monotonic()
        # not ``devices - self._vehicles.keys()``: a set less a dict view walks the whole map
        # (790 µs a publish at 2,000 devices, most of a gateway's time), this only the devices
        if missing := {device for device in devices if device not in self._vehicles}:
            found = await asyncio.to_thread(self.vehicle_keys, missing)
            self._vehicles.update({device: found.get(device) for device in missing})

    def _post(self, subject: str, fixes: Sequence[Fix]) -> asyncio.Future[None]:
        """Queue ``fixes`` for ``subject``'s next message; the future ends with its ack."""
        done = asyncio.get_running_loop().create_future()
        self._outbox.setdefault(subject, []).append((fixes, done))
        sender = self._senders.get(subject)
        if sender is None or sender.done():
            self._senders[subject] = asyncio.create_task(self._send(subject))
        return done

    async def _send(self, subject: str) -> None:
        """Publish what waits for ``subject`` as one message at a time until nothing does."""
        while waiting := self._outbox.get(subject):
            group, size = [], 0
            while waiting and (not group or size + len(waiting[0][0]) <= MAX_MESSAGE_FIXES):
                group.append(waiting.pop(0))
                size += len(group[-1][0])
            if not waiting:
                del self._outbox[subject]
            payload = encode_fixes([fix for fixes, _ in group for fix in fixes])
            try:
                await asyncio.wait_for(
                    self.js.publish(subject, payload, stream=self.settings.stream),
                    PUBLISH_TIMEOUT_S,
                )
            except Exception as exc:  # every publisher in the group learns it
                for _, done in group:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in group:
                    if not done.done():
                        done.set_result(None)

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
            if durable in self.consumers:
                raise ValueError(f"name: a consumer {durable!r} already exists")
            await self._start(_Consumer(durable, subject, handler))

    async def consume_partition(
        self, name: str, partition: int, handler: SequencedHandler, *,
        after: int | None = None, since: datetime | None = None,
    ) -> None:  # fmt: skip
        """Run the durable pull consumer ``name`` over one partition, set afresh to start
        after stream sequence ``after`` (a checkpoint's), else at ``since``, else at the
        start of the stream; ``handler`` gets each batch with its last sequence. The consumer
        of a previous owner is replaced: where it stood does not matter, the checkpoint does.
        """
        if name in self.consumers:
            raise ValueError(f"name: a consumer {name!r} already exists")
        config = ConsumerConfig(max_ack_pending=MAX_ACK_PENDING)
        if after is not None:
            config.deliver_policy, config.opt_start_seq = DeliverPolicy.BY_START_SEQUENCE, after + 1
        elif since is not None:
            config.deliver_policy = DeliverPolicy.BY_START_TIME
            config.opt_start_time = since.astimezone(UTC).isoformat().replace("+00:00", "Z")
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(self.settings.stream, name)
        subject = f"{self.settings.subject_prefix}.{partition}"
        consumer = _Consumer(name, subject, None, config=config, sequenced=handler)
        await self._start(consumer)

    async def stop_consumer(self, name: str) -> None:
        """Stop consumer ``name`` in this process (the batch in hand is handled and
        acknowledged first); the server keeps it for whoever consumes it next."""
        consumer = self.consumers.pop(name, None)
        if consumer is None:
            return
        consumer.leaving = True
        if consumer.task is not None:
            consumer.task.cancel()
            await _ended_within([consumer.task], f"consumer {name}'s loop")
        if consumer.handling is not None:
            await _ended_within([consumer.handling], f"consumer {name}'s batch in hand")
        await self._unsubscribe(consumer)

    async def _start(self, consumer: _Consumer) -> None:
        consumer.pull = await self._pull_subscribe(consumer)  # a bad setup fails at start
        consumer.task = asyncio.create_task(self._consume(consumer), name=consumer.durable)
        consumer.task.add_done_callback(lambda _, c=consumer: self._ended(c))
        self.consumers[consumer.durable] = consumer

    async def status(self) -> dict[str, Any]:
        """For a health endpoint: the connection, and per consumer its own figures and the
        server's (``pending``: not yet delivered, ``ack_pending``: delivered and not yet
        acknowledged, ``redelivered``, ``waiting`` pull requests; or ``error``)."""
        servers = await asyncio.gather(*(self._server_view(c) for c in self.consumers.values()))
        return {
            "kind": "jetstream",
            "connection": self._connection(),
            "disconnects": self.disconnects,
            "gave_up": self.give_up_reason,
            "consumers": {
                name: {**consumer.status.as_dict(), "server": server}
                for (name, consumer), server in zip(self.consumers.items(), servers, strict=True)
            },
        }

    async def close(self) -> None:
        """Stop the consumers, let the batches in hand be acknowledged, close the connection;
        each step within ``CLOSE_TIMEOUT_S``, so that closing never hangs."""
        self._closing = True  # a consumer loop whose cancellation was lost ends on it
        tasks = [c.task for c in self.consumers.values() if c.task is not None]
        for task in tasks:
            task.cancel()
        await _ended_within(tasks, "consumer loops")
        # The batches being handled finish and are acknowledged: less to deliver again.
        handling = [c.handling for c in self.consumers.values() if c.handling is not None]
        await _ended_within(handling, "batches in hand")
        # Not drain(): a cancelled pull request would hold it for its whole timeout. Every
        # publish has been acknowledged already; unacknowledged deliveries come back later.
        closing = asyncio.ensure_future(self.client.close())
        await _ended_within([closing], "the NATS connection's close")

    # -- the consumer loop ------------------------------------------------------------------

    async def _consume(self, consumer: _Consumer) -> None:
        """Fetch and handle batches until cancelled, retrying every failure after a backoff.

        The loop also ends once the bus is closing or the consumer leaving: a cancellation can
        be lost on its way down (Python 3.11's ``asyncio.wait_for``, which nats-py's fetch
        awaits, returns the result instead when a message arrives in the same turn), and the
        loop would then run on while :meth:`close` waits for it."""
        while not (self.gave_up.is_set() or self._closing or consumer.leaving):
            try:
                await self._step(consumer)
            except Exception as exc:  # whatever it is, the loop goes on
                await asyncio.sleep(self._failed(consumer, exc))

    async def _step(self, consumer: _Consumer) -> None:
        """One fetch, handed to the handler once the batch before it is handled (the fetch
        overlaps the handler); an idle fetch checks the connection instead."""
        if consumer.handling is not None and consumer.handling.done():
            await self._handled(consumer)  # its failure is this step's
        if consumer.pull is None:
            await self._add_stream()  # the server may have lost it with the consumer
            consumer.pull = await self._pull_subscribe(consumer)
            consumer.status.resubscribed += 1
        try:
            messages = await consumer.pull.fetch(batch=FETCH_BATCH, timeout=FETCH_TIMEOUT_S)
        except TimeoutError:  # nats-py raises both its own and asyncio's on an idle stream
            await self._idle(consumer)
            return
        except Exception:
            await self._unsubscribe(consumer)  # set it up afresh at the next attempt
            raise
        if not messages:  # nats-py may end a fetch with none instead of a timeout
            await self._idle(consumer)
            return
        try:
            await self._handled(consumer)
        except Exception:
            await _nak(messages)  # not handed over: deliver them again
            raise
        consumer.handling = asyncio.create_task(self._handle(consumer, messages))

    @staticmethod
    async def _handled(consumer: _Consumer) -> None:
        """Wait for the batch being handled; raise what the handler raised."""
        handling, consumer.handling = consumer.handling, None
        if handling is not None:
            await handling

    async def _idle(self, consumer: _Consumer) -> None:
        """Nothing came: fail if that is because NATS is away or lost the consumer."""
        if not self.client.is_connected:
            raise ConnectionError(f"nats: not connected to {self.settings.nats_url}")
        if time.monotonic() - consumer.checked >= CHECK_IDLE_S:
            try:
                await self.js.consumer_info(self.settings.stream, consumer.durable)
            except NotFoundError:
                await self._unsubscribe(consumer)
                raise
            consumer.checked = time.monotonic()
        if not consumer.handler_failing:  # else only a batch handled ends the failure
            self._recovered(consumer)

    async def _handle(self, consumer: _Consumer, messages: list[Msg]) -> None:
        """Hand the fixes of ``messages`` to the handler, then acknowledge them; if the handler
        raises, ask for them again and raise."""
        status = consumer.status
        fixes: list[Fix] = []
        good = []
        for message in messages:
            try:
                fixes.extend(decode_fixes(message.data))
                good.append(message)
            except ValueError as exc:  # a poison message must not block the partition
                log.error("consumer %s: dropping message on %s: %s", consumer.durable,
                          message.subject, exc)  # fmt: skip
                status.dropped += 1
                await message.term()
        try:
            if consumer.sequenced is not None:
                await consumer.sequenced(fixes, messages[-1].metadata.sequence.stream)
            elif consumer.handler is not None:
                await consumer.handler(fixes)
        except Exception:
            consumer.handler_failing = True
            await _nak(good)
            raise
        for message in good:
            await message.ack()
        status.batches += 1
        status.messages += len(messages)
        status.fixes += len(fixes)
        status.last_message_at = _now()
        consumer.checked = time.monotonic()
        consumer.handler_failing = False
        self._recovered(consumer)

    @staticmethod
    def _recovered(consumer: _Consumer) -> None:
        consumer.failures = 0
        consumer.status.state = "running"
        consumer.status.failing_since = None

    def _failed(self, consumer: _Consumer, exc: Exception) -> float:
        """Count and log a failure, give up if it lasted too long; the wait before retrying."""
        consumer.failures += 1
        wait = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (consumer.failures - 1))
        status = consumer.status
        status.state = "retrying"
        status.errors += 1
        status.last_error = f"{type(exc).__name__}: {exc}"
        status.last_error_at = _now()
        if status.failing_since is None:
            status.failing_since = time.monotonic()
        log.error("consumer %s failed (%d errors); retrying in %.1f s", consumer.durable,
                  status.errors, wait, exc_info=exc)  # fmt: skip
        failing = time.monotonic() - status.failing_since
        if self.settings.give_up_s and failing >= self.settings.give_up_s:
            self._give_up(f"consumer {consumer.durable} failing for {failing:.0f} s: "
                          f"{status.last_error}")  # fmt: skip
        return wait

    def _ended(self, consumer: _Consumer) -> None:
        """A consumer's task is done: expected when closing, otherwise fatal for the process."""
        consumer.status.state = "stopped"
        task = consumer.task
        if self._closing or consumer.leaving or task is None or self.gave_up.is_set():
            return
        ended = "cancelled" if task.cancelled() else repr(task.exception())
        self._give_up(f"consumer {consumer.durable} ended: {ended}")

    def _give_up(self, reason: str) -> None:
        if not self.gave_up.is_set():
            self.give_up_reason = reason
            log.critical("position bus: giving up: %s", reason)
            self.gave_up.set()

    async def _pull_subscribe(self, consumer: _Consumer) -> JetStreamContext.PullSubscription:
        """Bind to the durable consumer, creating it if the server does not have it (an
        existing one keeps its configuration)."""
        return await self.js.pull_subscribe(
            consumer.subject, durable=consumer.durable, stream=self.settings.stream,
            config=consumer.config,
        )  # fmt: skip

    async def _unsubscribe(self, consumer: _Consumer) -> None:
        pull, consumer.pull = consumer.pull, None
        if pull is not None:
            with contextlib.suppress(Exception):  # the connection may be what failed
                await pull.unsubscribe()

    async def _server_view(self, consumer: _Consumer) -> dict[str, Any]:
        try:
            info = await self.js.consumer_info(
                self.settings.stream, consumer.durable, timeout=INFO_TIMEOUT_S
            )
        except Exception as exc:  # reported, not raised: health must answer
            return {"error": f"{type(exc).__name__}: {exc}"}
        return {
            "pending": info.num_pending,
            "ack_pending": info.num_ack_pending,
            "redelivered": info.num_redelivered,
            "waiting": info.num_waiting,
        }

    # -- the connection (nats-py callbacks) -------------------------------------------------

    def _connection(self) -> str:
        if self.client.is_connected:
            return "connected"
        return "reconnecting" if self.client.is_reconnecting else "closed"

    async def _on_error(self, exc: Exception) -> None:
        log.error("nats: %s: %s", type(exc).__name__, exc)

    async def _on_disconnected(self) -> None:
        if not self._closing:
            self.disconnects += 1
            log.warning("nats: disconnected from %s; reconnecting", self.settings.nats_url)

    async def _on_reconnected(self) -> None:
        log.warning("nats: reconnected to %s", self.client.connected_url)

    async def _on_closed(self) -> None:
        if not self._closing:
            self._give_up(f"nats: connection to {self.settings.nats_url} closed")


async def _ended_within(tasks: Sequence[asyncio.Future[Any]], what: str) -> None:
    """Wait up to ``CLOSE_TIMEOUT_S`` for ``tasks`` to end (their outcome does not matter);
    log the ones still running, cancel them again and go on."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_S)
    if pending:
        log.error("position bus: closing: %s still running after %.0f s, left behind: %s",
                  what, CLOSE_TIMEOUT_S, ", ".join(sorted(map(repr, pending))))  # fmt: skip
        for task in pending:
            task.cancel()
    for task in tasks:  # retrieved, so that asyncio does not log them as never retrieved
        task.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.debug("position bus: closing: %r ended with %r", task, error)


async def _nak(messages: Sequence[Msg]) -> None:
    """Ask for ``messages`` again in a second (not acknowledged, they would come back anyway,
    after the ack wait)."""
    for message in messages:
        try:
            await message.nak(delay=1)
        except Exception as exc:  # it comes back after the ack wait instead: said, not fatal
            log.warning("nak of a message on %s failed (%s); it is redelivered after the "
                        "ack wait", message.subject, exc)  # fmt: skip
