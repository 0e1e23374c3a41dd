"""What every per-vehicle detector shares: thresholds in comparable units, the emitter that
raises and resolves alerts, squared chords between unit vectors, places and long stays."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lienwatch.config import MonitorThresholds
from lienwatch.domain.geo import chord2_of_m, unit_vectors
from lienwatch.monitor.lifecycle import AlertBook
from lienwatch.monitor.model import AlertType, Fix, VehicleSpec, iso_utc

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
    unusual_nights: int
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
            unusual_nights=t.unusual_nights,
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


#: What each rule says and the thresholds it compares (``MonitorThresholds`` fields), by the
#: rule's name in the evidence: the alert type, or ``type.variant`` for a type two rules raise.
RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "power_cut": ("the tracker reported a main-power-cut alarm", ()),
    "gnss_antenna_cut": ("the tracker reported its GNSS antenna cut or shorted", ()),
    "device_removed.alarm": ("the tracker reported a removal or tamper alarm", ()),
    "device_removed.silence": (
        "a wired tracker fell silent after a power-cut alarm for longer than its removal "
        "silence (removal_silence_intervals report intervals, at least removal_silence_min_h)",
        ("removal_silence_intervals", "removal_silence_min_h"),
    ),
    "device_offline": (
        "no report for longer than the tracker's kind allows (offline_wired_h or "
        "offline_wireless_h, at least offline_min_intervals report intervals)",
        ("offline_wired_h", "offline_wireless_h", "offline_min_intervals"),
    ),
    "long_stay": (
        "every fix within stay_radius_m of the stay's first (or of a stay just before it "
        "that the car never left) for more than long_stay_h with no fix elsewhere, not at a "
        "known place (one stayed at place_known_visits times for place_visit_h or more)",
        ("stay_radius_m", "long_stay_h", "place_visit_h", "place_known_visits"),
    ),
    "risk_zone_visit": (
        "inside a risk zone for risk_zone_dwell_min or more, not at a known place",
        ("risk_zone_dwell_min", "stay_radius_m", "place_known_visits"),
    ),
    "left_region": (
        "outside the permitted region (the lender-defined area, else the booked province) "
        "for more than left_region_h",
        ("left_region_h",),
    ),
    "night_relocation": (
        "the night parking place (the last fix before night_end_h local time) moved more "
        "than night_move_km and stayed there night_move_nights nights in a row",
        ("night_end_h", "night_move_km", "night_move_nights"),
    ),
    "address_mismatch": (
        "the night parking place, confirmed night_move_nights nights, lies more than "
        "address_mismatch_km from the declared home",
        ("night_end_h", "night_move_km", "night_move_nights", "address_mismatch_km"),
    ),
    "unusual_area": (
        "more than unusual_distance_km outside the 0.1° cells holding activity_share of the "
        "fixes of the last activity_days days (learned after activity_min_days) for more "
        "than unusual_h and over unusual_nights night ends (night_end_h local): a night away, "
        "not a day trip",
        (
            "unusual_distance_km",
            "unusual_h",
            "unusual_nights",
            "night_end_h",
            "activity_days",
            "activity_share",
            "activity_min_days",
        ),
    ),
    "position_jump": (
        "two consecutive fixes of one tracker more than jump_min_km apart imply more than "
        "jump_kmh",
        ("jump_kmh", "jump_min_km"),
    ),
    "tracker_mismatch.apart": (
        "the vehicle's trackers were more than mismatch_m apart for mismatch_min or more "
        "(fixes within pair_window_s of each other, a wired tracker's stay spanning a fix, or "
        "beyond the reach of its fixes before and after), with no evidence of them together",
        ("mismatch_m", "mismatch_min", "pair_window_s", "stay_radius_m"),
    ),
    "tracker_mismatch.silent": (
        "a tracker reported more than mismatch_m from where the other, silent longer than its "
        "removal silence, fell silent",
        ("mismatch_m", "removal_silence_intervals", "removal_silence_min_h"),
    ),
    "cluster": (
        "cluster_vehicles or more vehicles of different borrowers stayed within "
        "cluster_radius_m of each other for cluster_h or more",
        ("cluster_vehicles", "cluster_radius_m", "cluster_h"),
    ),
    "ltv_breach": ("the loan-to-value rose above the product's ltv_cap", ("ltv_cap",)),
}


def evidence_of(
    rule: str,
    thresholds: MonitorThresholds,
    *,
    fixes: Sequence[Fix] = (),
    stay: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An alert's evidence: the rule that fired (``RULES``), the thresholds it compared, the
    fixes it rests on (device, time, coordinates), the stay if any, then the detector's own
    figures."""
    why, names = RULES[rule]
    evidence: dict[str, Any] = {
        "rule": rule,
        "why": why,
        "thresholds": {name: getattr(thresholds, name) for name in names},
        "fixes": [fix_evidence(fix) for fix in fixes],
    }
    if stay is not None:
        evidence["stay"] = stay
    return evidence | (details or {})


