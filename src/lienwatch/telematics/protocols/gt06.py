"""GT06 (Concox and clones): frame codec, stream decoder and encoders.

Frame on the wire: ``78 78 | length BYTE | protocol | content | serial WORD | CRC WORD | 0D 0A``
or the long form ``79 79 | length WORD | ...``. The length counts protocol through CRC; the
CRC is CRC-16/X-25 over length through serial.
"""

from __future__ import annotations

import binascii
import re
import struct
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from heapq import heappop, heappush
from typing import Any, ClassVar

from lienwatch.telematics.protocols.base import (
    DEFAULT_PROFILE,
    Decoder,
    DeviceProfile,
    ErrorKind,
    Event,
    FrameError,
    FrameProblem,
    Message,
    Position,
    check_motion,
    union_alarms,
)

PROTOCOL = "gt06"

LOGIN = 0x01
GPS = 0x10
GPS_LBS = 0x12
GPS_LBS_STATUS = 0x11
HEARTBEAT = 0x13
ALARM = 0x16
GPS_LBS_2 = 0x22
ALARM_2 = 0x26
ALARM_3 = 0x27

LOCATIONS = frozenset({GPS, GPS_LBS_STATUS, GPS_LBS, GPS_LBS_2})
ALARMS = frozenset({ALARM, ALARM_2, ALARM_3})
#: Packets the server acknowledges by echoing protocol number and serial.
ACKNOWLEDGED = frozenset({LOGIN, HEARTBEAT}) | ALARMS

COORDINATE_DIVISOR = 1_800_000
_MAX_FRAME = 0xFFFF + 6
_GPS = struct.Struct(">6sBIIBH")
_LBS = struct.Struct(">HBH3s")
_SHORT_MARK, _LONG_MARK = b"\x78\x78", b"\x79\x79"

_BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc16_x25(data: bytes) -> int:
    """CRC-16/X-25 (CRC-ITU as GT06 documents call it): check value 0x906E for b"123456789".

    X-25 is the bit-reflected form of CRC-16/IBM-3740, which the standard library computes
    in C as :func:`binascii.crc_hqx`; reflecting input bytes and result turns one into the
    other.
    """
    crc = binascii.crc_hqx(data.translate(_BIT_REVERSED), 0xFFFF)
    return int(f"{crc:016b}"[::-1], 2) ^ 0xFFFF


def encode_frame(
    protocol_no: int, serial: int, content: bytes = b"", *, long: bool = False
) -> bytes:
    """Build one frame: ``78 78`` form, or ``79 79`` when ``long`` (required above 250 bytes).

    Raises:
        ValueError: content too long for the form, serial or protocol out of range.
    """
    if not 0 <= serial <= 0xFFFF:
        raise ValueError(f"serial: {serial} is not 0–65535")
    if not 0 <= protocol_no <= 0xFF:
        raise ValueError(f"protocol_no: {protocol_no} is not 0–255")
    length = 1 + len(content) + 4
    if length > (0xFFFF if long else 0xFF):
        raise ValueError(
            f"content: {len(content)} bytes do not fit a {'79 79' if long else '78 78'} frame"
        )
    head = struct.pack(">H", length) if long else bytes([length])
    body = head + bytes([protocol_no]) + content + struct.pack(">H", serial)
    return (
        (_LONG_MARK if long else _SHORT_MARK) + body + struct.pack(">H", crc16_x25(body)) + b"\r\n"
    )


def encode_ack(protocol_no: int, serial: int, *, long: bool = False) -> bytes:
    """The server's acknowledgement: protocol number and serial echoed, empty content."""
    return encode_frame(protocol_no, serial, long=long)


# --- login -----------------------------------------------------------------------------------


def encode_login(
    imei: str,
    serial: int,
    *,
    type_code: int | None = None,
    utc_offset: timedelta | None = None,
) -> bytes:
    """A 0x01 login frame; the time-zone word is sent when ``utc_offset`` is given.

    Raises:
        ValueError: ``imei`` is not 15 or 16 digits, or the offset is not whole minutes.
    """
    if not imei.isdigit() or len(imei) not in (15, 16):
        raise ValueError(f"imei: {imei!r} is not 15 digits")
    content = bytes.fromhex(imei.zfill(16))
    if type_code is not None or utc_offset is not None:
        content += struct.pack(">H", type_code or 0)
    if utc_offset is not None:
        content += struct.pack(">H", _zone_word(utc_offset))
    return encode_frame(LOGIN, serial, content)


