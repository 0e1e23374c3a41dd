"""What every protocol decoder shares: the decoded values, device profiles and the stream loop.

A decoder is a pure, incremental object made for one connection: :meth:`Decoder.feed` takes
whatever bytes the socket delivered (part of a frame, several frames, garbage) and returns, in
stream order, a :class:`Message` for each frame it decoded and a :class:`FrameError` for each
frame it rejected. Nothing here does I/O; the caller sends ``Message.reply`` to the device.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from lienwatch.telematics.protocols.alarms import (
    DEFAULT_ALARM_MAP,
    AlarmMap,
    ProtocolConfigError,
    alarm_map_from_dict,
)

#: Fastest ground speed a tracked car may report; a fix claiming more is refused at decoding.
MAX_SPEED_KMH = 500.0


def check_motion(speed_kmh: float, course: int) -> None:
    """Refuse a speed no car reaches or a course that is not a heading (0–359 degrees).

    Raises:
        FrameProblem: naming the field and its value.
    """
    if speed_kmh > MAX_SPEED_KMH:
        raise FrameProblem(
            ErrorKind.MALFORMED, f"speed: {speed_kmh:g} km/h is above {MAX_SPEED_KMH:g}"
        )
    if not 0 <= course <= 359:
        raise FrameProblem(ErrorKind.MALFORMED, f"course: {course} is not 0–359 degrees")


@dataclass(frozen=True, slots=True)
class Position:
    """One GNSS fix exactly as the device reported it (WGS-84, never shifted to GCJ-02).

    Attributes:
        time: when the fix was taken, timezone-aware UTC.
        lat, lon: degrees, south and west negative.
        valid: the device says the fix is valid (JT/T 808 status bit 1, GT06 course bit 12).
        speed_kmh: ground speed in km/h.
        course: heading in degrees as sent (0 = north).
        altitude_m: metres above sea level, or None when the protocol carries none.
        alarms: canonical alarm names raised with this fix.
        status: decoded status flags and the raw words they came from.
        extras: further values (mileage, satellites, cell ids, vendor fields as hex).
    """

    time: datetime
    lat: float
    lon: float
    valid: bool
    speed_kmh: float
    course: int
    altitude_m: int | None = None
    alarms: tuple[str, ...] = ()
    status: Mapping[str, Any] = field(default_factory=dict)
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded frame (or one reassembled multi-packet message).

    Attributes:
        protocol: ``"jt808"`` or ``"gt06"``.
        kind: what the message is: ``"login"``, ``"register"``, ``"auth"``, ``"heartbeat"``,
            ``"logout"``, ``"location"``, ``"batch_location"``, ``"alarm"``,
            ``"terminal_response"``, ``"fragment"`` or ``"unknown"``.
        msg_id: the protocol's message number (JT/T 808 msg id, GT06 protocol number).
        device_id: terminal phone number (JT/T 808) or IMEI (GT06), None if not yet known.
        serial: the frame's serial number.
        positions: the fixes the message carries, in the order sent.
        alarms: canonical alarm names of the message (for location messages, the union of
            its positions' alarms).
        status: decoded message-level status (heartbeat flags, raw alarm codes ...).
        extras: message-level values (registration fields, auth code, batch type ...).
        reply: the bytes the server must send back, or None.
        checksum_ok: False when the frame's checksum was wrong and the device profile
            tolerates that.
    """

    protocol: str
    kind: str
    msg_id: int
    device_id: str | None
    serial: int
    positions: tuple[Position, ...] = ()
    alarms: tuple[str, ...] = ()
    status: Mapping[str, Any] = field(default_factory=dict)
    extras: Mapping[str, Any] = field(default_factory=dict)
    reply: bytes | None = None
    checksum_ok: bool = True


class ErrorKind(StrEnum):
    """Why a frame was rejected; :class:`DecoderStats` counts by kind."""

    BAD_CHECKSUM = "bad_checksum"
    BAD_LENGTH = "bad_length"
    MALFORMED = "malformed"
    GARBAGE = "garbage"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True, slots=True)