def evidence_text(evidence: dict[str, Any]) -> str:
    """``long_stay (stay_radius_m=200.0, long_stay_h=72.0) on D1 2026-07-01T00:00:00Z
    30.2741,120.1551; D1 …``: the rule, its thresholds and the fixes of :func:`evidence_of`'s
    evidence in one line; empty for evidence of no rule (an alert raised elsewhere). Evidence
    of another shape with a rule (a ``payment_anomaly``'s: no fixes) gives what it has."""
    if "rule" not in evidence:
        return ""
    thresholds = evidence.get("thresholds", {})
    limits = ", ".join(f"{name}={value}" for name, value in thresholds.items())
    fixes = "; ".join(
        f"{f['device']} {f['time']}" + ("" if f["lat"] is None else f" {f['lat']},{f['lon']}")
        for f in evidence.get("fixes", ())
    )
    return evidence["rule"] + (f" ({limits})" if limits else "") + (
        f" on {fixes}" if fixes else ""
    )


def fix_evidence(fix: Fix) -> dict[str, Any]:
    """One fix as evidence shows it (no coordinates when they are not usable)."""
    usable = fix.valid
    return {
        "device": fix.device_id,
        "time": iso_utc(fix.time),
        "lat": round(fix.lat, 6) if usable else None,
        "lon": round(fix.lon, 6) if usable else None,
        **({"alarms": fix.alarms} if fix.alarms else {}),
    }


class Emitter:
    """What detectors share: the vehicle, its thresholds, the alert book, its last position."""

    __slots__ = ("_limits", "book", "last_valid", "spec", "thresholds", "tuned")

    def __init__(self, spec: VehicleSpec, thresholds: MonitorThresholds, book: AlertBook) -> None:
        self.spec = spec
        self.thresholds = thresholds
        self.tuned: list[Any] = []  # detectors holding thresholds as plain floats (keep_tuned)
        self._limits = Limits.of(thresholds)
        self.book = book
        self.last_valid: Fix | None = None  # the vehicle's last fix with usable coordinates

    @property
    def limits(self) -> Limits:
        return self._limits

    @limits.setter
    def limits(self, limits: Limits) -> None:
        """New thresholds (a respec): every detector holding some as its own floats takes them."""
        self._limits = limits
        for detector in self.tuned:
            detector.tune(limits)

    def keep_tuned(self, detector: Any) -> None:
        """Give ``detector`` the thresholds now (its ``tune(limits)``) and whenever they change:
        its per-fix code then compares with floats of its own, not ``out.limits.name``."""
        self.tuned.append(detector)
        detector.tune(self._limits)

    def raise_(
        self,
        alert_type: AlertType,
        *,
        start: int,
        at: int,
        fixes: Sequence[Fix],
        evidence: dict[str, Any],
        rule: str | None = None,
        stay: dict[str, Any] | None = None,
        device_id: str | None = None,
        position: tuple[float, float, int] | None = None,
    ) -> None:
        """Raise (or repeat) an alert whose evidence names ``rule`` (default: the alert
        type), its thresholds, ``fixes`` and ``stay``, then the detector's ``evidence``;
        nothing while the thresholds switch the type off."""
        if not self.thresholds.enabled[alert_type]:
            return
        self.book.raise_alert(
            alert_type,
            self.spec,
            severity=self.thresholds.severities[alert_type],
            start=start,
            at=at,
            device_id=device_id,
            position=position or self.position,
            evidence=evidence_of(
                rule or str(alert_type), self.thresholds, fixes=fixes, stay=stay,
                details=evidence,
            ),
        )  # fmt: skip

    @property
    def position(self) -> tuple[float, float, int] | None:
        """The vehicle's last usable position: (lat, lon, province index), or None."""
        fix = self.last_valid
        return None if fix is None else position_of(fix)

    def resolve(self, alert_type: AlertType, at: int) -> None:
        self.book.resolve_cause(self.spec.vehicle_id, alert_type, at)


def position_of(fix: Fix) -> tuple[float, float, int]:
    return (fix.lat, fix.lon, fix.province)


def point(fix: Fix | Place) -> list[float]:
    return [round(fix.lon, 6), round(fix.lat, 6)]



def place_at(lat: float, lon: float, *, visits: int) -> Place:
    x, y, z = (float(v) for v in unit_vectors(lat, lon))
    return Place(x, y, z, lat, lon, visits)
