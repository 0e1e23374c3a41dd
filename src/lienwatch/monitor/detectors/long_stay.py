"""``long_stay``: distance-based stays away from known places; the places the vehicle keeps
returning to, and the long stays ``cluster`` compares."""

from __future__ import annotations

from typing import Any

from lienwatch.monitor.detectors.base import (
    HOUR_S,
    NEVER,
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


def stood_still(step2: Any, from_origin2: Any, stay_r2: float) -> Any:
    """Whether a stay's first fix continues the long-stay clock rather than restarting it:
    within ``stay_radius_m`` of the fix before it (``step2``, a squared chord) and within
    twice that of where the clock started (``from_origin2``). Python floats or NumPy arrays:
    the per-fix detector and the columnar replay (:mod:`lienwatch.monitor.columnar`) share it."""
    return (step2 <= stay_r2) & (from_origin2 <= 4 * stay_r2)  # twice the radius, squared


def long_stay_due(since: Any, long_stay_s: Any) -> Any:
    """When a long-stay clock started at ``since`` falls due (a fix or the clock later than
    this fires it). Python numbers or NumPy arrays, as :func:`stood_still`."""
    return since + long_stay_s


class Places:
    """Places the vehicle keeps returning to; ``known`` ones are home and work."""

    __slots__ = ("limits", "places")

    def __init__(self, limits: Limits, home: tuple[float, float] | None) -> None:
        self.limits = limits
        self.places: list[Place] = []
        if home is not None:
            self.places.append(place_at(home[0], home[1], visits=limits.place_known_visits))

    def visit(self, anchor: Fix) -> None:
        self.visit_at(anchor.x, anchor.y, anchor.z, anchor.lat, anchor.lon)

    def visit_at(self, x: float, y: float, z: float, lat: float, lon: float) -> None:
        """A stay anchored at this unit vector and position passed ``place_visit_h``."""
        r2 = self.limits.stay_r2
        for place in self.places:
            dx, dy, dz = place.x - x, place.y - y, place.z - z  # chord2, inlined
            if dx * dx + dy * dy + dz * dz <= r2:
                place.visits += 1
                return
        if len(self.places) >= _MAX_PLACES:
            self.places.remove(min(self.places, key=lambda p: p.visits))
        self.places.append(place_at(lat, lon, visits=1))

    def known_near(self, anchor: Fix) -> bool:
        return any(
            p.visits >= self.limits.place_known_visits and chord2(p, anchor) <= self.limits.stay_r2
            for p in self.places
        )


class Stays:
    """Distance-based stays (every fix within ``stay_radius_m`` of the first): ``long_stay``
    away from known places, place learning, and the long stays ``cluster`` compares.

    The long-stay clock runs from when the car stopped travelling (``since``): a stay that
    begins with a fix within ``stay_radius_m`` of the fix before it, and within twice that of
    where the clock started, continues the clock (the stay's first fix was off-centre, say
    the last fix on the approach, and the spot's wander left its radius: the car never moved).
    ``long_stay`` is raised when the clock passes ``long_stay_h`` (``due``, a deadline the
    vehicle fires from the clock as well as from fixes): a parked tracker that stays silent
    past it does not hide the stay, only a fix elsewhere ends it."""

    __slots__ = (
        "anchor", "cluster_s", "due", "last", "limits", "long_open", "long_stays", "origin", "out",
        "place_visit_s", "places", "record", "since", "start", "stay_r2", "visited"
    )

    def __init__(self, out: Emitter, places: Places) -> None:
        self.out = out
        self.places = places
        self.anchor: Fix | None = None
        self.last: Fix | None = None  # the stay's latest fix
        self.origin: Fix | None = None  # the anchor when the long-stay clock started
        self.start = 0
        self.since = 0  # the long-stay clock's start
        self.due: float = NEVER  # when the stay turns long unless a fix ends it first
        self.visited = False
        self.long_open = False
        self.record: StayRecord | None = None
        self.long_stays: list[StayRecord] = []  # stays of at least cluster_h, for `cluster`
        out.keep_tuned(self)

    def tune(self, limits: Limits) -> None:
        self.limits = self.places.limits = limits
        self.stay_r2 = limits.stay_r2
        self.place_visit_s = limits.place_visit_s
        self.cluster_s = limits.cluster_s

    def on_fix(self, fix: Fix) -> None:
        anchor = self.anchor
        if anchor is None:
            self._begin(fix)
            return
        dx, dy, dz = fix.x - anchor.x, fix.y - anchor.y, fix.z - anchor.z
        if dx * dx + dy * dy + dz * dz > self.stay_r2:  # chord2, inlined: every fix
            self._begin(fix)
            return
        self.last = fix
        lasted = fix.time - self.start
        if lasted >= self.place_visit_s and not self.visited:
            self.visited = True
            self.places.visit(anchor)
        if lasted >= self.cluster_s:
            if self.record is None:
                spec = self.out.spec
                self.record = StayRecord(spec.vehicle_id, spec.owner, self.start, fix.time, anchor)
                self.long_stays.append(self.record)
            else:
                self.record.last = fix.time

    def fire_due(self) -> None:
        """The clock passed ``due``: the stay is long unless it is at a known place."""
        anchor, last, origin = self.anchor, self.last, self.origin
        assert anchor is not None and last is not None and origin is not None
        at, self.due = int(self.since + self.limits.long_stay_s), NEVER
        if self.places.known_near(anchor):
            return
        self.long_open = True
        hours = round((at - self.since) / HOUR_S, 1)
        self.out.raise_(
            AlertType.LONG_STAY,
            start=self.since,
            at=at,
            device_id=last.device_id,
            position=position_of(origin),
            fixes=[origin, last] if last is not origin else [origin],
            stay={"from": iso_utc(self.since), "to": iso_utc(at), "at": point(origin),
                  "hours": hours},
            evidence={"hours": hours, "at": point(origin),
                      "last_fix": iso_utc(last.time)},
        )

    def _begin(self, fix: Fix) -> None:
        last, origin = self.last, self.origin
        restarts = last is None or origin is None
        if not restarts:
            dx, dy, dz = fix.x - last.x, fix.y - last.y, fix.z - last.z
            step2 = dx * dx + dy * dy + dz * dz  # chord2, inlined: every fix of a drive
            # stood_still's first test first: a car driving on needs no chord to the origin
            restarts = step2 > self.stay_r2 or not stood_still(
                step2, chord2(fix, origin), self.stay_r2
            )
        if restarts:
            if self.long_open:
                self.out.resolve(AlertType.LONG_STAY, fix.time)
            self.origin, self.since, self.long_open = fix, fix.time, False
            self.due = long_stay_due(fix.time, self.limits.long_stay_s)
        if self.record is not None:
            self.record.ended = True
        self.anchor = self.last = fix
        self.start = fix.time
        self.visited = False
        self.record = None
