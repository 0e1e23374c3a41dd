"""Simulated trackers: play position tracks over real TCP as JT/T 808 or GT06 devices do.

Each simulated device opens its own connection and speaks its protocol as firmware does:

- JT/T 808: register (0x0100) and read the auth code from 0x8100, authenticate (0x0102), then
  send locations (0x0200, or 0x0704 batches of ``batch`` fixes), a heartbeat (0x0002) every
  ``heartbeat_every`` frames; every frame must be answered by a 0x8001 echoing its serial
  with result 0.
- GT06: login (0x01), then locations (0x12) and, for fixes carrying an alarm, alarm packets
  (0x16), a heartbeat (0x13) every ``heartbeat_every`` frames and one at the end. GT06 does
  not acknowledge locations, so a fix counts as acknowledged once an ACK for a later packet
  arrived (the gateway answers in order and only after storing what came before).

Every reply is read and checked; a missing, late or wrong reply is recorded as an error on
that device. Up to ``window`` acknowledged frames may be in flight (1 = wait for each ACK,
as most firmware does).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from lienwatch.domain.positions import PositionColumns
from lienwatch.telematics.protocols import DEFAULT_ALARM_MAP, Jt808Decoder, Message, gt06, jt808

REPLY_TIMEOUT_S = 10.0
_JT808_ALARMS = frozenset(DEFAULT_ALARM_MAP.jt808_bits.values())
_GT06_ALARM_CODES = {name: code for code, name in sorted(DEFAULT_ALARM_MAP.gt06_codes.items(),
                                                         reverse=True)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Track:
    """The fixes one device will send, in time order.

    Attributes:
        ident: IMEI (GT06, 15 digits) or terminal phone (JT/T 808, up to 12 digits).
        fixes: its fixes (``device_id`` is ``ident`` throughout).
    """

    ident: str
    fixes: PositionColumns

    def __len__(self) -> int:
        return len(self.fixes)


def track_slices(
    device_id: np.ndarray, idents: Sequence[str] | None = None, *, limit: int | None = None
) -> list[tuple[str, slice]]:
    """Per device of ``device_id`` (sorted by device), the slice of its first ``limit`` fixes;
    only the devices in ``idents`` if given."""
    ids = np.asarray(device_id)
    if len(ids) == 0:
        return []
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    wanted = None if idents is None else set(idents)
    return [
        (str(ids[start]), slice(start, end if limit is None else min(end, start + limit)))
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True)
        if wanted is None or str(ids[start]) in wanted
    ]


def split_tracks(
    positions: PositionColumns, idents: Sequence[str] | None = None, *, limit: int | None = None
) -> list[Track]:
    """One :class:`Track` per device in ``positions`` (sorted by device and time; only
    ``idents`` if given), each cut to its first ``limit`` fixes."""
    return [
        Track(ident, positions.take(part))
        for ident, part in track_slices(positions.device_id, idents, limit=limit)
    ]


@dataclass(slots=True)
class DeviceReport:
    """What one simulated device sent and what the server confirmed."""

    ident: str
    protocol: str
    frames: int = 0
    positions: int = 0
    alarms: int = 0
    heartbeats: int = 0
    acked_positions: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SimulatorReport:
    devices: list[DeviceReport]
    seconds: float

    @property
    def positions(self) -> int:
        return sum(d.positions for d in self.devices)

    @property
    def acked_positions(self) -> int:
        return sum(d.acked_positions for d in self.devices)

    @property
    def errors(self) -> int:
        return sum(len(d.errors) for d in self.devices)


@dataclass(frozen=True, slots=True)
class PlayOptions:
    """How devices send.

    Attributes:
        rate: fixes per second per device (None: as fast as the replies allow).
        seconds: stop sending after this long (None: send the whole track).
        batch: JT/T 808 fixes per frame (above 1: 0x0704 batches); GT06 sends one per frame.
        window: acknowledged frames in flight before waiting for a reply.
        heartbeat_every: frames between heartbeats.
        auth_codes: JT/T 808 auth codes by terminal phone. A terminal with a code
            authenticates with it; one without registers first and its code is added here.
            Play terminals again with the same options: a registered terminal may not
            register twice.
    """

    rate: float | None = None
    seconds: float | None = None
    batch: int = 1
    window: int = 1
    heartbeat_every: int = 50
    auth_codes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rate is not None and self.rate <= 0:
            raise ValueError(f"rate: must be positive, got {self.rate}")
        if self.seconds is not None and self.seconds <= 0:
            raise ValueError(f"seconds: must be positive, got {self.seconds}")
        if not 1 <= self.batch <= 30:
            raise ValueError(f"batch: {self.batch} is not 1–30 (a 0x0704 frame holds about 30)")
        if self.window < 1:
            raise ValueError(f"window: must be at least 1, got {self.window}")
        if self.heartbeat_every < 1:
            raise ValueError(f"heartbeat_every: must be at least 1, got {self.heartbeat_every}")


async def play(
    tracks: Sequence[Track], protocol: str, host: str, port: int, options: PlayOptions
) -> SimulatorReport:
    """Play every track as its own device, all at once; return what each sent and got back."""
    if protocol not in ("jt808", "gt06"):
        raise ValueError(f"protocol: {protocol!r} is not jt808 or gt06")
    started = time.perf_counter()
    device = _Jt808Device if protocol == "jt808" else _Gt06Device
    reports = await asyncio.gather(
        *(device(track, host, port, options).run() for track in tracks)
    )
    return SimulatorReport(list(reports), time.perf_counter() - started)


class _Device(ABC):
    """One simulated device: the session loop; subclasses speak the protocol."""

    protocol = ""

    def __init__(self, track: Track, host: str, port: int, options: PlayOptions) -> None:
        self.track, self.host, self.port, self.options = track, host, port, options
        self.report = DeviceReport(track.ident, self.protocol)
        self.serials = iter(range(1, 1 << 30))
        # (what identifies the expected reply, fixes it confirms)
        self.outstanding: deque[tuple[object, int]] = deque()
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    def serial(self) -> int:
        return next(self.serials) & 0xFFFF

    async def run(self) -> DeviceReport:
        try:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            self.report.errors.append(f"connect: {exc}")
            return self.report
        try:
            await self.session()
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.report.errors.append(f"connection: {type(exc).__name__} {exc}")
        except TimeoutError:
            self.report.errors.append(f"reply: none within {REPLY_TIMEOUT_S} s")
        except _Refused as exc:
            self.report.errors.append(str(exc))
        finally:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        return self.report

    async def session(self) -> None:
        await self.log_in()
        options = self.options
        started = time.monotonic()
        for frames, chunk in enumerate(_chunks(len(self.track), self.step()), start=1):
            if options.seconds is not None and time.monotonic() - started >= options.seconds:
                break
            await self.send_fixes(chunk)
            if frames % options.heartbeat_every == 0:
                await self.heartbeat()
            while len(self.outstanding) >= options.window:
                await self.receive()
            if options.rate is not None:
                ahead = started + self.report.positions / options.rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await self.finish()
        while self.outstanding:
            await self.receive()

    def send(self, frame: bytes, expect: object | None, confirms: int) -> None:
        self.writer.write(frame)
        self.report.frames += 1
        if expect is not None:
            self.outstanding.append((expect, confirms))

    def step(self) -> int:
        """Fixes per location frame."""
        return 1

    @abstractmethod
    async def finish(self) -> None:
        """After the last fix: whatever makes the server confirm the fixes sent."""

    @abstractmethod
    async def log_in(self) -> None: ...

    @abstractmethod
    async def send_fixes(self, chunk: slice) -> None: ...

    @abstractmethod
    async def heartbeat(self) -> None: ...

    @abstractmethod
    async def receive(self) -> None:
        """Read the reply to the oldest outstanding frame and check it."""


class _Refused(Exception):
    """The server refused the device or answered wrongly."""


def _chunks(total: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, total)) for start in range(0, total, size)]


def _moment(epoch: int) -> datetime:
    return datetime.fromtimestamp(int(epoch), UTC)


def _names(alarms: str) -> list[str]:
    return [name for name in alarms.split(";") if name]


class _Jt808Device(_Device):
    protocol = "jt808"

    def __init__(self, track: Track, host: str, port: int, options: PlayOptions) -> None:
        super().__init__(track, host, port, options)
        self.decoder = Jt808Decoder()
        self.replies: deque[Message] = deque()

    def step(self) -> int:
        return self.options.batch

    async def log_in(self) -> None:
        """Register once, as a real terminal does, then authenticate with the code kept."""
        code = self.options.auth_codes.get(self.track.ident) or await self._register()
        serial = self.serial()
        self.send(
            jt808.encode_frame(jt808.AUTH, self.track.ident, serial, jt808.encode_auth_body(code)),
            serial,
            0,
        )
        await self.receive()

    async def _register(self) -> str:
        ident = self.track.ident
        registration = jt808.Registration(
            province=44, city=300, maker="LWSIM", model="SIM-808", terminal_id=ident[-7:],
            plate_colour=1, plate="粤B" + ident[-5:],
        )  # fmt: skip
        serial = self.serial()
        body = jt808.encode_register_body(registration, edition="2013")
        self.writer.write(jt808.encode_frame(jt808.REGISTER, ident, serial, body))
        self.report.frames += 1
        reply = await self.next_reply()
        if reply.kind != "register_response" or reply.extras.get("reply_serial") != serial:
            raise _Refused(f"register: unexpected reply {reply.kind} {dict(reply.extras)}")
        if reply.extras.get("result") != 0:
            raise _Refused(f"register: refused with result {reply.extras.get('result')}")
        self.options.auth_codes[ident] = code = str(reply.extras["auth_code"])
        return code

    async def send_fixes(self, chunk: slice) -> None:
        track, fixes = self.track, self.track.fixes
        reports = []
        for i in range(chunk.start, chunk.stop):
            names = [n for n in _names(fixes.alarms[i]) if n in _JT808_ALARMS]
            self.report.alarms += bool(names)
            reports.append(
                jt808.LocationReport(
                    time=_moment(fixes.time[i]), lat=float(fixes.lat[i]), lon=float(fixes.lon[i]),
                    speed_kmh=float(fixes.speed_kmh[i]), course=int(fixes.course[i]) % 360,
                    valid=bool(fixes.valid[i]), alarm_word=DEFAULT_ALARM_MAP.jt808_word(names),
                )
            )  # fmt: skip
        serial = self.serial()
        if len(reports) == 1:
            frame = jt808.encode_frame(
                jt808.LOCATION, track.ident, serial, jt808.encode_location_body(reports[0])
            )
        else:
            body = jt808.encode_batch_body(reports)
            frame = jt808.encode_frame(jt808.BATCH_LOCATION, track.ident, serial, body)
        self.report.positions += len(reports)
        self.send(frame, serial, len(reports))

    async def heartbeat(self) -> None:
        serial = self.serial()
        self.send(jt808.encode_frame(jt808.HEARTBEAT, self.track.ident, serial), serial, 0)
        self.report.heartbeats += 1

    async def finish(self) -> None:
        """Nothing to add: every JT/T 808 frame gets its own reply."""

    async def next_reply(self) -> Message:
        while not self.replies:
            data = await asyncio.wait_for(self.reader.read(65_536), REPLY_TIMEOUT_S)
            if not data:
                raise _Refused("connection closed by the server")
            for event in self.decoder.feed(data):
                if not isinstance(event, Message):
                    raise _Refused(f"reply: undecodable ({event.reason})")
                self.replies.append(event)
        return self.replies.popleft()

    async def receive(self) -> None:
        reply = await self.next_reply()
        serial, confirms = self.outstanding.popleft()
        if reply.kind != "platform_response" or reply.extras.get("reply_serial") != serial:
            raise _Refused(f"reply: expected 0x8001 for serial {serial}, got {reply.kind} "
                           f"{dict(reply.extras)}")  # fmt: skip
        if reply.extras.get("result") != 0:
            raise _Refused(f"reply: serial {serial} answered with result {reply.extras['result']}")
        self.report.acked_positions += confirms


class _Gt06Device(_Device):
    protocol = "gt06"

    def __init__(self, track: Track, host: str, port: int, options: PlayOptions) -> None:
        super().__init__(track, host, port, options)
        self.unconfirmed = 0  # fixes sent since the last packet that gets an ACK

    async def log_in(self) -> None:
        serial = self.serial()
        self.send(gt06.encode_login(self.track.ident.zfill(15), serial),
                  gt06.encode_ack(gt06.LOGIN, serial), 0)  # fmt: skip
        await self.receive()

    async def send_fixes(self, chunk: slice) -> None:
        fixes, i = self.track.fixes, chunk.start
        fix = gt06.Gt06Fix(
            time=_moment(fixes.time[i]), lat=float(fixes.lat[i]), lon=float(fixes.lon[i]),
            speed_kmh=min(255, round(float(fixes.speed_kmh[i]))), course=int(fixes.course[i]) % 360,
            valid=bool(fixes.valid[i]), satellites=8,
        )  # fmt: skip
        codes = [_GT06_ALARM_CODES[n] for n in _names(fixes.alarms[i]) if n in _GT06_ALARM_CODES]
        serial = self.serial()
        self.report.positions += 1
        if codes:
            self.report.alarms += 1
            frame = gt06.encode_alarm(serial, fix, gt06.TerminalStatus(), codes[0])
            self.send(frame, gt06.encode_ack(gt06.ALARM, serial), self.unconfirmed + 1)
            self.unconfirmed = 0
        else:
            self.send(gt06.encode_location(serial, fix), None, 0)
            self.unconfirmed += 1

    async def heartbeat(self) -> None:
        serial = self.serial()
        frame = gt06.encode_heartbeat(serial, gt06.TerminalStatus())
        self.send(frame, gt06.encode_ack(gt06.HEARTBEAT, serial), self.unconfirmed)
        self.unconfirmed = 0
        self.report.heartbeats += 1

    async def finish(self) -> None:
        if self.unconfirmed:
            await self.heartbeat()

    async def receive(self) -> None:
        expected, confirms = self.outstanding.popleft()
        assert isinstance(expected, bytes)
        got = await asyncio.wait_for(self.reader.readexactly(len(expected)), REPLY_TIMEOUT_S)
        if got != expected:
            raise _Refused(f"ack: expected {expected.hex()}, got {got.hex()}")
        self.report.acked_positions += confirms