class FrameError:
    """A frame (or run of bytes) the decoder rejected; no position was taken from it.

    Attributes:
        kind: the class of problem.
        reason: one line naming what is wrong (the field, the expected and actual values).
        frame: the raw bytes concerned, as received (still escaped for JT/T 808).
        reply: for a JT/T 808 frame whose header was sound, the general response with
            result 2 (message error) the device should get so it does not resend forever.
    """

    kind: ErrorKind
    reason: str
    frame: bytes
    reply: bytes | None = None


Event = Message | FrameError


class FrameProblem(Exception):
    """Raised inside a protocol module while decoding one frame; becomes a :class:`FrameError`."""

    def __init__(self, kind: ErrorKind, reason: str, reply: bytes | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.reply = reply


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """How to treat one device model's quirks.

    Attributes:
        name: the model name, for messages and logs.
        accept_bad_checksum: decode frames whose XOR / CRC is wrong (the firmware computes it
            wrongly) instead of rejecting them; they are marked ``checksum_ok=False`` and
            counted.
        accept_bad_length: decode JT/T 808 frames whose declared body length disagrees with
            the body actually received.
        utc_offset: the offset of the device clock, overriding the protocol default (GMT+8
            for JT/T 808; UTC or the login time zone for GT06). None keeps the default.
        alarms: the model's alarm mapping.
    """

    name: str = "default"
    accept_bad_checksum: bool = False
    accept_bad_length: bool = False
    utc_offset: timedelta | None = None
    alarms: AlarmMap = DEFAULT_ALARM_MAP


DEFAULT_PROFILE = DeviceProfile()

_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?$")


def parse_utc_offset(text: str, *, field_name: str = "utc_offset") -> timedelta:
    """Parse ``"+08:00"``, ``"-0530"``, ``"UTC+8"`` into a :class:`~datetime.timedelta`.

    Raises:
        ProtocolConfigError: not an offset, or beyond ±14 hours.
    """
    match = _OFFSET.match(text.strip())
    if not match:
        raise ProtocolConfigError(f"{field_name}: {text!r} is not a UTC offset like '+08:00'")
    sign, hours, minutes = match.groups()
    offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
    if offset > timedelta(hours=14) or int(minutes or 0) >= 60:
        raise ProtocolConfigError(f"{field_name}: {text!r} is out of range")
    return -offset if sign == "-" else offset


def profile_from_dict(data: Mapping[str, Any]) -> DeviceProfile:
    """Build a :class:`DeviceProfile` from a plain dictionary such as a TOML table.

    Keys: ``name`` (str), ``accept_bad_checksum`` and ``accept_bad_length`` (bool),
    ``utc_offset`` (``"+08:00"``), ``alarms`` (see
    :func:`~lienwatch.telematics.protocols.alarms.alarm_map_from_dict`).

    Raises:
        ProtocolConfigError: an unknown key or a value of the wrong type, naming the key.
    """
    known = {"name", "accept_bad_checksum", "accept_bad_length", "utc_offset", "alarms"}
    unknown = set(data) - known
    if unknown:
        raise ProtocolConfigError(f"profile: unknown key(s) {', '.join(sorted(unknown))}")
    name = data.get("name", "default")
    if not isinstance(name, str):
        raise ProtocolConfigError(f"name: expected a string, got {name!r}")
    flags = {}
    for key in ("accept_bad_checksum", "accept_bad_length"):
        value = data.get(key, False)
        if not isinstance(value, bool):
            raise ProtocolConfigError(f"{name}.{key}: expected true or false, got {value!r}")
        flags[key] = value
    offset_text = data.get("utc_offset")
    if offset_text is not None and not isinstance(offset_text, str):
        raise ProtocolConfigError(f"{name}.utc_offset: expected a string like '+08:00'")
    alarms = data.get("alarms", {})
    if not isinstance(alarms, Mapping):
        raise ProtocolConfigError(f"{name}.alarms: expected a table")
    return DeviceProfile(
        name=name,
        utc_offset=None if offset_text is None else parse_utc_offset(offset_text),
        alarms=alarm_map_from_dict(alarms),
        **flags,
    )


@dataclass(slots=True)
class DecoderStats:
    """Running counts for one decoder: what the gateway exports as metrics.

    Attributes:
        messages: messages decoded (a reassembled message counts once, its fragments too).
        positions: positions decoded.
        accepted_bad_checksum: messages decoded despite a wrong checksum (profile setting).
        errors: rejected frames by :class:`ErrorKind`.
    """

    messages: int = 0
    positions: int = 0
    accepted_bad_checksum: int = 0
    errors: Counter[ErrorKind] = field(default_factory=Counter)


class Decoder(ABC):
    """Incremental decoder for one connection; subclasses implement one protocol.

    Args:
        profile: the device model's quirks and alarm mapping; may be replaced later through
            the ``profile`` attribute once the device is identified.
        device_id: the device id when the caller knows it already (GT06 frames other than
            login do not carry it).
        max_frame: a lower limit than the protocol's :attr:`max_frame` (the gateway's
            ``max_frame_bytes``): bytes that cannot become a frame within it are rejected
            instead of buffered.
    """

    protocol: ClassVar[str]
    #: Longest frame the protocol allows; a candidate frame beyond it is discarded.
    max_frame: ClassVar[int]

    def __init__(
        self,
        profile: DeviceProfile = DEFAULT_PROFILE,
        *,
        device_id: str | None = None,
        max_frame: int | None = None,
    ) -> None:
        self.profile = profile
        self.device_id = device_id
        self.frame_limit = min(self.max_frame, max_frame or self.max_frame)
        self.stats = DecoderStats()
        self._buffer = b""

    @property
    def pending(self) -> bytes:
        """Bytes received but not yet resolved into a message or an error."""
        return self._buffer

    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data`` and return the messages and errors it completed, in stream order."""
        buffer = self._buffer + bytes(data) if self._buffer else bytes(data)
        self._prepare(buffer)
        events: list[Event] = []
        position = 0
        while True:
            event, position = self._next_event(buffer, position)
            if event is None:
                break
            self._count(event)
            events.append(event)
        self._buffer = buffer[position:]
        return events

    def flush(self) -> list[FrameError]:
        """End of stream: report buffered bytes that never became a whole frame, and clear them."""
        if not self._buffer:
            return []
        error = FrameError(ErrorKind.INCOMPLETE, "incomplete frame at end of input", self._buffer)
        self._buffer = b""
        self._count(error)
        return [error]

    def _prepare(self, buffer: bytes) -> None:  # noqa: B027 (a hook, not a duty)
        """Called with each read's buffer (what was pending plus the read) before scanning;
        a decoder that indexes the buffer once per read overrides it."""

    @abstractmethod
    def _next_event(self, buffer: bytes, position: int) -> tuple[Event | None, int]:
        """The next event from ``buffer[position:]`` and where scanning continues.

        Returns ``(None, position)`` when more bytes are needed; ``position`` then marks the
        first byte to keep.
        """

    def _count(self, event: Event) -> None:
        if isinstance(event, FrameError):
            self.stats.errors[event.kind] += 1
            return
        self.stats.messages += 1
        self.stats.positions += len(event.positions)
        if not event.checksum_ok:
            self.stats.accepted_bad_checksum += 1


def union_alarms(positions: tuple[Position, ...]) -> tuple[str, ...]:
    """The alarms of all ``positions``, deduplicated, in first-seen order."""
    return tuple(dict.fromkeys(name for position in positions for name in position.alarms))


__all__ = [
    "DEFAULT_PROFILE",
    "MAX_SPEED_KMH",
    "Decoder",
    "DecoderStats",
    "DeviceProfile",
    "ErrorKind",
    "Event",
    "FrameError",
    "FrameProblem",
    "Message",
    "Position",
    "ProtocolConfigError",
    "check_motion",
    "parse_utc_offset",
    "profile_from_dict",
    "union_alarms",
]
