"""HTTP ingest of positions for phones and partners, under ``/api/v1/ingest``.

Two endpoints, both answered only once the positions are durable on the position bus:

- ``GET`` or ``POST /api/v1/ingest/osmand?id=…&lat=…&lon=…&timestamp=…&speed=…&bearing=…&batt=…``:
  the OsmAnd / Traccar Client protocol, one fix per request. ``speed`` is in knots as in that
  protocol; ``timestamp`` is epoch seconds, epoch milliseconds or ISO 8601.
- ``POST /api/v1/ingest/positions`` with ``{"positions": [{"device_id", "time", "lat", "lon",
  "speed_kmh", "course", "valid", "alarms"}, …]}``: a batch of up to 1,000 fixes of any
  devices, stored all or nothing.

Every request carries a partner's API token (``[gateway] partners``) as
``Authorization: Bearer <token>``; the OsmAnd endpoint also takes ``token=<token>`` in the
URL, for clients that can only set a URL. The token is checked before the body is read.
Devices must be registered with protocol ``osmand`` (or are quarantined, per
``unknown_devices``). Answers: 200 stored (``accepted``, ``archived``, ``duplicates``,
``conflicts``), 401 no or wrong token, 403 device refused, 413 a body over
``http_max_body_bytes``, 422 a bad field (named, with a short excerpt of what was sent), 503
the bus could not make them durable (retry).
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time, and
# they name dependencies local to ingest_router().
import asyncio
import hashlib
import hmac
import json
import logging
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lienwatch import clock
from lienwatch.api.errors import ErrorBody, describe, excerpt
from lienwatch.config import GatewaySettings
from lienwatch.telematics.fixes import (
    BEFORE_FITTING,
    CLOCK_AHEAD,
    Fix,
    FixHistory,
    Outcome,
    PositionBus,
    clock_problem,
    fitting_problem,
    fix_from_position,
    outcomes,
)
from lienwatch.telematics.protocols import CANONICAL_ALARMS, Position
from lienwatch.telematics.protocols.base import MAX_SPEED_KMH
from lienwatch.telematics.registry import DeviceRegistry

log = logging.getLogger(__name__)

PROTOCOL = "osmand"
KNOT_KMH = 1.852
MAX_BATCH = 1000


def token_digest(token: str) -> str:
    """The SHA-256 digest (hex) of a partner token."""
    return hashlib.sha256(token.encode()).hexdigest()


def configured_digest(value: str) -> str:
    """The digest of a configured partner token: ``sha256:<hex>`` is one already (the token
    a client sends is always hashed: sending a digest proves nothing)."""
    return value[7:] if value.startswith("sha256:") else token_digest(value)


def parse_time(value: object) -> datetime:
    """Epoch seconds, epoch milliseconds (above 10^11) or ISO 8601 (UTC if no offset).

    Raises:
        ValueError: none of these, or a moment no ``datetime`` holds (NaN, infinite, year 0
            or beyond 9999 once in UTC).
    """
    try:
        if isinstance(value, str) and not value.replace(".", "", 1).isdigit():
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise TypeError
        number = float(value)
        return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)
    except (ValueError, TypeError, OverflowError, OSError):
        raise ValueError(
            f"{excerpt(value)} is not epoch seconds, epoch milliseconds or ISO 8601 in range"
        ) from None


class IngestFix(BaseModel):
    """One fix of the JSON batch endpoint."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    device_id: str = Field(min_length=1, max_length=20)
    time: datetime
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    speed_kmh: float = Field(0.0, ge=0, le=MAX_SPEED_KMH)
    course: int = Field(0, ge=0, le=359)
    valid: bool = True
    alarms: list[str] = Field(default_factory=list)

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: object) -> datetime:
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


def parse_batch(body: bytes) -> IngestBatch:
    """The batch in ``body``, its size checked before any fix is validated.

    Validating a 1 MiB body of 6,500 fixes to learn there are more than 1,000 takes about
    23 ms of the event loop, parsing it about 10: the parser goes first and an oversized
    batch stops there (a batch of 1,000 costs about 1.5 ms more than validating at once).

    Raises:
        HTTPException: 422 naming the first problem.
    """
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise HTTPException(422, f"body: not JSON ({excerpt(str(exc))})") from None
    fixes = data.get("positions") if isinstance(data, dict) else None
    if isinstance(fixes, list) and len(fixes) > MAX_BATCH:
        raise HTTPException(422, f"positions: {len(fixes)} fixes, at most {MAX_BATCH}")
    try:
        return IngestBatch.model_validate(data)
    except ValidationError as exc:
        raise HTTPException(422, describe(exc.errors())) from None


class IngestResult(BaseModel):
    """What became of the fixes of a request: ``accepted`` new ones (of which ``archived``
    late), ``duplicates`` of a stored fix (dropped) and ``conflicts`` (same device and time
    as a stored fix, another position: kept as evidence, not as the device's position)."""

    accepted: int
    archived: int
    duplicates: int
    conflicts: int


