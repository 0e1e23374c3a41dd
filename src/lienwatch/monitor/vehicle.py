"""Per-vehicle state machines: every single-vehicle detector, updated once per fix, O(1).

A :class:`VehicleMonitor` reads its vehicle's fixes in time order (the engine reorders them)
and calls each detector. Detectors only keep the state they need (the last fix per device,
the current stay, a few learned places, a day's cell counts), so a fix costs a handful of
comparisons. Distances are squared chords of unit vectors compared with thresholds converted
once (:func:`~lienwatch.domain.geo.chord2_of_m`). What a detector concludes depends only on
the ordered fixes, never on when the engine happened to call it, so streaming equals batch.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from lienwatch.config import MonitorThresholds
from lienwatch.domain.geo import chord2_of_m, m_of_chord2, unit_vectors
from lienwatch.monitor.lifecycle import AlertBook
from lienwatch.monitor.model import AlertType, DeviceSpec, Fix, VehicleSpec, iso_utc
from lienwatch.monitor.zones import Zone

NEVER = math.inf
DAY_S = 86_400
HOUR_S = 3_600
CELL_DEG = 0.1  # activity-area grid
_CELL_HALF_DIAGONAL_M = 8_000.0  # half the diagonal of a 0.1° cell, rounded up
_MAX_PLACES = 8


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


def _at(fix: Fix) -> tuple[float, float, int]:
    return (fix.lat, fix.lon, fix.province)


def _point(fix: Fix | Place) -> list[float]:
    return [round(fix.lon, 6), round(fix.lat, 6)]


class Liveness:
    """``device_offline`` (silence longer than the device kind allows) and ``device_removed``
    inferred from a wired tracker falling silent right after a power-cut alarm. The only
    detector driven by time as well as fixes: :meth:`fire_due` runs at deadlines."""

    def __init__(self, out: Emitter, devices: Sequence[DeviceSpec]) -> None:
        t = out.thresholds
        self.out = out
        self.limit = {d.device_id: _offline_limit(d, t) for d in devices}
        self.silence = {d.device_id: _silence_limit(d, t) for d in devices}
        self.kind = {d.device_id: d.kind for d in devices}
        self.last: dict[str, int] = {}
        self.deadline: dict[str, float] = {}
        self.offline: dict[str, int] = {}  # device -> when it went offline
        self.removal_due: dict[str, tuple[int, float]] = {}  # device -> (alarm time, deadline)
        self.removed_by_silence: set[str] = set()
        self.next_deadline: float = NEVER

    def add_device(self, device: DeviceSpec) -> None:
        self.limit[device.device_id] = _offline_limit(device, self.out.thresholds)
        self.silence[device.device_id] = _silence_limit(device, self.out.thresholds)
        self.kind[device.device_id] = device.kind

    def on_fix(self, fix: Fix) -> None:
        device, t = fix.device_id, fix.time
        if device in self.offline:
            del self.offline[device]
            if not self.offline:
                self.out.resolve(AlertType.DEVICE_OFFLINE, t)
        self.removal_due.pop(device, None)  # it kept reporting: not removed
        if device in self.removed_by_silence:  # it reports again
            self.removed_by_silence.discard(device)
            self.out.resolve(AlertType.DEVICE_REMOVED, t)
        self.last[device] = t
        self.deadline[device] = t + self.limit[device]
        self._next()

    def power_cut(self, fix: Fix) -> None:
        """A power-cut alarm from a wired tracker: it must keep reporting on its battery."""
        if self.kind[fix.device_id] == "wired":
            self.removal_due[fix.device_id] = (fix.time, fix.time + self.silence[fix.device_id])
            self._next()

    def fire_due(self, until: float) -> None:
        """Raise every silence whose deadline is before ``until``, in deadline order."""
        due = [(d, 0, device) for device, d in self.deadline.items() if d < until]
        due += [(d, 1, device) for device, (_, d) in self.removal_due.items() if d < until]
        for deadline, kind, device in sorted(due):
            if kind == 0:
                self._went_offline(device, int(deadline))
            else:
                self._removed(device, int(deadline))
        self._next()

    def _went_offline(self, device: str, at: int) -> None:
        del self.deadline[device]
        self.offline[device] = at
        self.out.raise_(
            AlertType.DEVICE_OFFLINE,
            start=at,
            at=at,
            device_id=device,
            evidence={
                "offline": {d: iso_utc(self.last[d]) for d in sorted(self.offline)},
                "allowed_silence_h": round(self.limit[device] / HOUR_S, 2),
            },
        )

    def _removed(self, device: str, at: int) -> None:
        alarm_time, _ = self.removal_due.pop(device)
        self.removed_by_silence.add(device)
        self.out.raise_(
            AlertType.DEVICE_REMOVED,
            start=alarm_time,
            at=at,
            device_id=device,
            evidence={
                "power_cut_at": iso_utc(alarm_time),
                "silent_since": iso_utc(self.last[device]),
            },
        )

    def _next(self) -> None:
        deadlines = list(self.deadline.values()) + [d for _, d in self.removal_due.values()]
        self.next_deadline = min(deadlines, default=NEVER)

    def silent_for(self, device: str, t: int) -> float:
        """How much longer than its removal silence ``device`` has been quiet at ``t``."""
        last = self.last.get(device)
        return -NEVER if last is None else t - last - self.silence[device]


def _offline_limit(device: DeviceSpec, t: MonitorThresholds) -> float:
    kind_h = t.offline_wired_h if device.kind == "wired" else t.offline_wireless_h
    return max(kind_h * HOUR_S, t.offline_min_intervals * device.report_interval_s)


def _silence_limit(device: DeviceSpec, t: MonitorThresholds) -> float:
    return max(
        t.removal_silence_min_h * HOUR_S, t.removal_silence_intervals * device.report_interval_s
    )


class Alarms:
    """``power_cut``, ``gnss_antenna_cut`` and alarm-driven ``device_removed``."""

    _TYPES: ClassVar[dict[str, AlertType]] = {
        "power_cut": AlertType.POWER_CUT,
        "gnss_antenna_cut": AlertType.GNSS_ANTENNA_CUT,
        "removal": AlertType.DEVICE_REMOVED,
        "tamper": AlertType.DEVICE_REMOVED,
    }

    def __init__(self, out: Emitter, liveness: Liveness) -> None:
        self.out = out
        self.liveness = liveness

    def on_fix(self, fix: Fix) -> None:
        for name in fix.alarms.split(";"):
            alert_type = self._TYPES.get(name)
            if alert_type is None:
                continue
            position = _at(fix) if fix.valid else None
            self.out.raise_(
                alert_type,
                start=fix.time,
                at=fix.time,
                device_id=fix.device_id,
                position=position,
                evidence={"alarm": name, "alarm_at": iso_utc(fix.time)},
            )
            if alert_type is AlertType.POWER_CUT:
                self.liveness.power_cut(fix)


class Places:
    """Places the vehicle keeps returning to; ``known`` ones are home and work."""

    def __init__(self, limits: Limits, home: tuple[float, float] | None) -> None:
        self.limits = limits
        self.places: list[Place] = []
        if home is not None:
            self.places.append(_place(home[0], home[1], visits=limits.place_known_visits))

    def visit(self, anchor: Fix) -> None:
        for place in self.places:
            if chord2(place, anchor) <= self.limits.stay_r2:
                place.visits += 1
                return
        if len(self.places) >= _MAX_PLACES:
            self.places.remove(min(self.places, key=lambda p: p.visits))
        self.places.append(_place(anchor.lat, anchor.lon, visits=1))

    def known_near(self, anchor: Fix) -> bool:
        return any(
            p.visits >= self.limits.place_known_visits and chord2(p, anchor) <= self.limits.stay_r2
            for p in self.places
        )


def _place(lat: float, lon: float, *, visits: int) -> Place:
    x, y, z = (float(v) for v in unit_vectors(lat, lon))
    return Place(x, y, z, lat, lon, visits)


class Stays:
    """Distance-based stays (every fix within ``stay_radius_m`` of the first): ``long_stay``
    away from known places, place learning, and the long stays ``cluster`` compares."""

    def __init__(self, out: Emitter, places: Places) -> None:
        self.out = out
        self.limits = out.limits
        self.places = places
        self.anchor: Fix | None = None
        self.start = 0
        self.visited = False
        self.long_checked = False
        self.long_open = False
        self.record: StayRecord | None = None
        self.long_stays: list[StayRecord] = []  # stays of at least cluster_h, for `cluster`

    def on_fix(self, fix: Fix) -> None:
        anchor = self.anchor
        if anchor is None or chord2(fix, anchor) > self.limits.stay_r2:
            self._begin(fix)
            return
        lasted = fix.time - self.start
        if lasted >= self.limits.place_visit_s and not self.visited:
            self.visited = True
            self.places.visit(anchor)
        if lasted > self.limits.long_stay_s and not self.long_checked:
            self._long_stay(fix, anchor, lasted)
        if lasted >= self.limits.cluster_s:
            if self.record is None:
                spec = self.out.spec
                self.record = StayRecord(spec.vehicle_id, spec.owner, self.start, fix.time, anchor)
                self.long_stays.append(self.record)
            else:
                self.record.last = fix.time

    def _begin(self, fix: Fix) -> None:
        if self.long_open:
            self.out.resolve(AlertType.LONG_STAY, fix.time)
        if self.record is not None:
            self.record.ended = True
        self.anchor = fix
        self.start = fix.time
        self.visited = self.long_checked = self.long_open = False
        self.record = None

    def _long_stay(self, fix: Fix, anchor: Fix, lasted: int) -> None:
        self.long_checked = True
        if self.places.known_near(anchor):
            return
        self.long_open = True
        self.out.raise_(
            AlertType.LONG_STAY,
            start=self.start,
            at=fix.time,
            device_id=fix.device_id,
            position=_at(anchor),
            evidence={"hours": round(lasted / HOUR_S, 1), "at": _point(anchor)},
        )


class RiskZones:
    """``risk_zone_visit``: inside one zone for longer than the dwell; resolves on leaving.

    A zone visit at one of the vehicle's known places (home or work inside a market's
    polygon) is routine, not a risk, and raises nothing."""

    def __init__(self, out: Emitter, zones: Sequence[Zone], stays: Stays) -> None:
        self.out = out
        self.zones = zones
        self.stays = stays
        self.current = -1
        self.entered = 0
        self.alerted = False

    def on_fix(self, fix: Fix) -> None:
        zone = fix.zone
        if zone != self.current:
            if self.alerted:
                self.out.resolve(AlertType.RISK_ZONE_VISIT, fix.time)
            self.current, self.entered, self.alerted = zone, fix.time, False
        dwelt = fix.time - self.entered >= self.out.limits.zone_dwell_s
        if zone >= 0 and not self.alerted and dwelt:
            self.alerted = True
            anchor = self.stays.anchor
            if anchor is not None and self.stays.places.known_near(anchor):
                return
            info = self.zones[zone]
            self.out.raise_(
                AlertType.RISK_ZONE_VISIT,
                start=self.entered,
                at=fix.time,
                device_id=fix.device_id,
                position=_at(fix),
                evidence={
                    "zone_id": info.zone_id,
                    "category": info.category,
                    "name": info.name,
                    "minutes": round((fix.time - self.entered) / 60),
                },
            )


class Region:
    """``left_region``: outside the permitted region for longer than allowed — the vehicle's
    lender-defined area when it has one (``fix.in_area``), else its province."""

    def __init__(self, out: Emitter, region: int | None, codes: Sequence[str]) -> None:
        self.out = out
        self.area = out.spec.area
        self.region = region
        self.codes = codes
        self.out_since: int | None = None
        self.alerted = False

    def on_fix(self, fix: Fix) -> None:
        if self.area is None and self.region is None:
            self.region = fix.province
            return
        if fix.in_area if self.area is not None else fix.province == self.region:
            if self.alerted:
                self.out.resolve(AlertType.LEFT_REGION, fix.time)
            self.out_since, self.alerted = None, False
        elif self.out_since is None:
            self.out_since = fix.time
        elif not self.alerted and fix.time - self.out_since > self.out.limits.left_region_s:
            self.alerted = True
            self.out.raise_(
                AlertType.LEFT_REGION,
                start=self.out_since,
                at=fix.time,
                device_id=fix.device_id,
                position=_at(fix),
                evidence={
                    "permitted": self._permitted(),
                    "hours_outside": round((fix.time - self.out_since) / HOUR_S, 1),
                },
            )

    def _permitted(self) -> str | None:
        if self.area is not None:
            return self.area
        return self.codes[self.region] if self.region is not None and self.region >= 0 else None


class Nights:
    """The learned night parking place (the last fix of each local night window):
    ``night_relocation`` when it moves for several nights in a row, ``address_mismatch`` when
    it lies far from the declared home."""

    def __init__(self, out: Emitter, home: tuple[float, float] | None) -> None:
        self.out = out
        self.limits = out.limits
        self.home = _place(home[0], home[1], visits=0) if home else None
        self.pending: Fix | None = None
        self.pending_ends = 0
        self.learned: Fix | None = None
        self.confirmations = 0
        self.candidate: Fix | None = None
        self.streak = 0

    def on_fix(self, fix: Fix) -> None:
        if self.pending is not None and fix.local >= self.pending_ends:
            self._night(self.pending)
            self.pending = None
        if fix.local % DAY_S < self.limits.night_end_s:
            self.pending = fix
            self.pending_ends = fix.local - fix.local % DAY_S + self.limits.night_end_s

    def _night(self, spot: Fix) -> None:
        limits = self.limits
        learned = self.learned
        if learned is None or (
            self.confirmations < limits.night_move_nights
            and chord2(spot, learned) > limits.night_move_r2
        ):
            self.learned, self.confirmations = spot, 1
        elif chord2(spot, learned) <= limits.night_move_r2:
            self.confirmations += 1
            self.streak, self.candidate = 0, None
            if self.confirmations == limits.night_move_nights:
                self._check_address(spot)
        elif self.candidate is not None and chord2(spot, self.candidate) <= limits.night_move_r2:
            self.streak += 1
            if self.streak >= limits.night_move_nights:
                self._relocated(spot, learned, self.candidate)
        else:
            self.candidate, self.streak = spot, 1
            if limits.night_move_nights == 1:
                self._relocated(spot, learned, spot)

    def _relocated(self, spot: Fix, old: Fix, first: Fix) -> None:
        self.out.raise_(
            AlertType.NIGHT_RELOCATION,
            start=first.time,
            at=spot.time,
            device_id=spot.device_id,
            position=_at(spot),
            evidence={
                "from": _point(old),
                "to": _point(spot),
                "km": round(m_of_chord2(chord2(spot, old)) / 1000, 1),
                "nights": self.streak,
            },
        )
        self.learned, self.confirmations = spot, self.limits.night_move_nights
        self.candidate, self.streak = None, 0
        self._check_address(spot)

    def _check_address(self, spot: Fix) -> None:
        if self.home is None:
            return
        if chord2(spot, self.home) > self.limits.address_r2:
            self.out.raise_(
                AlertType.ADDRESS_MISMATCH,
                start=spot.time,
                at=spot.time,
                device_id=spot.device_id,
                position=_at(spot),
                evidence={
                    "night_place": _point(spot),
                    "declared_home": _point(self.home),
                    "km": round(m_of_chord2(chord2(spot, self.home)) / 1000, 1),
                },
            )
        else:
            self.out.resolve(AlertType.ADDRESS_MISMATCH, spot.time)


class ActivityArea:
    """``unusual_area``: far outside the 0.1° cells that hold ``activity_share`` of the fixes of
    the last ``activity_days`` local days (the area is re-learned weekly)."""

    _RELEARN_DAYS = 7

    def __init__(self, out: Emitter) -> None:
        self.out = out
        self.limits = out.limits
        self.day: int | None = None
        self.today: dict[int, int] = {}
        self.days: deque[tuple[int, dict[int, int]]] = deque()
        self.totals: dict[int, int] = {}
        self.area: frozenset[int] = frozenset()
        self.centres = np.zeros((0, 3))
        self.far: dict[int, bool] = {}
        self.learned_on: int | None = None
        self.out_since: int | None = None
        self.alerted = False

    def on_fix(self, fix: Fix) -> None:
        day = fix.local // DAY_S
        if day != self.day:
            self._roll(day)
        cell = fix.cell
        self.today[cell] = self.today.get(cell, 0) + 1
        if not self.area or cell in self.area:
            self._inside(fix)
            return
        far = self.far.get(cell)
        if far is None:
            far = self.far[cell] = self._is_far(fix)
        if not far:
            self._inside(fix)
        elif self.out_since is None:
            self.out_since = fix.time
        elif not self.alerted and fix.time - self.out_since > self.limits.unusual_s:
            self.alerted = True
            self.out.raise_(
                AlertType.UNUSUAL_AREA,
                start=self.out_since,
                at=fix.time,
                device_id=fix.device_id,
                position=_at(fix),
                evidence={
                    "hours_outside": round((fix.time - self.out_since) / HOUR_S, 1),
                    "area_cells": len(self.area),
                },
            )

    def _inside(self, fix: Fix) -> None:
        if self.alerted:
            self.out.resolve(AlertType.UNUSUAL_AREA, fix.time)
        self.out_since, self.alerted = None, False

    def _is_far(self, fix: Fix) -> bool:
        iy, ix = divmod(fix.cell, 100_000)
        cx, cy, cz = unit_vectors((iy + 0.5) * CELL_DEG, (ix + 0.5) * CELL_DEG - 180.0)
        d2 = (self.centres[:, 0] - cx) ** 2 + (self.centres[:, 1] - cy) ** 2
        d2 += (self.centres[:, 2] - cz) ** 2
        return bool(d2.min() > self.limits.unusual_far_r2)

    def _roll(self, day: int) -> None:
        if self.day is not None and self.today:
            self.days.append((self.day, self.today))
            for cell, count in self.today.items():
                self.totals[cell] = self.totals.get(cell, 0) + count
        self.day, self.today = day, {}
        while self.days and self.days[0][0] <= day - self.limits.activity_days:
            for cell, count in self.days.popleft()[1].items():
                left = self.totals[cell] - count
                if left:
                    self.totals[cell] = left
                else:
                    del self.totals[cell]
        due = self.learned_on is None or day - self.learned_on >= self._RELEARN_DAYS
        if due and len(self.days) >= self.limits.activity_min_days:
            self._learn(day)

    def _learn(self, day: int) -> None:
        ranked = sorted(self.totals.items(), key=lambda item: (-item[1], item[0]))
        wanted = self.limits.activity_share * sum(self.totals.values())
        area, held = [], 0
        for cell, count in ranked:
            area.append(cell)
            held += count
            if held >= wanted:
                break
        iy, ix = np.divmod(np.array(area, dtype=np.int64), 100_000)
        self.centres = np.column_stack(
            unit_vectors((iy + 0.5) * CELL_DEG, (ix + 0.5) * CELL_DEG - 180.0)
        )
        self.area, self.far, self.learned_on = frozenset(area), {}, day


def activity_cells(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The activity-area grid cell of each point (row × 100,000 + column of 0.1° cells)."""
    iy = np.floor(np.nan_to_num(lat, nan=0.0) / CELL_DEG).astype(np.int64)
    ix = np.floor((np.nan_to_num(lon, nan=0.0) + 180.0) / CELL_DEG).astype(np.int64)
    return iy * 100_000 + ix


