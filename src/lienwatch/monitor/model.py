"""The monitor's values: the fleet it watches, the fixes it reads, the alerts it raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from lienwatch.errors import LienwatchError


class MonitorInputError(LienwatchError, ValueError):
    """Input the monitor cannot use; the message names the field."""


class AlertType(StrEnum):
    POWER_CUT = "power_cut"
    DEVICE_REMOVED = "device_removed"
    GNSS_ANTENNA_CUT = "gnss_antenna_cut"
    DEVICE_OFFLINE = "device_offline"
    LONG_STAY = "long_stay"
    RISK_ZONE_VISIT = "risk_zone_visit"
    LEFT_REGION = "left_region"
    NIGHT_RELOCATION = "night_relocation"
    ADDRESS_MISMATCH = "address_mismatch"
    UNUSUAL_AREA = "unusual_area"
    POSITION_JUMP = "position_jump"
    TRACKER_MISMATCH = "tracker_mismatch"
    CLUSTER = "cluster"
    LTV_BREACH = "ltv_breach"


#: The alerts a tracker's own alarm raises: events raised as they arrive, followed up at once.
ALARM_TYPES = frozenset({AlertType.POWER_CUT, AlertType.DEVICE_REMOVED, AlertType.GNSS_ANTENNA_CUT})


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"


OPEN_STATUSES = frozenset({AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED})
DEVICE_KINDS = frozenset({"wired", "wireless"})


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A tracker and the vehicle it is fitted to."""

    device_id: str
    vehicle_id: str
    kind: str = "wired"  # wired | wireless
    report_interval_s: int = 0  # nominal interval while parked; 0 when unknown

    def __post_init__(self) -> None:
        if self.kind not in DEVICE_KINDS:
            raise MonitorInputError(f"kind: {self.kind!r} is not 'wired' or 'wireless'")
        if self.report_interval_s < 0:
            raise MonitorInputError(f"report_interval_s: {self.report_interval_s} is negative")


@dataclass(frozen=True, slots=True)
class VehicleSpec:
    """What servicing and origination tell the monitor about one financed vehicle.

    ``region`` is the permitted province (GB/T 2260 code); None means the province of the
    vehicle's first valid fix. ``area`` names a lender-defined permitted region of the
    monitor's :class:`~lienwatch.monitor.regions.RegionLibrary` and, when set, replaces
    ``region``. ``home`` is the declared home address as (lat, lon).
    ``exposure`` is the loan's unsecured exposure in fen, carried by every alert.
    """

    vehicle_id: str
    loan_id: str | None = None
    borrower_id: str | None = None
    product: str | None = None
    region: str | None = None
    area: str | None = None
    home: tuple[float, float] | None = None
    time_zone: str = "Asia/Shanghai"
    exposure: int = 0

    @property
    def owner(self) -> str:
        """Who the vehicle belongs to for cross-vehicle rules (the vehicle when unknown)."""
        return self.borrower_id or self.vehicle_id


class Fix(NamedTuple):
    """One fix as the per-vehicle state machines read it (derived fields precomputed)."""

    time: int  # epoch seconds UTC
    device_id: str
    valid: bool  # usable coordinates: flagged valid, in range, not (0, 0)
    lat: float
    lon: float
    x: float  # unit vector, see lienwatch.domain.geo.unit_vectors
    y: float
    z: float
    province: int  # ProvinceIndex index, -1 outside China or invalid
    zone: int  # ZoneLibrary index, -1 outside every zone
    local: int  # epoch seconds shifted to the vehicle's local wall clock
    cell: int  # coarse grid cell for the activity area
    alarms: str  # canonical alarm names joined by ";"
    in_area: bool  # inside the vehicle's lender-defined area (True when it has none)


def utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def iso_utc(epoch: float | None) -> str | None:
    """``2026-07-04T08:30:00Z``, or None."""
    return None if epoch is None else utc(int(epoch)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Alert:
    """One collateral alert and its lifecycle.

    ``start`` is when the condition began (the stay's arrival, the last report before a
    silence), ``raised_at`` when the monitor could first know it, ``end`` when the cause
    ended (None while it lasts). Times are epoch seconds UTC. ``repeats`` counts the times the
    condition was seen again while the alert was open.
    """

    id: str
    type: AlertType
    severity: str
    vehicle_id: str
    device_id: str | None
    loan_id: str | None
    start: int
    raised_at: int
    lat: float | None
    lon: float | None
    province: str | None  # GB/T 2260 code
    province_zh: str | None
    province_en: str | None
    evidence: dict[str, Any]
    exposure: int  # fen
    end: int | None = None
    status: AlertStatus = AlertStatus.OPEN
    status_by: str | None = None
    status_at: int | None = None
    repeats: int = 0
    updated_at: int = field(default=0)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def as_json(self) -> dict[str, Any]:
        """The alert as ``lienwatch replay`` prints it."""
        return {
            "id": self.id,
            "type": str(self.type),
            "severity": self.severity,
            "status": str(self.status),
            "vehicle_id": self.vehicle_id,
            "device_id": self.device_id,
            "loan_id": self.loan_id,
            "start": iso_utc(self.start),
            "raised_at": iso_utc(self.raised_at),
            "end": iso_utc(self.end),
            "lat": None if self.lat is None else round(self.lat, 6),
            "lon": None if self.lon is None else round(self.lon, 6),
            "province": (
                None
                if self.province is None
                else {"code": self.province, "zh": self.province_zh, "en": self.province_en}
            ),
            "exposure": self.exposure,
            "repeats": self.repeats,
            "evidence": self.evidence,
        }
