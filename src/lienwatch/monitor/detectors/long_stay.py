"""``long_stay``: distance-based stays away from known places; the places the vehicle keeps
returning to, and the long stays ``cluster`` compares."""

from __future__ import annotations

from lienwatch.monitor.detectors.base import (
    HOUR_S,
    Emitter,
    Limits,
    Place,
    StayRecord,
    chord2,
    place_at,
    point,
    position_of,
)
from lienwatch.monitor.model import AlertType, Fix, iso_utc

_MAX_PLACES = 8


class Places:
    """Places the vehicle keeps returning to; ``known`` ones are home and work."""

    def __init__(self, limits: Limits, home: tuple[float, float] | None) -> None:
        self.limits = limits
        self.places: list[Place] = []
        if home is not None:
            self.places.append(place_at(home[0], home[1], visits=limits.place_known_visits))

    def visit(self, anchor: Fix) -> None:
        for place in self.places:
            if chord2(place, anchor) <= self.limits.stay_r2:
                place.visits += 1
                return
        if len(self.places) >= _MAX_PLACES:
            self.places.remove(min(self.places, key=lambda p: p.visits))
        self.places.append(place_at(anchor.lat, anchor.lon, visits=1))

    def known_near(self, anchor: Fix) -> bool:
        return any(
            p.visits >= self.limits.place_known_visits and chord2(p, anchor) <= self.limits.stay_r2
            for p in self.places
        )


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
        if anchor is None:
            self._begin(fix)
            return
        dx, dy, dz = fix.x - anchor.x, fix.y - anchor.y, fix.z - anchor.z
        if dx * dx + dy * dy + dz * dz > self.limits.stay_r2:  # chord2, inlined: every fix
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
            position=position_of(anchor),
            fixes=[anchor, fix],
            stay={"from": iso_utc(self.start), "to": iso_utc(fix.time), "at": point(anchor),
                  "hours": round(lasted / HOUR_S, 1)},
            evidence={"hours": round(lasted / HOUR_S, 1), "at": point(anchor)},
        )