class Jumps:
    """``position_jump``: two consecutive valid fixes of one tracker imply an impossible speed."""

    def __init__(self, out: Emitter) -> None:
        self.out = out
        self.last: dict[str, Fix] = {}

    def on_fix(self, fix: Fix) -> None:
        previous = self.last.get(fix.device_id)
        self.last[fix.device_id] = fix
        if previous is None:
            return
        c2 = chord2(fix, previous)
        if c2 <= self.out.limits.jump_min_r2:
            return
        metres = m_of_chord2(c2)
        seconds = max(fix.time - previous.time, 1)
        if metres / seconds > self.out.limits.jump_mps:
            self.out.raise_(
                AlertType.POSITION_JUMP,
                start=fix.time,
                at=fix.time,
                device_id=fix.device_id,
                position=_at(fix),
                evidence={
                    "from": _point(previous),
                    "to": _point(fix),
                    "km": round(metres / 1000, 1),
                    "seconds": seconds,
                    "kmh": round(metres / seconds * 3.6),
                },
            )


class TrackerPair:
    """``tracker_mismatch`` (子母分离): a vehicle's trackers far apart for a while, or one far
    from where the other fell silent. Resolves when the two report close together again.

    Two fixes within ``pair_window_s`` of each other form a pair; a pair is apart when the
    distance exceeds ``mismatch_m`` plus what a car at ``_LAG_MPS`` covers in their time
    difference (so a moving car's trackers sampled a minute apart are not "apart"). Apart pairs
    must follow each other without a gap longer than ``mismatch_min`` to count as one episode.
    """

    _LAG_MPS = 35.0  # about 126 km/h

    def __init__(self, out: Emitter, liveness: Liveness) -> None:
        self.out = out
        self.liveness = liveness
        self.last: dict[str, Fix] = {}
        self.apart_since: int | None = None
        self.apart_last = 0
        self.alerted = False

    def on_fix(self, fix: Fix) -> None:
        limits = self.out.limits
        for device, other in self.last.items():
            if device == fix.device_id:
                continue
            lag = fix.time - other.time
            if lag <= limits.pair_window_s:
                allowed = chord2_of_m(limits.mismatch_m + self._LAG_MPS * lag)
                self._paired(fix, other, chord2(fix, other) > allowed)
            elif self.liveness.silent_for(device, fix.time) > 0 and chord2(
                fix, other
            ) > chord2_of_m(limits.mismatch_m):
                self._mismatch(fix, other, fix.time, silent=True)
        self.last[fix.device_id] = fix

    def _paired(self, fix: Fix, other: Fix, apart: bool) -> None:
        if not apart:
            if self.alerted:
                self.out.resolve(AlertType.TRACKER_MISMATCH, fix.time)
            self.apart_since, self.alerted = None, False
            return
        if self.apart_since is None or fix.time - self.apart_last > self.out.limits.mismatch_s:
            self.apart_since = fix.time
        self.apart_last = fix.time
        if fix.time - self.apart_since >= self.out.limits.mismatch_s:
            self._mismatch(fix, other, self.apart_since, silent=False)

    def _mismatch(self, fix: Fix, other: Fix, start: int, *, silent: bool) -> None:
        if self.alerted:
            return
        self.alerted = True
        self.out.raise_(
            AlertType.TRACKER_MISMATCH,
            start=start,
            at=fix.time,
            device_id=fix.device_id,
            position=_at(fix),
            evidence={
                "other_device": other.device_id,
                "other_last_fix": iso_utc(other.time),
                "other_position": _point(other),
                "km": round(m_of_chord2(chord2(fix, other)) / 1000, 2),
                "other_silent": silent,
            },
        )


