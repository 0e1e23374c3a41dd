"""The tracker gateway: asyncio TCP servers for JT/T 808 and GT06 devices.

One decoder per connection turns whatever each read delivered (part of a frame, several
frames, garbage) into messages. A connection is served read by read:

1. decode the read; handle each message in order (login, registration and authentication
   ask the :class:`~lienwatch.telematics.registry.DeviceRegistry`; positions of an admitted
   device become :class:`~lienwatch.telematics.fixes.Fix` values);
2. publish the read's fixes to the position bus and wait until they are durable;
3. only then send the replies (ACKs) of that read, in order.

If publishing fails the connection is closed without the replies, so the device resends:
a device is never acknowledged for a position that could still be lost (at least once; the
store drops duplicates of (device, fix time)).

Limits: open connections per port and per peer address; per connection the longest frame
(``max_frame_bytes``: longer candidates are rejected, never buffered), bytes rejected in a row
(``max_junk_bytes``), the time and bytes before the device is identified, silence (no decoded
message for ``idle_timeout_s``), a device not reading its replies (``write_timeout_s``) and a
message rate (token bucket; reads pause when it is spent, so a flooding device is slowed by
TCP backpressure, and a read needing more than ``max_rate_pause_s`` closes the connection).
An error on one connection closes that connection only. docs/security.md lists every limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from lienwatch import clock
from lienwatch.config import GatewaySettings
from lienwatch.telematics.fixes import (
    BEFORE_FITTING,
    CLOCK_AHEAD,
    Fix,
    PositionBus,
    clock_problem,
    fitting_problem,
    fix_from_position,
)
from lienwatch.telematics.protocols import DECODERS, Decoder, Event, FrameError, Message, jt808
from lienwatch.telematics.protocols.alarms import ProtocolConfigError
from lienwatch.telematics.protocols.base import DEFAULT_PROFILE, DeviceProfile, profile_from_dict
from lienwatch.telematics.registry import (
    DeviceRecord,
    DeviceRegistry,
    DeviceStatus,
    RegisterResult,
)

log = logging.getLogger(__name__)

PROTOCOLS = ("jt808", "gt06")
K = TypeVar("K")
V = TypeVar("V")
#: How long a write waits to be made with the others of the moment (:class:`_Gathered`).
GATHER_S = 0.05
_READ_SIZE = 65_536


@dataclass(slots=True)
class GatewayStats:
    """Running counts across all connections (what a metrics endpoint exports)."""

    connections: int = 0
    open_connections: int = 0
    messages: int = 0
    frame_errors: Counter[str] = field(default_factory=Counter)
    positions: int = 0
    archived: int = 0
    refused_positions: int = 0
    refused_fixes: Counter[str] = field(default_factory=Counter)  # by reason
    refused_devices: int = 0
    device_cloned: int = 0  # second sessions refused while the first was live
    sessions_superseded: int = 0  # sessions taken over from a connection gone quiet
    publish_failures: int = 0
    closed: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """The counts as plain JSON values (``dataclasses.asdict`` would garble the Counters)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: dict(v) if isinstance(v, Counter) else v for k, v in values.items()}


