"""The fixes one call of the streaming engine releases, and the detectors run over them at once.

:meth:`Monitor.ingest <lienwatch.monitor.engine.Monitor.ingest>`, ``advance`` and ``flush``
release each vehicle's held fixes in (time, device) order once the reorder window has
passed. The detectors that read one another's state run fix by fix as the fixes are
released: liveness and alarms (:meth:`VehicleMonitor.report`), stays and risk zones
(:meth:`VehicleMonitor.stay`), the tracker pair (which reads liveness). Four read no other
detector's state and none reads theirs — jumps, the permitted region, nights and the activity
area — so each runs once per call over every valid fix released in it, from its state
before the call: array comparisons find the fixes where the detector can act, as the batch
path's passes do (:mod:`lienwatch.monitor.columnar`), and the detector's own code runs at
those only:

- jumps: a fix farther than ``jump_min_km`` from its tracker's previous valid fix (the last
  one before the call for its first) at a speed above ``jump_kmh``;
- region: a fix outside the permitted region or just after one, the vehicle's first when it
  was outside before the call or takes its province from it;
- nights: the first fix after a night's last one (the night before the call included); a
  vehicle whose wall clock changed its offset to UTC (a time-zone transition) is fed fix by
  fix instead;
- activity area: each local day's roll, its cells counted at once; a fix far outside the
  area or just after one, the vehicle's first when it was outside before the call.

The alerts the call opened are then put back in the order the fix-by-fix run opens them
(:class:`~lienwatch.monitor.columnar.OpenOrder`: by released fix, then by detector in
:meth:`VehicleMonitor.on_fix`'s order), so they are the fix-by-fix run's, field by field and
in order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import get_type_hints

import numpy as np

from lienwatch.domain.geo import EARTH_RADIUS_M
from lienwatch.monitor.columnar import OpenOrder
from lienwatch.monitor.detectors.base import DAY_S
from lienwatch.monitor.lifecycle import AlertBook
from lienwatch.monitor.model import Fix
from lienwatch.monitor.vehicle import VehicleMonitor

# ranks of the alerts opened at one released fix, in VehicleMonitor.on_fix's order
_BETWEEN, _REPORT, _JUMPS, _STAY, _REGION, _NIGHTS, _AREA, _PAIR = -1, 0, 3, 5, 6, 7, 8, 9
_NUMBERS = range(2**62)  # OpenOrder's map from a fix to its order key: its release number
#: A :class:`Fix` as one record (read from the tuples in one pass); strings as objects
_FIELDS = np.dtype([(name, {int: np.int64, float: np.float64, bool: np.bool_}.get(kind, object))
                    for name, kind in get_type_hints(Fix).items()])  # fmt: skip


class Release:
    """The fixes released by one call of the engine, processed as they come; :meth:`finish`
    ends the call (see the module docstring)."""

    def __init__(self, book: AlertBook) -> None:
        self.order = OpenOrder(book)
        self.order.global_of = _NUMBERS  # type: ignore[assignment]
        self._alerts = book.alerts
        self.released = 0  # fixes processed so far; the next one's number
        self.invalid = 0  # of them without usable coordinates
        self._valid: list[Fix] = []  # the valid ones, with their numbers and monitors
        self._numbers: list[int] = []
        self._monitors: list[VehicleMonitor] = []

    def process(self, monitor: VehicleMonitor, fix: Fix) -> None:
        """A vehicle's next fix in time order: the detectors that read one another's state."""
        number, order, alerts = self.released, self.order, self._alerts
        self.released += 1
        valid = monitor.report(fix)
        if len(alerts) != order.seen:
            order.mark(number, _REPORT)
        if not valid:
            self.invalid += 1
            return
        self._valid.append(fix)
        self._numbers.append(number)
        self._monitors.append(monitor)
        monitor.stay(fix)
        if len(alerts) != order.seen:
            order.mark(number, _STAY)
        if monitor.pair is not None:
            monitor.pair.on_fix(fix)
            if len(alerts) != order.seen:
                order.mark(number, _PAIR)

    def between(self) -> None:
        """Alerts opened outside :meth:`process` (an alarm on arrival, a deadline fired by
        the clock) come after the fixes released so far and before the next one's."""
        if len(self._alerts) != self.order.seen:
            self.order.mark(self.released, _BETWEEN)

    def finish(self) -> None:
        """Run the other detectors over the released fixes and put the alerts in order."""
        if self._valid:
            fixes = _Fixes(self._valid, self._numbers, self._monitors, self.order)
            fixes.jumps()
            fixes.regions()
            fixes.nights()
            fixes.areas()
        self.order.restore()