def ingest_router(
    registry: DeviceRegistry,
    bus: PositionBus,
    history: FixHistory,
    settings: GatewaySettings,
    refused: Counter[str] | None = None,
) -> APIRouter:
    """The ``/api/v1/ingest`` routes over ``registry`` and ``bus``; ``history`` tells which
    fixes repeat or contradict stored ones; fixes refused are counted by reason in
    ``refused`` (for the health endpoint).

    The answer's counts are taken against the store before publishing: two requests racing
    with the same fixes may both count them accepted (the store keeps one).
    """
    refusals = {code: {"model": ErrorBody} for code in (401, 403, 408, 413, 422, 503)}
    router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"], responses=refusals)
    late_after = timedelta(seconds=settings.late_after_s)
    max_skew = timedelta(seconds=settings.max_clock_skew_s)
    refused = Counter() if refused is None else refused

    digests = {name: configured_digest(value) for name, value in settings.partners.items()}

    def partner_of(given: str | None) -> str:
        if given:
            digest = token_digest(given)
            for name, expected in digests.items():
                if hmac.compare_digest(expected, digest):
                    return name
        raise HTTPException(401, "token: missing or not a partner's API token")

    def bearer(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        return header[7:] if header.lower().startswith("bearer ") else None

    def partner(request: Request) -> str:
        """The partner whose ``Authorization: Bearer`` token the request carries; 401 otherwise.

        A dependency without a body parameter: it runs before the body is read.
        """
        return partner_of(bearer(request))

    def osmand_partner(request: Request, token: str | None = None) -> str:
        """As :func:`partner`, or ``?token=`` for OsmAnd clients, which can only set a URL."""
        return partner_of(bearer(request) or token)

    def check_clock(positions: Sequence[Position], fields: Sequence[str], now: datetime) -> None:
        """422 naming the time field of the first fix dated beyond the clock skew allowed."""
        for position, field in zip(positions, fields, strict=True):
            refuse(CLOCK_AHEAD, field, clock_problem(position, received_at=now, max_skew=max_skew))

    def refuse(reason: str, field: str, problem: str | None) -> None:
        """422 naming ``field`` if there is a ``problem``, counted under ``reason``."""
        if problem is not None:
            refused[reason] += 1
            raise HTTPException(422, f"{field}: {problem.removeprefix('time: ')}")

    async def store(
        who: str, items: Sequence[tuple[str, Position]], time_fields: Sequence[str]
    ) -> IngestResult:
        """Check, admit and publish ``items``; ``time_fields`` name their times for a 422."""
        received = clock.now()
        check_clock([position for _, position in items], time_fields, received)
        device_ids: dict[str, int] = {}
        fitted_on: dict[str, date | None] = {}
        for ident in dict.fromkeys(ident for ident, _ in items):
            device = await asyncio.to_thread(registry.admit, ident, PROTOCOL, partner=who)
            if device is None:
                raise HTTPException(
                    403, f"id: device {ident!r} is not registered for {PROTOCOL} and this partner"
                )
            device_ids[ident] = device.id
            fitted_on[ident] = device.fitted_on
        for (ident, position), field in zip(items, time_fields, strict=True):
            refuse(BEFORE_FITTING, field, fitting_problem(position, fitted_on=fitted_on[ident]))
        fixes: list[Fix] = [
            fix_from_position(position, device_id=device_ids[ident], received_at=received,
                              late_after=late_after)
            for ident, position in items
        ]  # fmt: skip
        try:
            stored = await asyncio.to_thread(
                history.positions_at, [(fix.device_id, fix.time) for fix in fixes]
            )
            await bus.publish(fixes)
        except Exception as exc:  # not durable: the client must retry
            log.error("ingest: publishing %d fixes from %s failed: %s", len(fixes), who, exc)
            raise HTTPException(503, "positions could not be stored; retry") from None
        result = outcomes(fixes, stored)
        return IngestResult(
            accepted=result.count(Outcome.NEW),
            archived=sum(
                f.archived for f, o in zip(fixes, result, strict=True) if o == Outcome.NEW
            ),
            duplicates=result.count(Outcome.DUPLICATE),
            conflicts=result.count(Outcome.CONFLICT),
        )

    Partner = Annotated[str, Depends(partner)]
    OsmandPartner = Annotated[str, Depends(osmand_partner)]

    # One route per method: each gets its own OpenAPI operation id.
    @router.get("/osmand", response_model=IngestResult)
    @router.post("/osmand", response_model=IngestResult)
    async def osmand(
        who: OsmandPartner,
        device: Annotated[str, Query(alias="id", min_length=1, max_length=20)],
        lat: Annotated[float, Query(ge=-90, le=90)],
        lon: Annotated[float, Query(ge=-180, le=180)],
        timestamp: Annotated[str, Query()],
        speed: Annotated[
            float, Query(ge=0, le=MAX_SPEED_KMH / KNOT_KMH, description="knots")
        ] = 0.0,
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
        return await store(who, [(device, position)], ["timestamp"])

    @router.post("/positions", response_model=IngestResult)
    async def positions(who: Partner, request: Request) -> IngestResult:
        """A batch of fixes, stored all or nothing.

        The body is read only here, once the token is checked (a body parameter would make
        FastAPI read and parse it first); its size is bounded by ``BodyLimit``.
        """
        batch = parse_batch(await request.body())
        items = [
            (item.device_id, Position(
                time=item.time, lat=item.lat, lon=item.lon, valid=item.valid,
                speed_kmh=item.speed_kmh, course=item.course, alarms=tuple(item.alarms),
            ))
            for item in batch.positions
        ]  # fmt: skip
        return await store(who, items, [f"positions.{n}.time" for n in range(len(items))])

    return router