class _Closing(Exception):
    """Close this connection: after sending the replies gathered so far and ``last_reply``,
    or, with ``send=False``, without sending anything more."""

    def __init__(self, reason: str, *, last_reply: bytes | None = None, send: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.last_reply = last_reply
        self.send = send


class _TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    def spend(self, count: int) -> float:
        """Take ``count`` tokens; return how long to wait before reading again."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate) - count
        self.stamp = now
        return -self.tokens / self.rate if self.tokens < 0 else 0.0


class _Gathered(Generic[K, V]):
    """Writes to the store arriving together, made in one call, ``GATHER_S`` after the first
    of them, in a thread (the store blocks): ``write`` waits until the call carrying its
    item committed and raises its failure; ``note`` does not wait (a failure is logged)."""

    def __init__(self, store: Callable[[dict[K, V]], None], what: str,
                 turns: asyncio.Lock) -> None:  # fmt: skip
        self.store, self.what, self.turns = store, what, turns
        self._items: dict[K, V] = {}  # the latest value of each key
        self._done: asyncio.Future[None] | None = None
        self._pending: asyncio.Task[None] | None = None  # waiting out GATHER_S
        self._making: set[asyncio.Task[None]] = set()  # past it: writing, or waiting its turn

    def note(self, key: K, value: V) -> None:
        self._items[key] = value
        if self._pending is None:
            self._pending = asyncio.create_task(self._after_a_moment())

    async def write(self, key: K, value: V) -> None:
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
            # its waiters may be gone (their connection closed): never an unread exception
            self._done.add_done_callback(lambda done: done.exception())
        done = self._done
        self.note(key, value)
        await asyncio.shield(done)

    async def flush(self) -> None:
        """Make what is waiting now and wait for the writes under way (a gateway stopping:
        a write left behind its turn would never be made once the loop stops)."""
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pending
            self._pending = None
        await asyncio.gather(*self._making)
        await self._make()

    async def _after_a_moment(self) -> None:
        await asyncio.sleep(GATHER_S)
        self._pending = None
        making = asyncio.current_task()
        assert making is not None
        self._making.add(making)
        try:
            await self._make()
        finally:
            self._making.discard(making)

    async def _make(self) -> None:
        items, done = self._items, self._done
        self._items, self._done = {}, None
        if not items:
            return
        try:
            async with self.turns:
                await asyncio.to_thread(self.store, items)
        except Exception as exc:
            log.exception("gateway: writing %d %s failed", len(items), self.what)
            if done is not None:
                done.set_exception(exc)
        else:
            if done is not None:
                done.set_result(None)


class Gateway:
    """The JT/T 808 and GT06 TCP servers.

    Args:
        settings: ports, limits and policies (``[gateway]``).
        registry: admits devices, issues and checks JT/T 808 auth codes.
        bus: where fixes are published; its ``publish`` must return only once durable.
    """

    def __init__(
        self, settings: GatewaySettings, registry: DeviceRegistry, bus: PositionBus
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.bus = bus
        self.profiles = model_profiles(settings.models)
        self.stats = GatewayStats()
        self._servers: dict[str, asyncio.Server] = {}
        self._live: dict[int, _Connection] = {}  # the one live session of each device
        self._open: Counter[str] = Counter()  # open connections by protocol
        self._addresses: Counter[str] = Counter()  # open connections by peer address
        self._status_watch: asyncio.Task[None] | None = None
        self._refresh: asyncio.Task[None] | None = None  # the watch's latest refresh
        self._writers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        # A reconnection storm (thousands of devices after a restart) costs a few writes
        # this way, not a commit per login. The gateway's own writes take turns: on SQLite a
        # write transaction that read first (a clone report) is refused at once, not waited
        # for, while another writes (the embedded default).
        self._writing = asyncio.Lock()
        self._session_statuses = _Gathered(registry.sessions_changed, "session statuses",
                                           self._writing)  # fmt: skip
        self.auth_codes = _Gathered(registry.save_auth_codes, "JT/T 808 auth codes",
                                    self._writing)  # fmt: skip

    async def start(self, *, host: str | None = None, ports: dict[str, int] | None = None) -> None:
        """Listen on the configured (or given) host and ports; port 0 picks a free one."""
        chosen = {"jt808": self.settings.jt808_port, "gt06": self.settings.gt06_port}
        chosen.update(ports or {})
        for protocol in PROTOCOLS:
            self._servers[protocol] = await asyncio.start_server(
                lambda r, w, p=protocol: self._serve(p, r, w),
                host or self.settings.host,
                chosen[protocol],
                limit=_READ_SIZE,
            )
            log.info("gateway: %s on port %d", protocol, self.port(protocol))
        self._status_watch = asyncio.create_task(self._watch_statuses())

    async def _watch_statuses(self) -> None:
        """Keep device statuses true for devices without a session: every
        ``status_interval_s``, a device whose last fix is older than two report intervals and
        that is not connected is marked offline."""
        while True:
            await asyncio.sleep(self.settings.status_interval_s)
            self._refresh = asyncio.create_task(self._refresh_statuses())
            await asyncio.shield(self._refresh)  # stopping waits for it (``stop``)

    async def _refresh_statuses(self) -> None:
        """One refresh, taking its turn with the session statuses: it writes what it read of
        the connected devices before any session that opened or ended since is written."""
        try:
            async with self._writing:
                await asyncio.to_thread(
                    self.registry.directory.refresh_statuses,
                    now=clock.now(),
                    connected=set(self._live),
                )
        except Exception:  # the next round tries again; serving devices goes on
            log.exception("gateway: refreshing device statuses failed")

    def port(self, protocol: str) -> int:
        """The port ``protocol`` is listening on."""
        return self._servers[protocol].sockets[0].getsockname()[1]

    async def stop(self, *, grace_s: float = 5.0) -> None:
        """Stop listening and end every connection.

        Connections are aborted (their reads end) and given ``grace_s`` to finish what they
        are doing (a publish in flight, the device's status update); then they are cancelled.
        """
        if self._status_watch is not None:
            self._status_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._status_watch
        if self._refresh is not None:  # its thread would write its view after the sessions'
            await self._refresh
        for server in self._servers.values():
            server.close()
        for writer in self._writers.values():
            writer.transport.abort()
        tasks = list(self._writers)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for server in self._servers.values():
            await server.wait_closed()
        self._servers.clear()
        await self._session_statuses.flush()  # the sessions just ended too

    async def _serve(
        self, protocol: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        address = str(peer[0])
        if (
            self._open[protocol] >= self.settings.max_connections
            or self._addresses[address] >= self.settings.max_connections_per_address
        ):
            self.stats.closed["too many connections"] += 1
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._writers[task] = writer
        self.stats.connections += 1
        self.stats.open_connections += 1
        self._open[protocol] += 1
        self._addresses[address] += 1
        connection = _Connection(self, protocol, writer, f"{address}:{peer[1]}")
        try:
            reason = await connection.run(reader)
        except ConnectionError:
            reason = "connection lost"
        except Exception as exc:  # one broken connection must never take the server down
            log.exception("gateway: %s connection failed", protocol)
            reason = f"error: {type(exc).__name__}"
        finally:
            self.stats.open_connections -= 1
            self._open[protocol] -= 1
            self._addresses[address] -= 1
            if not self._addresses[address]:
                del self._addresses[address]
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            try:
                await connection.finish()
            finally:
                del self._writers[task]
        self.stats.closed[reason.split(":")[0]] += 1

    async def _claim(self, device: DeviceRecord, connection: _Connection) -> None:
        """Make ``connection`` the one live session of ``device``.

        One session per device: while another connection of the device has decoded a
        message within ``session_alive_s``, the new one is refused (two live sources for one
        device: a cloned or spoofed tracker, counted and logged as ``device_cloned``);
        otherwise the old connection is closed and the new one takes over (a device
        reconnecting before its dead connection timed out).
        """
        holder = self._live.get(device.id)
        if holder is not None and holder is not connection:
            if time.monotonic() - holder.last_message < self.settings.session_alive_s:
                self.stats.device_cloned += 1
                log.warning("gateway: device_cloned: %s has a live session (from %s); a second "
                            "one from %s is refused", device.ident, holder.address,
                            connection.address)  # fmt: skip
                await self._report_clone(device, [holder.address, connection.address])
                raise _Closing("refused: the device has a live session", send=False)
            holder.writer.transport.abort()
            self.stats.sessions_superseded += 1
        self._live[device.id] = connection
        if holder is None:
            self._session_statuses.note(device.id, DeviceStatus.ONLINE)

    async def _report_clone(self, device: DeviceRecord, addresses: list[str]) -> None:
        """The ``device_cloned`` collateral alert; a store failure is logged, the refusal
        stands."""
        try:
            async with self._writing:
                await asyncio.to_thread(
                    self.registry.device_cloned, device, at=clock.now(), addresses=addresses
                )
        except Exception:
            log.exception("gateway: recording device_cloned for %s failed", device.ident)

    async def _release(self, device: DeviceRecord, connection: _Connection) -> None:
        """End ``connection``'s session of ``device``, unless another took it over."""
        if self._live.get(device.id) is connection:
            del self._live[device.id]
            self._session_statuses.note(device.id, DeviceStatus.OFFLINE)


def model_profiles(tables: Mapping[str, Mapping[str, Any]]) -> dict[str, DeviceProfile]:
    """Decoding profiles per device model from ``[gateway.models.<MODEL>]`` tables.

    Raises:
        ProtocolConfigError: naming ``gateway.models.<MODEL>`` and the bad key.
    """
    profiles = {}
    for model, table in tables.items():
        try:
            profiles[model] = profile_from_dict({"name": model, **table})
        except ProtocolConfigError as exc:
            raise ProtocolConfigError(f"gateway.models.{model}: {exc}") from None
    return profiles


class _Connection:
    """One device connection: decoder, identity, pending fixes and replies."""

    def __init__(
        self, gateway: Gateway, protocol: str, writer: asyncio.StreamWriter, address: str
    ) -> None:
        self.gateway = gateway
        self.address = address  # the peer's address and port
        self.settings = gateway.settings
        self.protocol = protocol
        self.writer = writer
        self.decoder: Decoder = DECODERS[protocol](max_frame=self.settings.max_frame_bytes)
        self.junk = 0  # bytes rejected since the last decoded message
        self.opened = self.last_message = time.monotonic()
        self.unidentified_bytes = 0  # bytes read before the device was identified
        self.device: DeviceRecord | None = None
        self.authenticated = False
        self.newest: datetime | None = None
        self.late_after = timedelta(seconds=self.settings.late_after_s)
        self.max_skew = timedelta(seconds=self.settings.max_clock_skew_s)
        self.bucket = _TokenBucket(self.settings.max_messages_per_s, self.settings.burst_messages)
        self.serials = itertools.count()
        # JT/T 808 header form of the replies the gateway builds itself: None (2011/2013)
        # until a 2019 registration or authentication shows the 2019 form.
        self.jt808_version: int | None = None

    async def run(self, reader: asyncio.StreamReader) -> str:
        """Serve until the device leaves or breaks a rule; return why the connection ended."""
        while True:
            wait, why = self._read_deadline()
            try:
                data = await asyncio.wait_for(reader.read(_READ_SIZE), wait)
            except TimeoutError:
                return why
            if not data:
                return "closed by device"
            if self.device is None:
                self.unidentified_bytes += len(data)
                if self.unidentified_bytes > self.settings.max_unidentified_bytes:
                    return f"not identified: {self.unidentified_bytes} bytes before identifying"
            try:
                events = self._decode(data)
                await self._handle(events)
            except _Closing as closing:
                return closing.reason
            pause = self.bucket.spend(len(events))
            if pause > self.settings.max_rate_pause_s:
                return f"rate: {len(events)} messages in one read"
            if pause:
                await asyncio.sleep(pause)
                self.last_message = time.monotonic()  # our pause is not the device's silence

    def _read_deadline(self) -> tuple[float, str]:
        """Seconds until the connection has been silent too long (no message decoded: junk
        does not count) or, before the device is identified, until its time to do so ends;
        and which of the two it is."""
        now = time.monotonic()
        idle = self.last_message + self.settings.idle_timeout_s - now
        unidentified = self.opened + self.settings.identify_timeout_s - now
        if self.device is None and unidentified < idle:
            return max(unidentified, 0.0), "not identified in time"
        return max(idle, 0.0), "idle timeout"

    def _decode(self, data: bytes) -> list[Event]:
        """Decode one read; close once more than ``max_junk_bytes`` were rejected in a row.

        The read is decoded in slices of ``max_frame_bytes`` so that a read of junk costs at
        most one slice beyond the budget before the connection is closed.
        """
        events: list[Event] = []
        step = self.settings.max_frame_bytes
        for at in range(0, len(data), step):
            for event in self.decoder.feed(data[at : at + step]):
                if isinstance(event, FrameError):
                    self.gateway.stats.frame_errors[event.kind.value] += 1
                    self.junk += len(event.frame)
                else:
                    self.junk, self.last_message = 0, time.monotonic()
                events.append(event)
            if self.junk > self.settings.max_junk_bytes:
                raise _Closing(f"junk: {self.junk} bytes rejected in a row", send=False)
        return events

    async def finish(self) -> None:
        if self.device is not None:
            await self.gateway._release(self.device, self)

    async def _handle(self, events: list[Message | FrameError]) -> None:
        stats = self.gateway.stats
        fixes: list[Fix] = []
        replies: list[bytes] = []
        closing: _Closing | None = None
        for event in events:
            if isinstance(event, FrameError):  # counted by _decode
                log.debug("gateway: %s frame rejected: %s", self.protocol, event.reason)
                if event.reply:
                    replies.append(event.reply)
                continue
            stats.messages += 1
            try:
                reply = await self._message(event, fixes)
            except _Closing as problem:
                closing = problem
                break
            if reply:
                replies.append(reply)
        if fixes:
            try:
                await self.gateway.bus.publish(fixes)
            except Exception as exc:  # not durable: no ACK, the device must send them again
                stats.publish_failures += 1
                log.error("gateway: publishing %d fixes failed: %s", len(fixes), exc)
                raise _Closing(f"publish failed: {exc}", send=False) from None
            stats.positions += len(fixes)
            stats.archived += sum(fix.archived for fix in fixes)
        if closing is not None and closing.last_reply:
            replies.append(closing.last_reply)
        if replies and (closing is None or closing.send):
            self.writer.write(b"".join(replies))
            try:  # a device that does not read its replies must not hold the connection
                await asyncio.wait_for(self.writer.drain(), self.settings.write_timeout_s)
            except TimeoutError:
                raise _Closing("write timeout", send=False) from None
        if closing is not None:
            raise closing

    async def _message(self, message: Message, fixes: list[Fix]) -> bytes | None:
        """Handle one message; return its reply. Positions go to ``fixes``."""
        if self.protocol == "jt808":
            return await self._jt808(message, fixes)
        return await self._gt06(message, fixes)

    async def _jt808(self, message: Message, fixes: list[Fix]) -> bytes | None:
        phone = message.device_id or ""
        if message.kind == "fragment" and self.device is None:
            # Sub-packets are buffered until the message is whole: only for known devices.
            raise _Closing("refused: sub-packet before authentication", send=False)
        if message.extras.get("edition") == "2019" or "imei" in message.extras:
            self.jt808_version = 1  # the device speaks the 2019 header: answer in kind
        version = self.jt808_version
        if message.kind == "register":
            session_of = None if self.device is None else self.device.id
            result, device = await asyncio.to_thread(
                self.gateway.registry.registration, phone, session_of=session_of
            )
            if device is not None and device.auth_code is not None:  # saved before it is sent
                await self.gateway.auth_codes.write(device.id, device.auth_code)
            reply = jt808.encode_register_response(
                phone, self._serial(), message.serial, result,
                device.auth_code or "" if device else "", version=version,
            )  # fmt: skip
            if result != RegisterResult.OK:
                self.gateway.stats.refused_devices += 1
                raise _Closing(f"refused: registration {result.name.lower()}", last_reply=reply)
            return reply
        if message.kind == "auth":
            code = str(message.extras.get("auth_code", ""))
            device = await asyncio.to_thread(self.gateway.registry.authenticate, phone, code)
            result = jt808.RESULT_OK if device else 1
            reply = jt808.encode_general_response(
                phone, self._serial(), message.serial, jt808.AUTH, result, version=version
            )
            if device is None:
                self.gateway.stats.refused_devices += 1
                raise _Closing("refused: authentication failed", last_reply=reply)
            await self._identify(device)
            self.authenticated = True
            return reply
        if message.positions:
            if not await self._jt808_may_report(phone) or phone != self._ident():
                self.gateway.stats.refused_positions += len(message.positions)
                return jt808.encode_general_response(
                    phone, self._serial(), message.serial, message.msg_id, 1, version=version
                )
            self._take(message, fixes)
        if message.kind == "logout":
            raise _Closing("logout", last_reply=message.reply)
        return message.reply

    async def _jt808_may_report(self, phone: str) -> bool:
        if self.authenticated:
            return True
        if self.settings.require_auth:
            return False
        if self.device is None:
            device = await asyncio.to_thread(self.gateway.registry.admit, phone, "jt808")
            if device is None:
                self.gateway.stats.refused_devices += 1
                raise _Closing("refused: unknown terminal", send=False)
            await self._identify(device)
        return True

    async def _gt06(self, message: Message, fixes: list[Fix]) -> bytes | None:
        if message.kind == "login":
            imei = message.device_id or ""
            device = await asyncio.to_thread(self.gateway.registry.admit, imei, "gt06")
            if device is None:
                self.gateway.stats.refused_devices += 1
                raise _Closing("refused: unknown device", send=False)
            await self._identify(device)
            return message.reply
        if self.device is None:  # GT06 frames carry no IMEI: nothing is taken before login
            raise _Closing("refused: message before login", send=False)
        self._take(message, fixes)
        return message.reply

    async def _identify(self, device: DeviceRecord) -> None:
        if self.device is not None and self.device.id == device.id:
            self.device = device
            return
        await self.gateway._claim(device, self)
        if self.device is not None:
            await self.gateway._release(self.device, self)
        self.device = device
        # The model's quirks (tolerated checksums, clock offset, alarm bits) apply from the
        # frame after the one that identified the device.
        self.decoder.profile = self.gateway.profiles.get(device.model, DEFAULT_PROFILE)

    def _ident(self) -> str | None:
        """The device this connection speaks for; a frame naming another is not taken."""
        return None if self.device is None else self.device.ident

    def _take(self, message: Message, fixes: list[Fix]) -> None:
        """The message's fixes into ``fixes``, but for those dated beyond the clock skew
        allowed or before the device was fitted: refused and counted by reason (the message
        is still acknowledged, so they are not resent)."""
        assert self.device is not None
        received = clock.now()
        re_upload = bool(message.extras.get("blind_area"))
        for position in message.positions:
            reason, problem = CLOCK_AHEAD, clock_problem(
                position, received_at=received, max_skew=self.max_skew
            )
            if problem is None:
                reason, problem = BEFORE_FITTING, fitting_problem(
                    position, fitted_on=self.device.fitted_on
                )
            if problem is not None:
                self.gateway.stats.refused_fixes[reason] += 1
                log.warning("gateway: fix of %s refused: %s", self.device.ident, problem)
                continue
            fixes.append(
                fix_from_position(
                    position,
                    device_id=self.device.id,
                    received_at=received,
                    late_after=self.late_after,
                    newest=self.newest,
                    re_upload=re_upload,
                )
            )
            if self.newest is None or position.time > self.newest:
                self.newest = position.time

    def _serial(self) -> int:
        return next(self.serials) & 0xFFFF