class _Fixes:
    """The valid fixes of a release as arrays, grouped by vehicle (each in time order)."""

    def __init__(self, fixes: list[Fix], numbers: list[int], monitors: list[VehicleMonitor],
                 order: OpenOrder) -> None:  # fmt: skip
        self.fixes, self.numbers, self.order = fixes, numbers, order
        # one pass over the tuples (they lie scattered in memory: a pass per field costs more)
        self.rows = rows = np.fromiter(fixes, _FIELDS, len(fixes))
        self.time, self.x, self.y, self.z, self.local = (
            rows[name] for name in ("time", "x", "y", "z", "local")
        )
        codes: dict[int, int] = {}
        vehicle = np.array([codes.setdefault(id(m), len(codes)) for m in monitors])
        self.by_vehicle = g = np.argsort(vehicle, kind="stable")
        self.first = np.r_[True, vehicle[g][1:] != vehicle[g][:-1]]
        self.last = np.r_[self.first[1:], True]
        heads = g[self.first].tolist()
        #: each vehicle's monitor, in the order of the groups
        self.monitors = [monitors[f] for f in heads]
        self.group = np.cumsum(self.first) - 1  # each grouped fix's vehicle

    def per_vehicle(self, values: list, dtype: type = np.float64) -> np.ndarray:
        """A value per vehicle (in group order) spread over the grouped fixes."""
        return np.asarray(values, dtype=dtype)[self.group]

    def run(self, grouped: np.ndarray, act: Callable[[VehicleMonitor, Fix, int], None],
            rank: int) -> None:  # fmt: skip
        """Call ``act(monitor, fix, k)`` at the grouped positions ``grouped`` (ascending:
        each vehicle's in time order), each marked with ``rank``."""
        g, fixes, numbers, mark = self.by_vehicle, self.fixes, self.numbers, self.order.mark
        for k in grouped.tolist():
            f = int(g[k])
            act(self.monitors[self.group[k]], fixes[f], k)
            mark(numbers[f], rank)

    # -- jumps (rank 3) ----------------------------------------------------------------------

    def jumps(self) -> None:
        """The fixes that may be a jump (checked again, exactly, by the detector)."""
        fixes, monitors = self.fixes, self.monitors
        codes: dict[str, int] = {}
        ids = self.rows["device_id"].tolist()
        device = np.array([codes.setdefault(d, len(codes)) for d in ids])
        by_device = np.argsort(device, kind="stable")  # each tracker's fixes in time order
        first = np.r_[True, device[by_device][1:] != device[by_device][:-1]]
        previous = np.r_[-1, by_device[:-1]]
        group_of = np.empty(len(fixes), dtype=np.int64)
        group_of[self.by_vehicle] = self.group
        owner = group_of[by_device]
        seeds = [monitors[owner[k]].jumps.last.get(fixes[by_device[k]].device_id)
                 for k in np.flatnonzero(first).tolist()]  # fmt: skip
        p = np.maximum(previous, 0)
        px, py, pz, pt = self.x[p], self.y[p], self.z[p], self.time[p].astype(np.float64)
        for column, name in ((px, "x"), (py, "y"), (pz, "z"), (pt, "time")):
            column[first] = [getattr(s, name) if s else np.nan for s in seeds]
        dx = self.x[by_device] - px
        dy = self.y[by_device] - py
        dz = self.z[by_device] - pz
        c2 = dx * dx + dy * dy + dz * dz  # Jumps.on_fix's arithmetic, so the same comparison
        limits = [m.out.limits for m in monitors]
        min_r2 = np.array([lim.jump_min_r2 for lim in limits])[owner]
        mps = np.array([lim.jump_mps for lim in limits])[owner]
        with np.errstate(invalid="ignore"):
            far = c2 > min_r2  # NaN (no fix before) is not
            metres = 2.0 * EARTH_RADIUS_M * np.arcsin(np.minimum(np.sqrt(c2) / 2.0, 1.0))
            seconds = np.maximum(self.time[by_device] - pt, 1)
            # a margin for NumPy's arcsin against math.asin: the detector decides exactly
            maybe = np.flatnonzero(far & (metres / seconds > mps * (1 - 1e-9)))
        seed_of = np.cumsum(first) - 1
        numbers, mark = self.numbers, self.order.mark
        for k in maybe[np.argsort(by_device[maybe])].tolist():  # in release order
            f = int(by_device[k])
            fix, detector = fixes[f], monitors[owner[k]].jumps
            detector.last[fix.device_id] = seeds[seed_of[k]] if first[k] else fixes[previous[k]]
            detector.on_fix(fix)
            mark(numbers[f], _JUMPS)
        for k in np.flatnonzero(np.r_[first[1:], True]).tolist():
            fix = fixes[by_device[k]]
            monitors[owner[k]].jumps.last[fix.device_id] = fix

    # -- region (rank 6) ---------------------------------------------------------------------

    def regions(self) -> None:
        """A fix outside the permitted region or just after one; the first of a vehicle that
        was outside before, or takes its province from its first valid fix."""
        g, first = self.by_vehicle, self.first
        detectors = [m.region for m in self.monitors]
        province, in_area = self.rows["province"][g], self.rows["in_area"][g]
        has_area = self.per_vehicle([d.area is not None for d in detectors], bool)
        learns = self.per_vehicle([d.area is None and d.region is None for d in detectors],
                                  bool)  # fmt: skip
        booked = self.per_vehicle([-2 if d.region is None else d.region for d in detectors],
                                  np.int64)  # fmt: skip
        was_out = self.per_vehicle([d.first_out is not None for d in detectors], bool)
        first_province = province[np.maximum.accumulate(np.where(first, np.arange(len(g)), 0))]
        permitted = np.where(learns, first_province, booked)
        outside = np.where(has_area, ~in_area, province != permitted) & ~(first & learns)
        after = np.r_[False, outside[:-1]] & ~first
        events = np.flatnonzero(outside | after | (first & (learns | was_out)))
        self.run(events, lambda m, fix, _: m.region.on_fix(fix), _REGION)

    # -- nights (rank 7) ---------------------------------------------------------------------

    def nights(self) -> None:
        """The first fix after a night's last one: the night is judged there."""
        g, first, last = self.by_vehicle, self.first, self.last
        detectors = [m.nights for m in self.monitors]
        local = self.local[g]
        offset = local - self.time[g]
        night_end = self.per_vehicle([d.limits.night_end_s for d in detectors])
        of_day = local % DAY_S
        night = of_day < night_end
        ends = local - of_day + night_end
        # a vehicle whose offset to UTC changed (its wall clock may go back): fix by fix
        seed_offset = [d.pending.local - d.pending.time if d.pending else np.nan
                       for d in detectors]  # fmt: skip
        changed = (offset != np.r_[0, offset[:-1]]) & ~first
        changed |= first & (offset != self.per_vehicle(seed_offset)) & self.per_vehicle(
            [d.pending is not None for d in detectors], bool)
        moved = np.zeros(len(detectors), dtype=bool)
        moved[self.group[changed]] = True
        fix_by_fix = moved[self.group]
        seed_ends = self.per_vehicle([d.pending_ends if d.pending else np.inf
                                      for d in detectors])  # fmt: skip
        previous_ends = np.where(first, seed_ends, np.r_[0, ends[:-1]])
        previous_night = np.where(first, np.isfinite(seed_ends), np.r_[False, night[:-1]])
        judged = np.flatnonzero(previous_night & (local >= previous_ends) & ~fix_by_fix)
        fixes = self.fixes

        def judge(monitor: VehicleMonitor, _: Fix, k: int) -> None:
            detector = monitor.nights
            detector._night(detector.pending if first[k] else fixes[g[k - 1]])

        self.run(judged, judge, _NIGHTS)
        for k in np.flatnonzero(last & ~fix_by_fix).tolist():
            detector = self.monitors[self.group[k]].nights
            if night[k]:
                detector.pending, detector.pending_ends = fixes[g[k]], int(ends[k])
            else:
                detector.pending = None
        self.run(np.flatnonzero(fix_by_fix), lambda m, fix, _: m.nights.on_fix(fix), _NIGHTS)

    # -- activity area (rank 8) --------------------------------------------------------------

    def areas(self) -> None:
        """Each vehicle's local days in turn: the day's roll, its cells counted, and the
        fixes far outside the area (or just after one, or the first after the call began
        outside) judged."""
        g, fixes = self.by_vehicle, self.fixes
        day = self.local[g] // DAY_S
        cells = self.rows["cell"][g].tolist()
        starts = np.flatnonzero(self.first | np.r_[True, day[1:] != day[:-1]]).tolist()
        ends = [*starts[1:], len(g)]
        order, numbers, alerts = self.order, self.numbers, self.order.book.alerts
        for start, end in zip(starts, ends, strict=True):
            detector = self.monitors[self.group[start]].area
            today = int(day[start])
            if today != detector.day:
                detector._roll(today)
            counted = detector.today
            for cell, count in Counter(cells[start:end]).items():
                counted[cell] = counted.get(cell, 0) + count
            area, far = detector.area, detector.far
            out = detector.first_out is not None  # the fix before may have left the area
            if not out and (not area or area.issuperset(cells[start:end])):
                continue  # a day in the area: nothing to judge
            for k in range(start, end):
                cell = cells[k]
                known = False
                if area and cell not in area:
                    known = far.get(cell)
                    if known is None:
                        known = far[cell] = detector._is_far(fixes[g[k]])
                if known or out:
                    f = int(g[k])
                    detector.judge(fixes[f])
                    if len(alerts) != order.seen:
                        order.mark(numbers[f], _AREA)
                out = known
