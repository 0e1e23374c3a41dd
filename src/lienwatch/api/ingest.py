"""HTTP ingest of positions for phones and partners, under ``/api/v1/ingest``.

Two endpoints, both answered only once the positions are durable on the position bus:

- ``GET`` or ``POST /api/v1/ingest/osmand?id=…&lat=…&lon=…&timestamp=…&speed=…&bearing=…&batt=…``:
  the OsmAnd / Traccar Client protocol, one fix per request. ``speed`` is in knots as in that
  protocol; ``timestamp`` is epoch seconds, epoch milliseconds or ISO 8601.
- ``POST /api/v1/ingest/positions`` with ``{"positions": [{"device_id", "time", "lat", "lon",
  "speed_kmh", "course", "valid", "alarms"}, …]}``: a batch of up to 1,000 fixes of any
  devices, stored all or nothing.

Every request carries a partner's API token (``[gateway] partners``), as
``Authorization: Bearer <token>`` or, for clients that can only set a URL, ``token=<token>``.
Devices must be registered with protocol ``osmand`` (or are quarantined, per
``unknown_devices``). Answers: 200 stored (``accepted``, ``archived``), 401 no or wrong token,
403 device refused, 422 a bad field (named), 503 the bus could not make them durable (retry).
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time, and
# they name dependencies local to ingest_router().
import asyncio
import hmac
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lienwatch import clock
from lienwatch.config import GatewaySettings
from lienwatch.telematics.fixes import Fix, PositionBus, fix_from_position
from lienwatch.telematics.protocols import CANONICAL_ALARMS, Position
from lienwatch.telematics.registry import DeviceRegistry

log = logging.getLogger(__name__)

PROTOCOL = "osmand"
KNOT_KMH = 1.852
MAX_BATCH = 1000


def parse_time(value: str | float | int) -> datetime:
    """Epoch seconds, epoch milliseconds (above 10^11) or ISO 8601 (UTC if no offset).

    Raises:
        ValueError: none of these.
    """
    if isinstance(value, str) and not value.replace(".", "", 1).isdigit():
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not epoch seconds or ISO 8601") from None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    number = float(value)
    return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)


class IngestFix(BaseModel):
    """One fix of the JSON batch endpoint."""

    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(min_length=1, max_length=20)
    time: datetime
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    speed_kmh: float = Field(0.0, ge=0, le=1000)
    course: int = Field(0, ge=0, le=359)
    valid: bool = True
    alarms: list[str] = Field(default_factory=list)

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: str | float | int) -> datetime:
        return parse_time(value)

    @field_validator("alarms")
    @classmethod
    def _canonical(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CANONICAL_ALARMS))
        if unknown:
            raise ValueError(f"not canonical alarm names: {', '.join(unknown)}")
        return value


class IngestBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    positions: list[IngestFix] = Field(min_length=1, max_length=MAX_BATCH)


class IngestResult(BaseModel):
    accepted: int
    archived: int


def ingest_router(
    registry: DeviceRegistry, bus: PositionBus, settings: GatewaySettings
) -> APIRouter:
    """The ``/api/v1/ingest`` routes over ``registry`` and ``bus``."""
    router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])
    late_after = timedelta(seconds=settings.late_after_s)

    def partner(request: Request, token: str | None = None) -> str:
        """The partner whose token the request carries; 401 otherwise."""
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else token
        if given:
            for name, expected in settings.partners.items():
                if hmac.compare_digest(expected.encode(), given.encode()):
                    return name
        raise HTTPException(401, "token: missing or not a partner's API token")

    async def store(who: str, items: Sequence[tuple[str, Position]]) -> IngestResult:
        device_ids: dict[str, int] = {}
        for ident in dict.fromkeys(ident for ident, _ in items):
            device = await asyncio.to_thread(registry.admit, ident, PROTOCOL)
            if device is None:
                raise HTTPException(403, f"id: device {ident!r} is not registered for {PROTOCOL}")
            device_ids[ident] = device.id
        received = clock.now()
        fixes: list[Fix] = [
            fix_from_position(position, device_id=device_ids[ident], received_at=received,
                              late_after=late_after)
            for ident, position in items
        ]  # fmt: skip
        try:
            await bus.publish(fixes)
        except Exception as exc:  # not durable: the client must retry
            log.error("ingest: publishing %d fixes from %s failed: %s", len(fixes), who, exc)
            raise HTTPException(503, "positions could not be stored; retry") from None
        return IngestResult(accepted=len(fixes), archived=sum(f.archived for f in fixes))

    Partner = Annotated[str, Depends(partner)]

    @router.api_route("/osmand", methods=["GET", "POST"], response_model=IngestResult)
    async def osmand(
        who: Partner,
        device: Annotated[str, Query(alias="id", min_length=1, max_length=20)],
        lat: Annotated[float, Query(ge=-90, le=90)],
        lon: Annotated[float, Query(ge=-180, le=180)],
        timestamp: Annotated[str, Query()],
        speed: Annotated[float, Query(ge=0, le=600, description="knots")] = 0.0,
        bearing: Annotated[float, Query(ge=0, le=360)] = 0.0,
        batt: Annotated[float | None, Query(ge=0, le=100, description="percent")] = None,
        valid: Annotated[bool, Query()] = True,
    ) -> IngestResult:
        """One fix in the OsmAnd / Traccar Client form.

        ``batt`` is checked but not stored: positions have no battery column yet.
        """
        try:
            time = parse_time(timestamp)
        except ValueError as exc:
            raise HTTPException(422, f"timestamp: {exc}") from None
        position = Position(
            time=time, lat=lat, lon=lon, valid=valid, speed_kmh=round(speed * KNOT_KMH, 1),
            course=round(bearing) % 360,
        )  # fmt: skip
        return await store(who, [(device, position)])

    @router.post("/positions", response_model=IngestResult)
    async def positions(who: Partner, batch: IngestBatch) -> IngestResult:
        """A batch of fixes, stored all or nothing."""
        items = [
            (item.device_id, Position(
                time=item.time, lat=item.lat, lon=item.lon, valid=item.valid,
                speed_kmh=item.speed_kmh, course=item.course, alarms=tuple(item.alarms),
            ))
            for item in batch.positions
        ]  # fmt: skip
        return await store(who, items)

    return router
