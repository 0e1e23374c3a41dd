"""The positions the gateway hands on, and the interfaces of what carries and stores them.

The gateway (and HTTP ingest) turn decoded :class:`~lienwatch.telematics.protocols.Position`
values into :class:`Fix` values bound to a registered device, and publish them in batches to a
:class:`PositionBus`. ``lienwatch.bus`` implements the bus (in-process or NATS JetStream) and
``lienwatch.store`` implements :class:`FixWriter`; this module only states the contracts so
that ``telematics`` never imports either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from typing import Protocol

from lienwatch.telematics.protocols import Position


@dataclass(frozen=True, slots=True)
class Fix:
    """One GNSS fix of a registered device, ready to store.

    Attributes:
        device_id: the device's surrogate key in the store (``devices.id``).
        time: when the fix was taken, timezone-aware UTC.
        lat, lon: degrees WGS-84, south and west negative.
        speed_kmh: ground speed in km/h.
        course: heading in degrees.
        valid: the device reported the fix as valid.
        alarms: canonical alarm names joined by ``;`` ("" for none), as the store keeps them.
        archived: a late fix (blind-area re-upload, out of order, or received long after it
            was taken): stored, but not a live observation.
        received_at: when lienwatch received it, timezone-aware UTC.
    """

    device_id: int
    time: datetime
    lat: float
    lon: float
    speed_kmh: float
    course: int
    valid: bool
    alarms: str
    archived: bool
    received_at: datetime


#: Why a fix was refused, as counted: dated ahead of the server clock beyond the skew allowed.
CLOCK_AHEAD = "clock_ahead"


def clock_problem(position: Position, *, received_at: datetime, max_skew: timedelta) -> str | None:
    """Why ``position`` cannot be a real fix, or None: taken more than ``max_skew`` after it
    was received. Such a fix would pin the device's ``last_fix_at`` in the future (online
    forever) and make its later true fixes look out of order."""
    ahead = position.time - received_at
    if ahead <= max_skew:
        return None
    return (
        f"time: {position.time.isoformat()} is {ahead.total_seconds():.0f} s ahead of the "
        f"server clock (at most {max_skew.total_seconds():g} s allowed)"
    )


#: Why a fix was refused, as counted: dated before the day its device was fitted.
BEFORE_FITTING = "before_fitting"
#: Where a day begins first (UTC+14): a fix taken on the fitting day by any clock is kept.
_EARLIEST_ZONE = timezone(timedelta(hours=14))


def fitting_problem(position: Position, *, fitted_on: date | None) -> str | None:
    """Why ``position`` cannot be a fix of a device fitted on ``fitted_on``, or None: taken
    before that day began anywhere (a device replaying an older history, a clock reset to
    an earlier date). None when the fitting day is unknown."""
    if fitted_on is None:
        return None
    first = datetime.combine(fitted_on, time(), _EARLIEST_ZONE)
    if position.time >= first:
        return None
    return (
        f"time: {position.time.isoformat()} is before the device was fitted "
        f"({fitted_on.isoformat()})"
    )


def fix_from_position(
    position: Position,
    *,
    device_id: int,
    received_at: datetime,
    late_after: timedelta,
    newest: datetime | None = None,
    re_upload: bool = False,
) -> Fix:
    """Bind a decoded position to a device and decide whether it is late.

    A fix is late (``archived``) when the device says it is a re-upload, when it is older
    than ``newest`` (the newest fix already received from the device: out of order), or
    when it arrives more than ``late_after`` after it was taken.
    """
    late = (
        re_upload
        or (newest is not None and position.time < newest)
        or received_at - position.time > late_after
    )
    return Fix(
        device_id=device_id,
        time=position.time,
        lat=position.lat,
        lon=position.lon,
        speed_kmh=position.speed_kmh,
        course=position.course,
        valid=position.valid,
        alarms=";".join(position.alarms),
        archived=late,
        received_at=received_at,
    )


class Outcome(StrEnum):
    """What storing a fix does: store it, drop it as a duplicate of the stored fix of its
    (device, time), or keep it as evidence of a conflict with that fix (another position)."""

    NEW = "new"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


#: The position (lat, lon) stored for each (device id, fix time).
StoredPositions = Mapping[tuple[int, datetime], tuple[float, float]]


def outcomes(fixes: Sequence[Fix], stored: StoredPositions) -> list[Outcome]:
    """The outcome of storing ``fixes`` in order, given the positions already ``stored`` at
    their (device, time): a fix repeats or contradicts the stored one or an earlier one."""
    seen = dict(stored)
    result = []
    for fix in fixes:
        key, position = (fix.device_id, fix.time), (fix.lat, fix.lon)
        known = seen.setdefault(key, position)
        if known is position:  # this very tuple was just recorded: nothing came before it
            result.append(Outcome.NEW)
        else:
            result.append(Outcome.DUPLICATE if known == position else Outcome.CONFLICT)
    return result


class FixHistory(Protocol):
    """Reads back stored fixes (implemented by ``lienwatch.store``)."""

    def positions_at(self, keys: Collection[tuple[int, datetime]]) -> StoredPositions:
        """The stored position of each (device id, fix time) in ``keys`` that has one.

        Blocking: call it from a worker thread in asyncio code.
        """
        ...


#: Receives batches from a bus subscription; raising makes the bus deliver the batch again
#: (JetStream) or log it (in-process, where the batch is already in the store).
FixHandler = Callable[[Sequence[Fix]], Awaitable[None]]


class PositionBus(Protocol):
    """Where the gateway publishes fixes and consumers (the store writer, the monitor) read them."""

    async def publish(self, fixes: Sequence[Fix]) -> None:
        """Return only once every fix in ``fixes`` is durable; raise if that cannot be done.

        Durable means committed to the store (in-process bus) or acknowledged by the stream
        (JetStream). The caller acknowledges the device only after this returns.
        """
        ...

    async def subscribe(self, name: str, handler: FixHandler) -> None:
        """Deliver durable batches to ``handler`` until :meth:`close`; ``name`` identifies the
        consumer (a durable JetStream consumer resumes where it stopped)."""
        ...

    async def close(self) -> None:
        """Stop subscriptions and release connections; pending publishes fail."""
        ...


class FixWriter(Protocol):
    """Stores fixes durably (implemented by ``lienwatch.store``)."""

    def write(self, fixes: Sequence[Fix]) -> int:
        """Commit ``fixes``, skipping duplicates of (device, fix time) and keeping those that
        report another position as conflicts; return how many were new.

        Blocking: call it from a worker thread in asyncio code.
        """
        ...


def writing_to(writer: FixWriter) -> FixHandler:
    """A subscription handler that stores each batch with ``writer`` (in a worker thread):
    the store-writer consumer of a JetStream bus."""

    async def write(fixes: Sequence[Fix]) -> None:
        await asyncio.to_thread(writer.write, fixes)

    return write
