"""The fixes one call of the streaming engine releases, with ``jumps`` run over them at once.

:meth:`Monitor.ingest <lienwatch.monitor.engine.Monitor.ingest>`, ``advance`` and ``flush``
release each vehicle's held fixes in (time, device) order once the reorder window has
passed. The detectors that read one another's state (liveness and alarms, stays and risk
zones, the tracker pair reading liveness) run fix by fix as the fixes are released
(:meth:`VehicleMonitor.report` and :meth:`VehicleMonitor.move`). :class:`Jumps` reads no
other detector's state and none reads its, so it runs once per call over every valid fix
released in it, from its state before the call (each tracker's last valid fix): array
comparisons find the fixes that may be a jump, as the batch path's jumps pass does
(:func:`lienwatch.monitor.columnar.jumps`), and the detector's own ``on_fix`` runs at those
only. The alerts the call opened are then put back in the order the fix-by-fix run opens
them (:class:`~lienwatch.monitor.columnar.OpenOrder`: by released fix, then by detector in
:meth:`VehicleMonitor.on_fix`'s order), so the alerts are the fix-by-fix run's, field by
field and in order.
"""

from __future__ import annotations

from operator import attrgetter

import numpy as np

from lienwatch.domain.geo import EARTH_RADIUS_M
from lienwatch.monitor.columnar import OpenOrder
from lienwatch.monitor.lifecycle import AlertBook
from lienwatch.monitor.model import Fix
from lienwatch.monitor.vehicle import VehicleMonitor

# ranks of the alerts opened at one released fix, in VehicleMonitor.on_fix's order
_BETWEEN, _REPORT, _JUMPS, _MOVE = -1, 0, 3, 4
_NUMBERS = range(2**62)  # OpenOrder's map from a fix to its order key: its release number


class Release:
    """The fixes released by one call of the engine, processed as they come; :meth:`finish`
    ends the call (see the module docstring)."""

    def __init__(self, book: AlertBook) -> None:
        self.order = OpenOrder(book)
        self.order.global_of = _NUMBERS  # type: ignore[assignment]
        self._alerts = book.alerts
        self.released = 0  # fixes processed so far; the next one's number
        self._moved: list[Fix] = []  # the valid ones, with their numbers and monitors
        self._numbers: list[int] = []
        self._monitors: list[VehicleMonitor] = []

    def process(self, monitor: VehicleMonitor, fix: Fix) -> None:
        """A vehicle's next fix in time order: every detector but ``jumps`` now."""
        number, order = self.released, self.order
        self.released += 1
        valid = monitor.report(fix)
        if len(self._alerts) != order.seen:
            order.mark(number, _REPORT)
        if not valid:
            return
        self._moved.append(fix)
        self._numbers.append(number)
        self._monitors.append(monitor)
        monitor.move(fix)
        if len(self._alerts) != order.seen:
            order.mark(number, _MOVE)

    def between(self) -> None:
        """Alerts opened outside :meth:`process` (an alarm on arrival, a deadline fired by
        the clock) come after the fixes released so far and before the next one's."""
        if len(self._alerts) != self.order.seen:
            self.order.mark(self.released, _BETWEEN)

    def finish(self) -> None:
        """Run ``jumps`` over the released fixes and put the alerts in order."""
        if self._moved:
            _jumps(self._moved, self._numbers, self._monitors, self.order)
        self.order.restore()


def _jumps(fixes: list[Fix], numbers: list[int], monitors: list[VehicleMonitor],
           order: OpenOrder) -> None:  # fmt: skip
    """:class:`Jumps` over valid fixes (each vehicle's in time order), from each tracker's
    last valid fix before them."""
    codes: dict[str, int] = {}
    device = np.array([codes.setdefault(f.device_id, len(codes)) for f in fixes])
    by_device = np.argsort(device, kind="stable")  # each tracker's fixes in time order
    grouped = device[by_device]
    first = np.r_[True, grouped[1:] != grouped[:-1]]
    previous = np.r_[-1, by_device[:-1]]
    seeds = [monitors[k].jumps.last.get(fixes[k].device_id) for k in by_device[first].tolist()]
    fields = np.column_stack([np.fromiter(map(attrgetter(name), fixes), np.float64, len(fixes))
                              for name in ("time", "x", "y", "z")])  # fmt: skip
    before = fields[np.maximum(previous, 0)]
    before[first] = [(s.time, s.x, s.y, s.z) if s else (np.nan,) * 4 for s in seeds]
    here = fields[by_device]
    dx, dy, dz = here[:, 1] - before[:, 1], here[:, 2] - before[:, 2], here[:, 3] - before[:, 3]
    c2 = dx * dx + dy * dy + dz * dz  # Jumps.on_fix's arithmetic, so the same comparison
    limits = [m.out.limits for m in monitors]
    min_r2 = np.array([lim.jump_min_r2 for lim in limits])[by_device]
    mps = np.array([lim.jump_mps for lim in limits])[by_device]
    with np.errstate(invalid="ignore"):
        far = c2 > min_r2  # NaN (no fix before) is not
        metres = 2.0 * EARTH_RADIUS_M * np.arcsin(np.minimum(np.sqrt(c2) / 2.0, 1.0))
        seconds = np.maximum(here[:, 0] - before[:, 0], 1)
        # a margin for NumPy's arcsin against math.asin: the detector decides exactly
        maybe = far & (metres / seconds > mps * (1 - 1e-9))
    seed_of = np.cumsum(first) - 1
    events = np.flatnonzero(maybe)
    for k in events[np.argsort(by_device[events])].tolist():  # in release order
        f = int(by_device[k])
        fix, detector = fixes[f], monitors[f].jumps
        detector.last[fix.device_id] = seeds[seed_of[k]] if first[k] else fixes[previous[k]]
        detector.on_fix(fix)
        order.mark(numbers[f], _JUMPS)
    lasts = by_device[np.r_[first[1:], True]]
    for f in lasts.tolist():
        monitors[f].jumps.last[fixes[f].device_id] = fixes[f]