class VehicleMonitor:
    """All single-vehicle detectors of one vehicle, fed its fixes in time order."""

    def __init__(
        self,
        spec: VehicleSpec,
        devices: Sequence[DeviceSpec],
        thresholds: MonitorThresholds,
        book: AlertBook,
        *,
        region: int | None,
        zones: Sequence[Zone],
        province_codes: Sequence[str],
    ) -> None:
        self.out = out = Emitter(spec, thresholds, book)
        self.liveness = Liveness(out, devices)
        self.alarms = Alarms(out, self.liveness)
        self.stays = Stays(out, Places(out.limits, spec.home))
        self.zones = RiskZones(out, zones, self.stays)
        self.region = Region(out, region, province_codes)
        self.nights = Nights(out, spec.home)
        self.area = ActivityArea(out)
        self.jumps = Jumps(out)
        self.pair = TrackerPair(out, self.liveness) if len(devices) > 1 else None
        self.last_released: dict[str, int] = {}
        self.invalid = 0

    def add_device(self, device: DeviceSpec) -> None:
        """A tracker seen for the first time (replay without a devices file)."""
        self.liveness.add_device(device)
        if self.pair is None and len(self.liveness.limit) > 1:
            self.pair = TrackerPair(self.out, self.liveness)

    @property
    def next_deadline(self) -> float:
        return self.liveness.next_deadline

    def fire_due(self, until: float) -> None:
        """Raise the silences that began before ``until`` (the engine's clock)."""
        if self.liveness.next_deadline < until:
            self.liveness.fire_due(until)

    def on_fix(self, fix: Fix) -> None:
        """Update every detector with the vehicle's next fix in time order."""
        if self.liveness.next_deadline < fix.time:
            self.liveness.fire_due(fix.time)
        self.liveness.on_fix(fix)
        if fix.alarms:
            self.alarms.on_fix(fix)
        if not fix.valid:
            self.invalid += 1  # counted, but a fix without usable coordinates moves nothing
            return
        self.out.position = (fix.lat, fix.lon, fix.province)
        self.jumps.on_fix(fix)
        self.stays.on_fix(fix)
        if fix.zone >= 0 or self.zones.current >= 0:
            self.zones.on_fix(fix)
        self.region.on_fix(fix)
        self.nights.on_fix(fix)
        self.area.on_fix(fix)
        if self.pair is not None:
            self.pair.on_fix(fix)
