"""What every per-vehicle detector shares: thresholds in comparable units, the emitter that
raises and resolves alerts, squared chords between unit vectors, places and long stays."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lienwatch.config import MonitorThresholds
from lienwatch.domain.geo import chord2_of_m, unit_vectors
from lienwatch.monitor.lifecycle import AlertBook
from lienwatch.monitor.model import AlertType, Fix, VehicleSpec

NEVER = math.inf
DAY_S = 86_400
HOUR_S = 3_600
CELL_DEG = 0.1  # activity-area grid
_CELL_HALF_DIAGONAL_M = 8_000.0  # half the diagonal of a 0.1° cell, rounded up


@dataclass(frozen=True, slots=True)
class Limits:
    """Thresholds in the units the per-fix code compares: seconds and squared chords."""

    stay_r2: float
    long_stay_s: float
    place_visit_s: float
    place_known_visits: int
    zone_dwell_s: float
    left_region_s: float
    night_end_s: float
    night_move_r2: float
    night_move_nights: int
    address_r2: float
    unusual_far_r2: float
    unusual_s: float
    activity_days: int
    activity_share: float
    activity_min_days: int
    jump_mps: float
    jump_min_r2: float
    mismatch_m: float
    mismatch_r2: float
    mismatch_stay_r2: float  # mismatch_m beyond a stay's radius
    mismatch_s: float
    pair_window_s: int
    cluster_s: float

    @staticmethod
    def of(t: MonitorThresholds) -> Limits:
        return Limits(
            stay_r2=chord2_of_m(t.stay_radius_m),
            long_stay_s=t.long_stay_h * HOUR_S,
            place_visit_s=t.place_visit_h * HOUR_S,
            place_known_visits=t.place_known_visits,
            zone_dwell_s=t.risk_zone_dwell_min * 60,
            left_region_s=t.left_region_h * HOUR_S,
            night_end_s=t.night_end_h * HOUR_S,
            night_move_r2=chord2_of_m(t.night_move_km * 1000),
            night_move_nights=t.night_move_nights,
            address_r2=chord2_of_m(t.address_mismatch_km * 1000),
            unusual_far_r2=chord2_of_m(t.unusual_distance_km * 1000 + 2 * _CELL_HALF_DIAGONAL_M),
            unusual_s=t.unusual_h * HOUR_S,
            activity_days=t.activity_days,
            activity_share=t.activity_share,
            activity_min_days=t.activity_min_days,
            jump_mps=t.jump_kmh / 3.6,
            jump_min_r2=chord2_of_m(t.jump_min_km * 1000),
            mismatch_m=t.mismatch_m,
            mismatch_r2=chord2_of_m(t.mismatch_m),
            mismatch_stay_r2=chord2_of_m(t.mismatch_m + t.stay_radius_m),
            mismatch_s=t.mismatch_min * 60,
            pair_window_s=t.pair_window_s,
            cluster_s=t.cluster_h * HOUR_S,
        )


def chord2(a: Any, b: Any) -> float:
    """Squared chord between two objects with unit-vector fields x, y, z."""
    dx, dy, dz = a.x - b.x, a.y - b.y, a.z - b.z
    return dx * dx + dy * dy + dz * dz


@dataclass(slots=True)
class Place:
    """A spot the vehicle stays at (home, work, a relative's): learned from stays."""

    x: float
    y: float
    z: float
    lat: float
    lon: float
    visits: int


@dataclass(slots=True)
class StayRecord:
    """A long stay of one vehicle (at least ``cluster_h``): what ``cluster`` compares."""

    vehicle_id: str
    owner: str
    start: int
    last: int
    anchor: Fix
    ended: bool = False


class Emitter:
    """What detectors share: the vehicle, its thresholds, the alert book, its last position."""

    def __init__(self, spec: VehicleSpec, thresholds: MonitorThresholds, book: AlertBook) -> None:
        self.spec = spec
        self.thresholds = thresholds
        self.limits = Limits.of(thresholds)
        self.book = book
        self.position: tuple[float, float, int] | None = None  # last valid (lat, lon, province)

    def raise_(
        self,
        alert_type: AlertType,
        *,
        start: int,
        at: int,
        evidence: dict[str, Any],
        device_id: str | None = None,
        position: tuple[float, float, int] | None = None,
    ) -> None:
        self.book.raise_alert(
            alert_type,
            self.spec,
            severity=self.thresholds.severities[alert_type],
            start=start,
            at=at,
            device_id=device_id,
            position=position or self.position,
            evidence=evidence,
        )

    def resolve(self, alert_type: AlertType, at: int) -> None:
        self.book.resolve_cause(self.spec.vehicle_id, alert_type, at)


def position_of(fix: Fix) -> tuple[float, float, int]:
    return (fix.lat, fix.lon, fix.province)


def point(fix: Fix | Place) -> list[float]:
    return [round(fix.lon, 6), round(fix.lat, 6)]



def place_at(lat: float, lon: float, *, visits: int) -> Place:
    x, y, z = (float(v) for v in unit_vectors(lat, lon))
    return Place(x, y, z, lat, lon, visits)