def _zone_word(offset: timedelta) -> int:
    minutes, rest = divmod(abs(int(offset.total_seconds())), 60)
    if rest:
        raise ValueError(f"utc_offset: {offset} is not whole minutes")
    hours, minutes = divmod(minutes, 60)
    return (hours * 100 + minutes) << 4 | (0x08 if offset < timedelta(0) else 0)


def _zone_offset(word: int) -> timedelta:
    hours, minutes = divmod(word >> 4, 100)
    if hours > 14 or minutes >= 60:
        raise FrameProblem(ErrorKind.MALFORMED, f"time zone: word 0x{word:04x} is not an offset")
    offset = timedelta(hours=hours, minutes=minutes)
    return -offset if word & 0x08 else offset


def _decode_login(content: bytes) -> tuple[str, dict[str, Any], timedelta | None]:
    if len(content) < 8:
        raise FrameProblem(ErrorKind.MALFORMED, f"login: {len(content)} bytes, need 8 for the IMEI")
    digits = content[:8].hex()
    if not digits.isdigit():
        raise FrameProblem(ErrorKind.MALFORMED, f"imei: {digits} is not BCD digits")
    imei = digits[1:] if digits.startswith("0") else digits
    extras: dict[str, Any] = {}
    offset = None
    if len(content) >= 10:
        extras["type_code"] = struct.unpack_from(">H", content, 8)[0]
    if len(content) >= 12:
        offset = _zone_offset(struct.unpack_from(">H", content, 10)[0])
        extras["utc_offset_minutes"] = int(offset.total_seconds() // 60)
    return imei, extras, offset


# --- GPS, LBS and terminal status blocks -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Gt06Fix:
    """The GPS block of location and alarm packets: the input of the encoders.

    Attributes:
        time: fix time, timezone-aware (written as UTC, or in the login zone if given).
        lat, lon: degrees, south and west negative.
        speed_kmh: whole km/h (one byte).
        course: degrees 0–359.
        valid: fix valid (course word bit 12).
        satellites: satellites used, 0–15.
    """

    time: datetime
    lat: float
    lon: float
    speed_kmh: int = 0
    course: int = 0
    valid: bool = True
    satellites: int = 0


@dataclass(frozen=True, slots=True)
class TerminalStatus:
    """The terminal-info byte with voltage and GSM levels (heartbeat and alarm packets).

    Attributes:
        fuel_cut: oil/electricity cut by command (bit 7).
        gps_fixed: GPS positioned (bit 6).
        alarm: the 3-bit alarm field (bits 5–3): 4 SOS, 3 low battery, 2 power cut,
            1 vibration on Concox firmware.
        charging, acc, armed: bits 2, 1, 0.
        voltage_level: 0–6.
        gsm_level: 0–4.
    """

    fuel_cut: bool = False
    gps_fixed: bool = True
    alarm: int = 0
    charging: bool = True
    acc: bool = False
    armed: bool = False
    voltage_level: int = 6
    gsm_level: int = 4

    def to_bytes(self) -> bytes:
        """Terminal-info byte, voltage level, GSM level."""
        if not 0 <= self.alarm <= 7:
            raise ValueError(f"alarm: {self.alarm} is not 0–7")
        info = (
            self.fuel_cut << 7
            | self.gps_fixed << 6
            | self.alarm << 3
            | self.charging << 2
            | self.acc << 1
            | self.armed
        )
        return bytes([info, self.voltage_level, self.gsm_level])


def _gps_block(fix: Gt06Fix, utc_offset: timedelta) -> bytes:
    local = fix.time.astimezone(timezone(utc_offset))
    stamp = bytes(
        [local.year - 2000, local.month, local.day, local.hour, local.minute, local.second]
    )
    course = fix.course & 0x3FF | fix.valid << 12 | (fix.lat >= 0) << 10 | (fix.lon < 0) << 11
    return _GPS.pack(
        stamp,
        0xC0 | fix.satellites & 0x0F,  # high nibble: length of the GPS information (12)
        round(abs(fix.lat) * COORDINATE_DIVISOR),
        round(abs(fix.lon) * COORDINATE_DIVISOR),
        fix.speed_kmh,
        course,
    )


def _lbs_block(cell: tuple[int, int, int, int]) -> bytes:
    mcc, mnc, lac, cell_id = cell
    return _LBS.pack(mcc, mnc, lac, cell_id.to_bytes(3, "big"))


def encode_location(
    serial: int,
    fix: Gt06Fix,
    *,
    protocol_no: int = GPS_LBS,
    cell: tuple[int, int, int, int] = (460, 0, 0, 0),
    acc: bool = False,
    utc_offset: timedelta = timedelta(0),
) -> bytes:
    """A location frame: 0x10 (GPS only), 0x11 / 0x12 (GPS + LBS) or 0x22 (GPS + LBS + ACC).

    ``cell`` is (MCC, MNC, LAC, cell id); times are written in ``utc_offset``.
    """
    if protocol_no not in LOCATIONS:
        raise ValueError(f"protocol_no: 0x{protocol_no:02x} is not a location packet")
    content = _gps_block(fix, utc_offset)
    if protocol_no != GPS:
        content += _lbs_block(cell)
    if protocol_no == GPS_LBS_2:
        content += bytes([acc, 0, 1])  # ACC, upload mode (0 = timed), real-time (1)
    return encode_frame(protocol_no, serial, content)


def encode_heartbeat(serial: int, status: TerminalStatus, *, language: int = 0x02) -> bytes:
    """A 0x13 heartbeat: terminal info, voltage, GSM, then alarm (0) and language bytes."""
    return encode_frame(HEARTBEAT, serial, status.to_bytes() + bytes([0, language]))


def encode_alarm(
    serial: int,
    fix: Gt06Fix,
    status: TerminalStatus,
    alarm_code: int,
    *,
    protocol_no: int = ALARM,
    cell: tuple[int, int, int, int] = (460, 0, 0, 0),
    language: int = 0x02,
    utc_offset: timedelta = timedelta(0),
) -> bytes:
    """An alarm frame (0x16, 0x26, 0x27): GPS, length-prefixed LBS, status, alarm, language."""
    if protocol_no not in ALARMS:
        raise ValueError(f"protocol_no: 0x{protocol_no:02x} is not an alarm packet")
    lbs = _lbs_block(cell)
    content = (
        _gps_block(fix, utc_offset)
        + bytes([len(lbs) + 1])
        + lbs
        + status.to_bytes()
        + bytes([alarm_code, language])
    )
    return encode_frame(protocol_no, serial, content)


def _decode_fix(content: bytes, utc_offset: timedelta) -> Position:
    if len(content) < _GPS.size:
        raise FrameProblem(ErrorKind.MALFORMED, f"gps: {len(content)} bytes, need {_GPS.size}")
    stamp, satellites, lat_raw, lon_raw, speed, course_word = _GPS.unpack_from(content)
    lat, lon = lat_raw / COORDINATE_DIVISOR, lon_raw / COORDINATE_DIVISOR
    if lat > 90 or lon > 180:
        raise FrameProblem(ErrorKind.MALFORMED, f"coordinates: {lat:.6f}, {lon:.6f} out of range")
    check_motion(speed, course_word & 0x3FF)
    try:
        local = datetime(2000 + stamp[0], *stamp[1:], tzinfo=timezone(utc_offset))
    except ValueError:
        raise FrameProblem(ErrorKind.MALFORMED, f"time: {stamp.hex()} is not a date") from None
    return Position(
        time=local.astimezone(UTC),
        lat=lat if course_word & 0x400 else -lat,
        lon=-lon if course_word & 0x800 else lon,
        valid=bool(course_word & 0x1000),
        speed_kmh=float(speed),
        course=course_word & 0x3FF,
        status={"course_status": course_word, "differential": bool(course_word & 0x2000)},
        extras={"satellites": satellites & 0x0F},
    )


def _decode_cell(block: bytes) -> dict[str, int]:
    mcc, mnc, lac, cell_id = _LBS.unpack_from(block)
    return {"mcc": mcc, "mnc": mnc, "lac": lac, "cell_id": int.from_bytes(cell_id, "big")}


def _terminal_status(
    block: bytes, profile: DeviceProfile
) -> tuple[dict[str, Any], tuple[str, ...]]:
    info, voltage, gsm = block[0], block[1], block[2]
    status = {
        "terminal_info": info,
        "fuel_cut": bool(info & 0x80),
        "gps_fixed": bool(info & 0x40),
        "charging": bool(info & 0x04),
        "acc": bool(info & 0x02),
        "armed": bool(info & 0x01),
        "voltage_level": voltage,
        "gsm_level": gsm,
    }
    mapped = profile.alarms.gt06_terminal.get((info >> 3) & 0b111)
    return status, (mapped,) if mapped else ()


def _with(position: Position, **changes: Any) -> Position:
    fields = {name: getattr(position, name) for name in Position.__slots__}
    return Position(**{**fields, **changes})


def _decode_location(
    protocol_no: int, content: bytes, profile: DeviceProfile, offset: timedelta
) -> Position:
    position = _decode_fix(content, offset)
    extras = dict(position.extras)
    status = dict(position.status)
    rest = content[_GPS.size :]
    if protocol_no != GPS and len(rest) >= _LBS.size:
        extras.update(_decode_cell(rest))
        rest = rest[_LBS.size :]
        if protocol_no == GPS_LBS_2 and rest:
            status["acc"] = bool(rest[0])
            rest = rest[3:]
    if rest:
        extras["tail"] = rest.hex()
    return _with(position, status=status, extras=extras)


def _decode_alarm(content: bytes, profile: DeviceProfile, offset: timedelta) -> Position:
    position = _decode_fix(content, offset)
    at = _GPS.size
    lbs_length = content[at] if len(content) > at else 0
    status_at = at + lbs_length
    if lbs_length < 1 or len(content) < status_at + 5:
        reason = f"alarm: {len(content)} bytes, LBS length {lbs_length} leaves no status block"
        raise FrameProblem(ErrorKind.MALFORMED, reason)
    extras = dict(position.extras)
    if lbs_length - 1 >= _LBS.size:
        extras.update(_decode_cell(content[at + 1 :]))
    terminal, info_alarms = _terminal_status(content[status_at : status_at + 3], profile)
    alarm_code = content[status_at + 3]
    coded = profile.alarms.gt06_codes.get(alarm_code)
    status = {**position.status, **terminal, "alarm_code": alarm_code}
    if len(content) > status_at + 5:
        extras["tail"] = content[status_at + 5 :].hex()
    alarms = tuple(dict.fromkeys(((coded,) if coded else ()) + info_alarms))
    return _with(position, alarms=alarms, status=status, extras=extras)


# --- the decoder -----------------------------------------------------------------------------


def _tail(buffer: bytes) -> int:
    """Where garbage without a start mark ends: before a last byte that may begin one."""
    return len(buffer) - 1 if buffer[-1:] in (b"\x78", b"\x79") else len(buffer)


_MARKS = re.compile(rb"(?=\x78\x78|\x79\x79)")


class _Marks:
    """Every ``78 78`` and ``79 79`` of one buffer, found in one pass (overlapping ones too).

    Looking marks up here instead of calling ``bytes.find`` per mark keeps resynchronizing
    over a run of marks linear in the bytes received.
    """

    def __init__(self, buffer: bytes) -> None:
        self.at = [match.start() for match in _MARKS.finditer(buffer)]

    def next(self, start: int) -> int:
        """Index of the first mark at or after ``start``, or -1."""
        index = bisect_left(self.at, start)
        return self.at[index] if index < len(self.at) else -1

    def after(self, start: int) -> Iterator[int]:
        """The marks at or after ``start``, in order."""
        at = self.at
        return (at[index] for index in range(bisect_left(at, start), len(at)))


@dataclass(slots=True)
class _Lookahead:
    """How far the search for a sound frame inside an awaited frame got; offsets count from
    the awaited frame's start, which stays the head of the buffer while it is awaited.

    Attributes:
        scanned: marks before this offset were examined.
        undecided: (end, mark) of marks whose frame was not complete yet, soonest end first.
    """

    scanned: int = 1
    undecided: list[tuple[int, int]] = field(default_factory=list)


def _crc_ok(frame: bytes) -> bool:
    return crc16_x25(frame[2:-4]) == int.from_bytes(frame[-4:-2], "big")


class Gt06Decoder(Decoder):
    """Incremental GT06 decoder for one connection.

    Args:
        profile: the device model's quirks and alarm mapping.
        device_id: the IMEI when already known; a login frame sets it.
        max_frame: longest frame accepted; a start mark whose length field claims more is
            not a frame start and is skipped at once instead of waited for.

    Times are read as UTC, or in the zone a login announced, or in ``profile.utc_offset``
    when the profile sets one (it wins: it exists for firmware that lies). Login, heartbeat
    and alarm packets are acknowledged; location packets are not (the protocol wants none).

    Resynchronizing is linear: each read's start marks are found once, a candidate frame is
    never copied before it is complete, and while a frame is awaited the marks inside it are
    checked once each, not again at every read.
    """

    protocol: ClassVar[str] = PROTOCOL
    max_frame: ClassVar[int] = _MAX_FRAME

    def __init__(
        self,
        profile: DeviceProfile = DEFAULT_PROFILE,
        *,
        device_id: str | None = None,
        max_frame: int | None = None,
    ) -> None:
        super().__init__(profile, device_id=device_id, max_frame=max_frame)
        self._login_offset: timedelta | None = None
        self._marks = _Marks(b"")
        self._ahead: _Lookahead | None = None  # the search inside the frame awaited

    def _prepare(self, buffer: bytes) -> None:
        self._marks = _Marks(buffer)

    def flush(self) -> list[FrameError]:
        self._ahead = None
        return super().flush()

    def _next_event(self, buffer: bytes, position: int) -> tuple[Event | None, int]:
        start = self._marks.next(position)
        if start < 0:
            # The last byte may be the first half of a start mark split across reads.
            keep = max(_tail(buffer), position)
            if keep > position:
                return FrameError(
                    ErrorKind.GARBAGE, "bytes outside a frame", buffer[position:keep]
                ), keep
            return None, position
        if start > position:
            return FrameError(
                ErrorKind.GARBAGE, "bytes outside a frame", buffer[position:start]
            ), start
        end = self._frame_end(buffer, start)
        if end is None:
            return None, start
        if end < 0:
            return self._unframed(buffer, start, "length field outside 5 and the frame limit")
        if end > len(buffer):
            if self._sound_frame_ahead(buffer, start):
                return self._unframed(buffer, start, "frame cut short: another frame starts in it")
            return None, start
        self._ahead = None
        if buffer[end - 2 : end] != b"\r\n":
            return self._unframed(buffer, start, "no 0d0a where the length says the frame ends")
        frame = buffer[start:end]
        if not _crc_ok(frame) and self._sound_frame_within(buffer, start + 1, end):
            # A cut-off frame whose claimed length happens to end on a later frame's 0D 0A.
            return self._unframed(buffer, start, "frame cut short: another frame starts in it")
        return self._decode_frame(frame, 4 if buffer[start] == 0x79 else 3), end

    def _frame_end(self, buffer: bytes, mark: int) -> int | None:
        """Where the frame at ``mark`` ends by its length field; None when the header is cut
        short, -1 when the length is below the minimum 5 or the frame beyond the limit."""
        head = 4 if buffer[mark] == 0x79 else 3
        if len(buffer) - mark < head:
            return None
        length = int.from_bytes(buffer[mark + 2 : mark + head], "big")
        if length < 5 or head + length + 2 > self.frame_limit:
            return -1
        return mark + head + length + 2

    def _sound(self, buffer: bytes, mark: int) -> bool | None:
        """Whether a complete frame with a good CRC starts at ``mark``; None: not known yet."""
        end = self._frame_end(buffer, mark)
        if end is None or end > len(buffer):
            return None
        return end > 0 and buffer[end - 2 : end] == b"\r\n" and _crc_ok(buffer[mark:end])

    def _sound_frame_within(self, buffer: bytes, start: int, stop: int) -> bool:
        """Whether a sound frame starts in ``buffer[start:stop]``."""
        for mark in self._marks.after(start):
            if mark >= stop:
                return False
            if self._sound(buffer, mark):
                return True
        return False

    def _sound_frame_ahead(self, buffer: bytes, start: int) -> bool:
        """Whether a sound frame starts after ``start``, whose own frame is still incomplete.

        The search goes on across reads while the frame at ``start`` is awaited: each mark is
        examined once, and one whose frame is not complete yet is judged once it is.
        """
        ahead = self._ahead if self._ahead is not None and start == 0 else _Lookahead()
        self._ahead = ahead
        while ahead.undecided and ahead.undecided[0][0] <= len(buffer) - start:
            if self._sound(buffer, start + heappop(ahead.undecided)[1]):
                return True
        for mark in self._marks.after(start + ahead.scanned):
            end = self._frame_end(buffer, mark)
            if end is None:  # a header cut short by the end of the buffer: next read
                break
            ahead.scanned = mark - start + 1
            if end > len(buffer):
                heappush(ahead.undecided, (end - start, mark - start))
            elif self._sound(buffer, mark):
                return True
        return False

    def _unframed(self, buffer: bytes, start: int, reason: str) -> tuple[Event, int]:
        """A start mark that does not begin a frame: skip to the next mark that may.

        Marks whose length field rules them out are skipped with it, so a run of junk
        marks is one error, not one per mark.
        """
        self._ahead = None
        resume = _tail(buffer)
        for mark in self._marks.after(start + 1):
            if self._frame_end(buffer, mark) != -1:
                resume = mark
                break
        resume = max(resume, start + 1)
        return FrameError(ErrorKind.MALFORMED, reason, buffer[start:resume]), resume

    def _decode_frame(self, frame: bytes, head: int) -> Event:
        checksum_ok = _crc_ok(frame)
        if not checksum_ok and not self.profile.accept_bad_checksum:
            found, computed = int.from_bytes(frame[-4:-2], "big"), crc16_x25(frame[2:-4])
            reason = f"crc: frame says 0x{found:04x}, computed 0x{computed:04x}"
            return FrameError(ErrorKind.BAD_CHECKSUM, reason, frame)
        protocol_no = frame[head]
        serial = int.from_bytes(frame[-6:-4], "big")
        try:
            return self._decode_content(
                protocol_no, frame[head + 1 : -6], serial, head == 4, checksum_ok
            )
        except FrameProblem as problem:
            return FrameError(problem.kind, problem.reason, frame)

    def _decode_content(
        self, protocol_no: int, content: bytes, serial: int, long: bool, checksum_ok: bool
    ) -> Message:
        kind = "unknown"
        positions: tuple[Position, ...] = ()
        alarms: tuple[str, ...] = ()
        status: dict[str, Any] = {}
        extras: dict[str, Any] = {}
        offset = self.profile.utc_offset
        if offset is None:
            offset = timedelta(0) if self._login_offset is None else self._login_offset
        if protocol_no == LOGIN:
            kind = "login"
            self.device_id, extras, self._login_offset = _decode_login(content)
        elif protocol_no == HEARTBEAT:
            kind = "heartbeat"
            if len(content) < 3:
                raise FrameProblem(ErrorKind.MALFORMED, f"heartbeat: {len(content)} bytes, need 3")
            status, alarms = _terminal_status(content, self.profile)
            if len(content) > 3:
                extras["tail"] = content[3:].hex()
        elif protocol_no in LOCATIONS:
            kind = "location"
            positions = (_decode_location(protocol_no, content, self.profile, offset),)
        elif protocol_no in ALARMS:
            kind = "alarm"
            positions = (_decode_alarm(content, self.profile, offset),)
        else:
            extras["body"] = content.hex()
        return Message(
            protocol=PROTOCOL,
            kind=kind,
            msg_id=protocol_no,
            device_id=self.device_id,
            serial=serial,
            positions=positions,
            alarms=alarms or union_alarms(positions),
            status=status,
            extras=extras,
            reply=encode_ack(protocol_no, serial, long=long)
            if protocol_no in ACKNOWLEDGED
            else None,
            checksum_ok=checksum_ok,
        )
