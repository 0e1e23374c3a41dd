"""The batch replay over sorted columns: each detector runs only at the fixes that can move it.

:meth:`Monitor.replay <lienwatch.monitor.engine.Monitor.replay>` sorts a complete batch by
(vehicle, time, device) once. Most fixes move a detector in a way NumPy can compute for all of
them at once: a quiet fix only becomes the device's last fix, the stay goes on, the car is
inside its province and its area, no deadline passed. So each detector family gets the fixes
where its own code may act (its *events*) from array comparisons over the whole batch — the
fix after a silence longer than the device allows, a step faster than ``jump_kmh``, the first
fix of each stay (:func:`~lienwatch.monitor.stays.stay_anchors`) and the first past each stay
threshold, the first fix after each long-stay clock fell due (the clock's restarts found in
columns too), the fixes in or just out of a risk zone, outside the permitted region or the
activity area, the first after each night — and Python runs the detector's own methods at
those fixes only, after setting what the skipped fixes would have left in its state (the
last fix per device, the stay's anchor, the night's pending fix, the day's cell counts). So
the alerts are the per-fix run's, field by field; ``tests/monitor/test_streaming.py`` proves
streaming equal to this replay.

Families are independent (one alert type each, read-only links noted in each pass), so each
runs over the whole batch in turn; the alerts they open are put back in the order the per-fix
run opens them. Vehicles this path does not cover go through the per-fix loop: a vehicle
with more than two trackers, a wall clock that goes backwards (a time-zone transition), or
state from earlier input. A vehicle with a tracker alarm in the batch takes this path up to
its first alarm and the per-fix loop from there, as if the batch had been cut before the
alarm (a second batch continues a vehicle's state exactly).
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lienwatch.domain.geo import EARTH_RADIUS_M, chord2_of_m
from lienwatch.monitor.detectors.activity_area import ActivityArea, cell_centres
from lienwatch.monitor.detectors.base import DAY_S, NEVER
from lienwatch.monitor.detectors.long_stay import long_stay_due, stood_still
from lienwatch.monitor.detectors.tracker_pair import TrackerPair
from lienwatch.monitor.lifecycle import AlertBook
from lienwatch.monitor.model import AlertType, Fix
from lienwatch.monitor.stays import stay_anchors
from lienwatch.monitor.vehicle import VehicleMonitor

_LAST = 2**62  # the order key of an alert opened after every fix
_KEY_SHIFT = 2**34  # (vehicle, time) as one sortable int64: vehicle · 2³⁴ + seconds from t0


class Columns:
    """The sorted, enriched fixes of the vehicles this path covers, and their monitors.

    ``columns`` holds the :class:`Fix` fields as arrays (sorted by vehicle, time, device)
    and ``vehicle``, each fix's index into ``monitors``. A vehicle has at most two trackers
    here: its first tracker in the batch is slot 0, the other slot 1.
    """

    def __init__(self, columns: dict[str, np.ndarray], monitors: Sequence[VehicleMonitor]):
        self.c = c = columns
        self.monitors = monitors
        self.n = n = len(c["time"])
        self.vehicle = c["vehicle"]
        self.time = c["time"]
        index = np.arange(n)
        head = np.r_[True, self.vehicle[1:] != self.vehicle[:-1]]
        self.start = np.maximum.accumulate(np.where(head, index, 0))  # its vehicle's first fix
        self.ends = np.r_[np.flatnonzero(head[1:]), n - 1]  # each vehicle's last fix
        self.valid_index = np.flatnonzero(c["valid"])
        last_valid = self.previous(c["valid"])
        self.last_valid_at_end = np.where(c["valid"][self.ends], self.ends, last_valid[self.ends])
        devices = c["device_id"]
        c["slot"] = slot = (c["dev"] != c["dev"][self.start]).astype(np.int64)
        before = [self.previous(slot == s) for s in (0, 1)]
        c["slots_before"] = np.column_stack(before)
        ends = self.ends
        self.slots_final = np.column_stack(  # each vehicle's trackers' last fixes
            [np.where(slot[ends] == s, ends, before[s][ends]) for s in (0, 1)]
        )
        starts = np.r_[0, self.ends[:-1] + 1]
        second = np.minimum.reduceat(np.where(slot == 1, index, n), starts)
        names = [(devices[f], devices[s] if s < n else None)
                 for f, s in zip(starts.tolist(), second.tolist(), strict=True)]  # fmt: skip
        per_slot: dict[str, list[list[Any]]] = {"silence": [], "wired": [], "limit_of": []}
        for monitor, pair in zip(monitors, names, strict=True):
            live = monitor.liveness
            per_slot["silence"].append([live.silence.get(d, 0.0) for d in pair])
            per_slot["wired"].append([live.kind.get(d) == "wired" for d in pair])
            per_slot["limit_of"].append([live.limit.get(d, 0.0) for d in pair])
        #: per vehicle and slot (vehicle × 2): its trackers' silence, kind and offline limit
        self.trackers = {name: np.asarray(rows, dtype=bool if name == "wired" else np.float64)
                         for name, rows in per_slot.items()}  # fmt: skip
        c["limit"] = self.trackers["limit_of"][self.vehicle, slot]
        self._fixes: dict[int, Fix] = {}
        self._built = np.zeros(n, dtype=bool)
        self.device_order = _device_order(c["dev"])

    def prepare(self, index: np.ndarray) -> None:
        """Build the :class:`Fix` tuples of ``index`` at once (a pass then reads them)."""
        wanted = np.zeros(self.n, dtype=bool)
        wanted[index[index >= 0]] = True
        wanted &= ~self._built
        index = np.flatnonzero(wanted)
        if not len(index):
            return
        self._built[index] = True
        columns = [self.c[name][index].tolist() for name in Fix._fields]
        self._fixes.update(zip(index.tolist(), map(Fix._make, zip(*columns, strict=True)),
                               strict=True))  # fmt: skip

    def fix(self, i: int) -> Fix:
        found = self._fixes.get(i)
        if found is None:
            self.prepare(np.array([i]))
            found = self._fixes[i]
        return found

    def tracker(self, name: str, rows: np.ndarray, slot: Any) -> np.ndarray:
        """A value of :attr:`trackers` for the tracker in ``slot`` of the vehicle of ``rows``."""
        return self.trackers[name][self.vehicle[rows], slot]

    def previous(self, mask: np.ndarray) -> np.ndarray:
        """For each fix, the index of the last earlier fix of its vehicle where ``mask``, or -1."""
        return _previous(mask, self.start)

    def of_vehicle(self, per_vehicle: Sequence[Any], dtype: Any = np.float64) -> np.ndarray:
        """A per-vehicle value spread over the fixes."""
        return np.asarray(per_vehicle, dtype=dtype)[self.vehicle]

    def limits(self, name: str) -> np.ndarray:
        """A threshold of :class:`~lienwatch.monitor.detectors.base.Limits` per fix."""
        return self.of_vehicle([getattr(m.out.limits, name) for m in self.monitors])

    @functools.cached_property
    def last_valid_of_devices(self) -> list[tuple[VehicleMonitor, dict[str, Fix]]]:
        """Each vehicle's trackers' last valid fixes, in the order of their first valid fix."""
        vi = self.valid_index
        key = self.vehicle[vi] * 2 + self.c["slot"][vi]
        keys, first = np.unique(key, return_index=True)
        last = len(key) - 1 - np.unique(key[::-1], return_index=True)[1]
        self.prepare(vi[last])
        found: dict[int, list[tuple[int, Fix]]] = {}
        for k, f, end in zip(keys.tolist(), first.tolist(), last.tolist(), strict=True):
            found.setdefault(k // 2, []).append((f, self.fix(int(vi[end]))))
        return [
            (self.monitors[v], {fix.device_id: fix for _, fix in sorted(fixes, key=lambda x: x[0])})
            for v, fixes in found.items()
        ]


def sort_order(
    vehicle: np.ndarray, time: np.ndarray, device: np.ndarray
) -> np.ndarray:
    """``np.lexsort((device, time, vehicle))``. A batch usually comes grouped by device in
    device order, time-sorted within: a stable sort of one (vehicle, time) key keeps the
    device order of equal keys then, and merges the few runs per vehicle in O(n)."""
    time = np.asarray(time, dtype=np.int64)
    grouped = len(time) and (device[1:] >= device[:-1]).all()
    if not grouped or int(time.max()) - int(time.min()) >= _KEY_SHIFT:
        return np.lexsort((device, time, vehicle))
    return np.argsort(vehicle.astype(np.int64) * _KEY_SHIFT + (time - time.min()), kind="stable")


def _previous(mask: np.ndarray, start: np.ndarray) -> np.ndarray:
    n = len(mask)
    marked = np.maximum.accumulate(np.where(mask, np.arange(n), -1)) if n else mask.astype(int)
    previous = np.r_[-1, marked[:-1]] if n else marked
    return np.where(previous >= start, previous, -1)


def _device_order(dev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A stable order by device, and each position's first index of its device run."""
    order = np.argsort(dev, kind="stable")
    grouped = dev[order]
    index = np.arange(len(dev))
    head = np.r_[True, grouped[1:] != grouped[:-1]] if len(dev) else index == 0
    return order, np.maximum.accumulate(np.where(head, index, 0))


def previous_of_device(mask: np.ndarray, by_device: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """For each fix, the index of the same device's last earlier fix where ``mask``, or -1;
    ``by_device`` is :func:`_device_order` of the fixes."""
    order, start = by_device
    found = _previous(mask[order], start)
    result = np.full(len(mask), -1, dtype=np.int64)
    result[order] = np.where(found >= 0, order[np.maximum(found, 0)], -1)
    return result


def next_of_device(by_device: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """For each fix, the index of the same device's next fix, or -1."""
    order, start = by_device
    following = np.r_[order[1:], -1]
    same = np.r_[start[1:] == start[:-1], False]
    result = np.full(len(order), -1, dtype=np.int64)
    result[order] = np.where(same, following, -1)
    return result


class OpenOrder:
    """Puts the alerts a replay opens back in the order the per-fix run opens them: by fix
    (its index in the sorted batch: ``global_of`` maps a pass's indices to it), then by
    detector in :meth:`VehicleMonitor.on_fix`'s order (``rank``). ``Monitor.ingest`` puts
    a call's alerts in the order a call per fix opens them with it: by the row that released
    the fix, then by the order of release."""

    def __init__(self, book: AlertBook) -> None:
        self.book = book
        self.first = self.seen = len(book.alerts)
        self.keys: list[tuple[int, int]] = []
        self.global_of = np.zeros(0, dtype=np.int64)

    def mark(self, index: int, rank: int) -> None:
        """The alerts opened since the last mark were opened at fix ``index`` by ``rank``."""
        grown = len(self.book.alerts) - self.seen
        if grown:
            self.keys.extend([(int(self.global_of[index]), rank)] * grown)
            self.seen += grown

    def seal(self) -> None:
        """The alerts opened since the last mark go last (a pass opened them after its last
        fix), before another pass marks its own."""
        grown = len(self.book.alerts) - self.seen
        self.keys.extend([(_LAST, 0)] * grown)
        self.seen += grown

    def restore(self) -> None:
        opened = self.book.alerts[self.first :]
        keys = self.keys + [(_LAST, 0)] * (len(opened) - len(self.keys))  # unmarked: last
        ordered = sorted(range(len(opened)), key=keys.__getitem__)
        self.book.alerts[self.first :] = [opened[k] for k in ordered]


def run_passes(cols: Columns, order: OpenOrder) -> None:
    """Every detector family over ``cols``; alerts open in ``order``'s book."""
    liveness(cols, order)
    jumps(cols, order)
    stays_and_zones(cols, order)
    region(cols, order)
    nights(cols, order)
    activity(cols, order)
    pairs(cols, order)


# -- liveness (rank 0): device_offline; reads nothing of the others ---------------------------


def liveness(cols: Columns, order: OpenOrder) -> None:
    """Events: the first fix of the vehicle past a device's deadline (its silence fires) and
    the device's next fix after such a silence (it resolves)."""
    t, limit = cols.time, cols.c["limit"]
    following = next_of_device(cols.device_order)
    gap = np.where(following >= 0, t[np.maximum(following, 0)] - t, np.inf) > limit
    t0 = int(t.min())
    key = cols.vehicle * _KEY_SHIFT + (t - t0)
    late = np.flatnonzero(gap)
    due = cols.vehicle[late] * _KEY_SHIFT + np.floor(t[late] + limit[late] - t0).astype(np.int64)
    at = np.searchsorted(key, due, side="right")  # the first fix later than the deadline
    inside = at < cols.n
    late, at = late[inside], at[inside]
    fired = at[cols.vehicle[at] == cols.vehicle[late]]
    back = following[gap & (following >= 0)]
    events = np.unique(np.concatenate([fired, back]))
    last_valid = cols.previous(cols.c["valid"])
    slots_before = cols.c["slots_before"]
    cols.prepare(np.concatenate([events, last_valid[events], slots_before[events].ravel()]))
    synced: dict[int, dict[str, int]] = {}
    for e in events.tolist():
        v = int(cols.vehicle[e])
        monitor = cols.monitors[v]
        _sync_liveness(cols, monitor, synced.setdefault(v, {}), slots_before[e].tolist())
        p = int(last_valid[e])
        monitor.out.last_valid = cols.fix(p) if p >= 0 else None
        live = monitor.liveness
        live._next()
        fix = cols.fix(e)
        if live.next_deadline < fix.time:
            live.fire_due(fix.time)
        live.on_fix(fix)
        synced[v][fix.device_id] = e
        order.mark(e, 0)
    ends = cols.ends
    final = cols.slots_final
    cols.prepare(np.concatenate([final.ravel(), cols.last_valid_at_end]))
    for end, slots, p in zip(ends.tolist(), final.tolist(), cols.last_valid_at_end.tolist(),
                             strict=True):  # fmt: skip
        v = int(cols.vehicle[end])
        monitor = cols.monitors[v]
        _sync_liveness(cols, monitor, synced.setdefault(v, {}), slots)
        monitor.out.last_valid = cols.fix(p) if p >= 0 else None
        monitor.liveness._next()


def _sync_liveness(
    cols: Columns, monitor: VehicleMonitor, synced: dict[str, int], last: Sequence[int]
) -> None:
    """What the skipped fixes left in Liveness: each device's last fix and its deadline."""
    live = monitor.liveness
    for p in last:
        if p < 0:
            continue
        fix = cols.fix(p)
        if p > synced.get(fix.device_id, -1):
            synced[fix.device_id] = p
            live.last_fix[fix.device_id] = fix
            live.deadline[fix.device_id] = fix.time + live.limit[fix.device_id]


# -- jumps (rank 3) ------------------------------------------------------------------------


def jumps(cols: Columns, order: OpenOrder) -> None:
    """Events: a valid fix farther than ``jump_min_km`` from its device's previous valid fix
    at a speed above ``jump_kmh`` (checked again, exactly, by the detector)."""
    c, valid = cols.c, cols.c["valid"]
    before = previous_of_device(valid, cols.device_order)
    b = np.maximum(before, 0)
    c2 = _chord2(c, np.arange(cols.n), b)
    far = valid & (before >= 0) & (c2 > cols.limits("jump_min_r2"))
    metres = 2.0 * EARTH_RADIUS_M * np.arcsin(np.minimum(np.sqrt(c2) / 2.0, 1.0))
    seconds = np.maximum(cols.time - cols.time[b], 1)
    events = np.flatnonzero(far & (metres / seconds > cols.limits("jump_mps") * (1 - 1e-9)))
    cols.prepare(np.concatenate([events, before[events]]))
    for e in events.tolist():
        detector = cols.monitors[cols.vehicle[e]].jumps
        fix = cols.fix(e)
        detector.last[fix.device_id] = cols.fix(int(before[e]))
        detector.on_fix(fix)
        order.mark(e, 3)
    for monitor, fixes in cols.last_valid_of_devices:
        monitor.jumps.last.update(fixes)


def _chord2(c: dict[str, np.ndarray], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared chords between fixes ``a`` and ``b``, in the detectors' own arithmetic."""
    dx, dy, dz = c["x"][a] - c["x"][b], c["y"][a] - c["y"][b], c["z"][a] - c["z"][b]
    return dx * dx + dy * dy + dz * dz


# -- stays (rank 4) and risk zones (rank 5), which read the stay's anchor and places ---------


def stays_and_zones(cols: Columns, order: OpenOrder) -> None:
    """Stay events: the first fix of a stay after one that crossed a threshold (it ends
    that stay), and the first fix of each stay past ``place_visit_h`` and ``cluster_h``.
    Clock events: the first fix (valid or not) after a long-stay clock fell due
    (:func:`_clocks`). Zone events: a valid fix in a risk zone or just after one."""
    vi = cols.valid_index
    if not len(vi):
        return
    c = cols.c
    vehicle, time = cols.vehicle[vi], cols.time[vi]
    xyz = np.column_stack((c["x"][vi], c["y"][vi], c["z"][vi]))
    stay_r2 = cols.limits("stay_r2")[vi]
    anchor = stay_anchors(vehicle, xyz, stay_r2)
    stay = np.cumsum(anchor) - 1
    anchor_at = np.flatnonzero(anchor)
    anchor_of = anchor_at[stay]
    lasted = time - time[anchor_of]
    crossed = np.zeros(len(vi), dtype=bool)
    long = np.zeros(len(vi), dtype=bool)  # past cluster_h: its end ends the record
    visit = np.zeros(len(vi), dtype=bool)  # past place_visit_h
    same_stay = np.r_[False, stay[1:] == stay[:-1]]
    for name in ("place_visit_s", "cluster_s"):
        limit = cols.limits(name)[vi]
        past = (lasted >= limit) & ~anchor
        first_past = past & ~(np.r_[False, past[:-1]] & same_stay)
        crossed |= first_past
        if name != "place_visit_s":
            long |= first_past
        else:
            visit = first_past
    busy = np.bincount(stay, weights=long, minlength=len(anchor_at)) > 0
    same_vehicle = np.r_[False, vehicle[1:] == vehicle[:-1]]
    ends_busy = anchor & same_vehicle & np.r_[False, busy[stay[:-1]]]
    zone = c["zone"][vi]
    in_zone = zone >= 0
    zoned = in_zone | (np.r_[False, in_zone[:-1]] & same_vehicle)
    stay_event = crossed | ends_busy
    only_visit = visit & ~long  # all the detector does there: a visit to the stay's place
    events = np.flatnonzero(stay_event | zoned)
    clocks = _clocks(cols, vehicle, time, xyz, anchor, stay_r2)
    previous = np.maximum(events - 1, 0)
    wanted = events[~only_visit[events] | zoned[events]]
    before = clocks.before
    ended = anchor_of[previous[ends_busy[events]]]
    cols.prepare(vi[np.concatenate([wanted, anchor_of[wanted], ended, anchor_of[before], before,
                                    clocks.restart[clocks.fired]])])  # fmt: skip
    # vehicle -> the anchor (valid position) its Stays holds, or -1 - the anchor of a stay
    # seen only for its visit to a place (Stays is moved onto it by the next _sync_stay)
    current: dict[int, int] = {}
    alerts, monitors = order.book.alerts, cols.monitors
    spots = vi[anchor_of[events[only_visit[events]]]]
    spot = zip(*(c[name][spots].tolist() for name in ("x", "y", "z", "lat", "lon")), strict=True)
    fire_before, f, m = before.tolist(), 0, len(before)
    columns = (events, vehicle[events], stay_event[events], ends_busy[events],
               only_visit[events], zoned[events], anchor_of[events], anchor_of[previous],
               time[previous], vi[events])  # fmt: skip
    for e, v, staying, busy_end, visiting, in_zone, a, a_before, t_before, g in zip(
        *(column.tolist() for column in columns), strict=True
    ):
        while f < m and fire_before[f] < e:  # clocks due before this event's fix
            _fire(cols, order, clocks, current, f, fire_before[f], anchor_of)
            f += 1
        monitor = monitors[v]
        stays = monitor.stays
        if visiting:
            here = next(spot)
            if current.get(v) != a:  # a stay not followed yet: count the visit only
                current[v] = -1 - a
                stays.places.visit_at(*here)
            else:
                _sync_stay(cols, stays, current, v, a, t_before)
                stays.visited = True
                stays.places.visit(stays.anchor)
        elif staying:
            _sync_stay(cols, stays, current, v, a_before if busy_end else a, t_before)
            stays.on_fix(cols.fix(g))  # the clock's fields are set at the end
            current[v] = a
            if len(alerts) != order.seen:
                order.mark(g, 4)
        if in_zone:
            _sync_stay(cols, stays, current, v, a, None)
            fix = cols.fix(g)
            if fix.zone >= 0 or monitor.zones.current != -1:
                monitor.zones.on_fix(fix)
            order.mark(g, 5)
    while f < m:  # clocks due after the last event
        _fire(cols, order, clocks, current, f, fire_before[f], anchor_of)
        f += 1
    ends = np.r_[np.flatnonzero(np.diff(vehicle)), len(vi) - 1] if len(vi) else anchor_at
    last_restart = clocks.restart[np.searchsorted(clocks.restart, ends, side="right") - 1]
    cols.prepare(vi[np.concatenate([anchor_of[ends], ends, last_restart])])
    for end, r in zip(ends.tolist(), last_restart.tolist(), strict=True):
        v = int(vehicle[end])
        stays = cols.monitors[v].stays
        _sync_stay(cols, stays, current, v, int(anchor_of[end]), time[end])
        stays.last, stays.origin = cols.fix(int(vi[end])), cols.fix(int(vi[r]))
        stays.since = stays.origin.time
        if r in clocks.open_at_end:
            stays.due, stays.long_open = NEVER, clocks.open_at_end[r]
        else:
            stays.due, stays.long_open = long_stay_due(stays.since, stays.limits.long_stay_s), False


@dataclass
class _Clocks:
    """The long-stay clocks of a batch, over its valid fixes (positions in ``valid_index``)."""

    restart: np.ndarray  # the anchors that (re)start a clock (Stays._begin, not stood still)
    following: np.ndarray  # the vehicle's next restart after each, or -1
    due: np.ndarray  # when each restart's clock falls due
    fired: np.ndarray  # positions in ``restart`` of the clocks that fall due in the batch
    at: np.ndarray  # for each of those, the fix (index into the batch) the clock fires before
    before: np.ndarray  # and the last valid fix before it (a valid position)
    open_at_end: dict[int, bool]  # a vehicle's last clock fired: restart -> alert left open


def _clocks(cols: Columns, vehicle: np.ndarray, time: np.ndarray, xyz: np.ndarray,
            anchor: np.ndarray, stay_r2: np.ndarray) -> _Clocks:  # fmt: skip
    """Which stays restart the long-stay clock and where each clock falls due.

    An anchor restarts the clock unless it :func:`stood_still` (close to the fix before it
    and to where the clock started): the first condition is an array comparison; the
    second is sequential only over the anchors that pass the first (a few), walked in
    Python. A clock fires at the vehicle's first fix later than its due time if that fix
    comes no later than the next restart, which then resolves the alert."""
    nv = len(vehicle)
    first = np.r_[True, vehicle[1:] != vehicle[:-1]]
    later = np.flatnonzero(anchor & ~first)  # a stay's first fix after another's last
    d = xyz[later] - xyz[later - 1]
    step2 = d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] + d[:, 2] * d[:, 2]
    close = np.zeros(nv, dtype=bool)
    close[later] = stood_still(step2, 0.0, stay_r2[later])  # near the fix before it
    restart = anchor & ~close
    maybe = np.flatnonzero(close)
    if len(maybe):
        sure = np.maximum.accumulate(np.where(restart, np.arange(nv), 0))[maybe]
        at_sure = xyz[sure].tolist()  # only these rows: a list of every fix costs 10x the walk
        piece, origin = -1, (0.0, 0.0, 0.0)
        for j, s, (jx, jy, jz), r2, here in zip(maybe.tolist(), sure.tolist(), xyz[maybe].tolist(),
                                                stay_r2[maybe].tolist(), at_sure, strict=True):
            if s != piece:
                piece, origin = s, here
            dx, dy, dz = jx - origin[0], jy - origin[1], jz - origin[2]
            if not stood_still(0.0, dx * dx + dy * dy + dz * dz, r2):
                restart[j] = True
                origin = (jx, jy, jz)
    restarts = np.flatnonzero(restart)
    vi = cols.valid_index
    v = vehicle[restarts]
    following = np.r_[restarts[1:], -1]
    following[:-1][v[1:] != v[:-1]] = -1
    due = long_stay_due(time[restarts], cols.limits("long_stay_s")[vi[restarts]])
    t0 = int(cols.time.min())
    key = cols.vehicle * _KEY_SHIFT + (cols.time - t0)
    at = np.searchsorted(key, v * _KEY_SHIFT + np.floor(due - t0).astype(np.int64), "right")
    ok = at < cols.n
    ok[ok] = cols.vehicle[at[ok]] == v[ok]
    ok &= (following < 0) | (at <= vi[np.maximum(following, 0)])
    fired = np.flatnonzero(ok)
    before = np.searchsorted(vi, at[fired]) - 1
    return _Clocks(restarts, following, due, fired, at[fired], before, {})


def _fire(cols: Columns, order: OpenOrder, clocks: _Clocks, current: dict[int, int], f: int,
          before: int, anchor_of: np.ndarray) -> None:  # fmt: skip
    """What ``VehicleMonitor.fire_due`` does when the ``f``-th clock that fires falls due:
    ``Stays`` as the fixes up to ``before`` left it, the alert raised (unless at a known
    place), resolved at the next restart if there is one (nothing else touches it between)."""
    vi, time = cols.valid_index, cols.time
    k = int(clocks.fired[f])
    r, a, due = int(clocks.restart[k]), int(clocks.at[f]), float(clocks.due[k])
    v = int(cols.vehicle[a])
    stays = cols.monitors[v].stays
    _sync_stay(cols, stays, current, v, int(anchor_of[before]), time[vi[before]])
    stays.last, stays.origin = cols.fix(int(vi[before])), cols.fix(int(vi[r]))
    stays.since, stays.due = stays.origin.time, due
    stays.fire_due()
    opened, stays.long_open = stays.long_open, False
    following = int(clocks.following[k])
    if following < 0:
        clocks.open_at_end[r] = opened
    elif opened:
        stays.out.resolve(AlertType.LONG_STAY, int(time[vi[following]]))
    order.mark(a, _clock_rank(cols, a, due))


def _clock_rank(cols: Columns, a: int, due: float) -> int:
    """Where a stay turning long at fix ``a`` falls among that fix's alerts: before the
    silences that fire there (rank 0) if it fell due before the soonest of them, else after
    (``VehicleMonitor.fire_due``). A device's deadline already fired before ``a`` is gone."""
    soonest, previous = NEVER, cols.time[a - 1]
    for s, p in enumerate(cols.c["slots_before"][a].tolist()):
        if p >= 0:
            deadline = cols.time[p] + cols.tracker("limit_of", a, s)
            if deadline >= previous:
                soonest = min(soonest, deadline)
    return -1 if due < soonest else 1


def _sync_stay(cols: Columns, stays: Any, current: dict[int, int], v: int, anchor: int,
               last_time: Any) -> None:  # fmt: skip
    """Stays as the skipped fixes left it: following the stay anchored at ``anchor`` (a
    valid position), its long-stay record last seen at ``last_time``."""
    held = current.get(v)
    if held != anchor:
        fix = cols.fix(int(cols.valid_index[anchor]))
        stays.anchor, stays.start = fix, fix.time
        stays.visited = held == -1 - anchor  # its visit was counted in the events loop
        stays.record = None
        current[v] = anchor
    elif stays.record is not None and last_time is not None:
        stays.record.last = int(last_time)


# -- region (rank 6) -------------------------------------------------------------------------


def region(cols: Columns, order: OpenOrder) -> None:
    """Events: a valid fix outside the permitted region or just after one, and the first
    valid fix of a vehicle whose province is taken from it."""
    vi = cols.valid_index
    if not len(vi):
        return
    vehicle = cols.vehicle[vi]
    first = np.r_[True, vehicle[1:] != vehicle[:-1]] if len(vi) else vehicle == 0
    detectors = [m.region for m in cols.monitors]
    has_area = cols.of_vehicle([d.area is not None for d in detectors], bool)[vi]
    learns = cols.of_vehicle([d.area is None and d.region is None for d in detectors], bool)[vi]
    booked = cols.of_vehicle([-2 if d.region is None else d.region for d in detectors], np.int64)
    province = cols.c["province"][vi]
    first_province = province[np.maximum.accumulate(np.where(first, np.arange(len(vi)), 0))]
    permitted = np.where(learns, first_province, booked[vi])
    outside = np.where(has_area, ~cols.c["in_area"][vi], province != permitted)
    outside &= ~(first & learns)
    events = np.flatnonzero(outside | (np.r_[False, outside[:-1]] & ~first) | (first & learns))
    cols.prepare(vi[events])
    for e in vi[events].tolist():
        detectors[cols.vehicle[e]].on_fix(cols.fix(e))
        order.mark(e, 6)


# -- nights (rank 7) -------------------------------------------------------------------------


def nights(cols: Columns, order: OpenOrder) -> None:
    """Events: the first valid fix after a night's last one (the night is judged there)."""
    vi = cols.valid_index
    if not len(vi):
        return
    vehicle, local = cols.vehicle[vi], cols.c["local"][vi]
    night_end = cols.limits("night_end_s")[vi]
    of_day = local % DAY_S
    night = of_day < night_end
    ends = local - of_day + night_end
    after = np.r_[False, (vehicle[1:] == vehicle[:-1]) & night[:-1] & (local[1:] >= ends[:-1])]
    events = np.flatnonzero(after)
    spots = vi[events - 1]
    c = cols.c
    # a night near the one before it usually only confirms the learned spot (below): build
    # the fixes of the others, which may become the learned spot or a candidate
    step = _chord2(c, spots, np.r_[spots[:1], spots[:-1]])
    same = np.r_[False, vehicle[events][1:] == vehicle[events][:-1]]
    cols.prepare(spots[~same | (step > cols.limits("night_move_r2")[spots])])
    alerts, monitors = order.book.alerts, cols.monitors
    # what Nights.on_fix does at e: judge the night's fix pending (``_night`` reads nothing
    # of ``pending``, so only each vehicle's last one is set, below)
    columns = (vehicle[events], spots, vi[events], c["x"][spots], c["y"][spots], c["z"][spots])
    for v, spot, g, x, y, z in zip(*(column.tolist() for column in columns), strict=True):
        detector = monitors[v].nights
        if detector.confirms(x, y, z):
            continue
        detector._night(cols.fix(spot))
        if len(alerts) != order.seen:
            order.mark(g, 7)
    last = np.r_[np.flatnonzero(np.diff(vehicle)), len(vi) - 1] if len(vi) else vehicle
    cols.prepare(vi[last])
    for end in last.tolist():  # a fix outside the night has judged any fix pending before it
        detector = monitors[vehicle[end]].nights
        if night[end]:
            detector.pending, detector.pending_ends = cols.fix(int(vi[end])), int(ends[end])
        else:
            detector.pending = None


# -- activity area (rank 8) --------------------------------------------------------------------


def activity(cols: Columns, order: OpenOrder) -> None:
    """The area is learned from day counts alone, so each vehicle's learns come first
    (:func:`_roll_days`), each fix's area known from its day; events: a valid fix far outside
    its day's area (:func:`_far`, once per area and cell), or just after one (judged by the
    detector); a fix in the area or near it changes nothing else."""
    vi = cols.valid_index
    if not len(vi):
        return
    vehicle, cell = cols.vehicle[vi], cols.c["cell"][vi]
    day = cols.c["local"][vi] // DAY_S
    new_day = np.r_[True, (vehicle[1:] != vehicle[:-1]) | (day[1:] != day[:-1])]
    vd = np.cumsum(new_day) - 1  # the vehicle-day of each fix
    key = vd * 2**32 + (cell + 2**31)
    run = np.r_[True, key[1:] != key[:-1]]  # a car keeps to a cell for long: sort the runs
    heads = np.flatnonzero(run)
    groups, of_run = np.unique(key[heads], return_inverse=True)
    counts = np.bincount(of_run, weights=np.diff(np.r_[heads, len(key)])).astype(np.int64)
    of_fix = of_run[np.cumsum(run) - 1]
    group_vd = groups >> 32
    group_cell = (groups & (2**32 - 1)) - 2**31
    bounds = np.searchsorted(group_vd, np.arange(vd[-1] + 2))
    firsts = np.flatnonzero(new_day)
    epochs, far_r2, day_epoch = _roll_days(
        cols.monitors, vehicle[firsts], day[firsts], bounds, group_cell, counts
    )
    epoch_of_group = day_epoch[group_vd]
    area_keys = np.array(
        [e * 2**32 + (c + 2**31) for e, (area, _) in enumerate(epochs) for c in area],
        dtype=np.int64,
    )
    group_keys = epoch_of_group * 2**32 + group_cell + 2**31
    outside = np.flatnonzero((epoch_of_group >= 0) & ~np.isin(group_keys, area_keys))
    # is each (area, cell) outside far from the area? asked once, as the detector caches it
    pairs, of_pair = np.unique(group_keys[outside], return_inverse=True)
    pair_epoch, pair_cell = pairs >> 32, (pairs & (2**32 - 1)) - 2**31
    verdicts = _far(pair_cell, pair_epoch, epochs, far_r2)
    fars: dict[int, dict[int, bool]] = {}
    for epoch, cell, far in zip(pair_epoch.tolist(), pair_cell.tolist(), verdicts.tolist(),
                                strict=True):  # fmt: skip
        fars.setdefault(epoch, {})[cell] = far
    far_group = np.zeros(len(groups), dtype=bool)
    far_group[outside] = verdicts[of_pair]
    # a fix in the area or near it only clears what a far fix began: the fix after one
    out = far_group[of_fix]
    events = np.flatnonzero(out | np.r_[False, out[:-1] & (vehicle[1:] == vehicle[:-1])])
    cols.prepare(vi[events])
    holds: dict[int, int] = {}
    for e in events.tolist():
        v = int(vehicle[e])
        detector = cols.monitors[v].area
        epoch = int(day_epoch[vd[e]])
        if holds.get(v, -2) != epoch:
            _hold_epoch(detector, epochs, fars, epoch)
            holds[v] = epoch
        detector.judge(cols.fix(int(vi[e])))
        order.mark(int(vi[e]), 8)
    last = np.r_[np.flatnonzero(np.diff(vehicle)), len(vi) - 1] if len(vi) else vehicle
    for end in last.tolist():
        _hold_epoch(cols.monitors[int(vehicle[end])].area, epochs, fars, int(day_epoch[vd[end]]))


def _far(cell: np.ndarray, epoch: np.ndarray, epochs: list[tuple[frozenset[int], np.ndarray]],
         far_r2: list[float]) -> np.ndarray:  # fmt: skip
    """:func:`is_far` of each cell outside the area ``epochs[epoch]``, for all at once: every
    cell's centre against each centre of its area, the nearest by a minimum per cell."""
    if not len(cell):
        return np.zeros(0, dtype=bool)
    sizes = np.array([len(centres) for _, centres in epochs], dtype=np.int64)
    offsets = np.r_[0, np.cumsum(sizes)[:-1]]
    centres = np.concatenate([centres for _, centres in epochs])
    size = sizes[epoch]
    rows = np.repeat(offsets[epoch] - np.r_[0, np.cumsum(size)[:-1]], size) + np.arange(size.sum())
    here = np.repeat(cell_centres(cell), size, axis=0)
    d2 = (centres[rows, 0] - here[:, 0]) ** 2 + (centres[rows, 1] - here[:, 1]) ** 2
    d2 += (centres[rows, 2] - here[:, 2]) ** 2
    return np.minimum.reduceat(d2, np.r_[0, np.cumsum(size)[:-1]]) > np.asarray(far_r2)[epoch]


def _roll_days(monitors: Sequence[VehicleMonitor], vehicle: np.ndarray, day: np.ndarray,
               bounds: np.ndarray, cell: np.ndarray, count: np.ndarray) -> tuple[
                   list[tuple[frozenset[int], np.ndarray]], list[float], np.ndarray]:  # fmt: skip
    """What :meth:`ActivityArea._roll` does over each vehicle's days (``vehicle`` and
    ``day`` per vehicle-day; ``cell`` and ``count`` its cells' tallies, from ``bounds[k]`` to
    ``bounds[k + 1]``), without rolling them one by one: the days in each day's window are
    a range, so only the learn days need the window's totals, summed for all of them at once;
    each vehicle is left with the window of its last day. Returns the areas learned (with
    their far distance) and each vehicle-day's area, -1 before the first."""
    n = len(day)
    areas = [m.area for m in monitors]
    window = np.array([a.limits.activity_days for a in areas], dtype=np.int64)[vehicle]
    key = vehicle.astype(np.int64) * 2**33 + (day + 2**31)
    lo = np.searchsorted(key, key - window + 1)  # the first day still in the window
    held = (np.arange(n) - lo).tolist()  # len(ActivityArea.days) at the day's roll
    need = [a.limits.activity_min_days for a in areas]
    learns, last, learned_on, every = [], -1, None, ActivityArea._RELEARN_DAYS
    for k, (v, d) in enumerate(zip(vehicle.tolist(), day.tolist(), strict=True)):
        if v != last:
            last, learned_on = v, None
        if (learned_on is None or d - learned_on >= every) and held[k] >= need[v]:
            learns.append(k)
            learned_on = d
    at = np.asarray(learns, dtype=np.int64)
    first, stop = bounds[lo[at]], bounds[at]
    sizes = stop - first
    rows = np.repeat(first - np.r_[0, np.cumsum(sizes)[:-1]], sizes) + np.arange(sizes.sum())
    which = np.repeat(np.arange(len(at)), sizes) * 2**32 + (cell[rows] + 2**31)
    pairs, of_pair = np.unique(which, return_inverse=True)
    totals = np.bincount(of_pair, weights=count[rows], minlength=len(pairs)).astype(np.int64)
    learn, learned_cell = pairs >> 32, (pairs & (2**32 - 1)) - 2**31
    # ActivityArea._learn for every learn: cells by count (then cell) until the share is held
    ranked = np.lexsort((learned_cell, -totals, learn))
    learn, learned_cell, totals = learn[ranked], learned_cell[ranked], totals[ranked]
    cuts = np.searchsorted(learn, np.arange(len(at) + 1))
    held = np.cumsum(totals)
    before = np.r_[0, held[:-1]] - np.r_[0, held][cuts[:-1]][learn]  # held before each cell
    share = np.array([a.limits.activity_share for a in areas])[vehicle[at]]
    kept = before < (share * np.add.reduceat(totals, cuts[:-1]) if len(at) else share)[learn]
    cuts = np.searchsorted(learn[kept], np.arange(len(at) + 1)).tolist()
    kept_cells = learned_cell[kept]
    centres, kept_list = cell_centres(kept_cells), kept_cells.tolist()
    epochs, far_r2 = [], []
    for j, k in enumerate(learns):
        area = areas[vehicle[k]]
        area.area = frozenset(kept_list[cuts[j] : cuts[j + 1]])
        area.centres, area.far, area.learned_on = centres[cuts[j] : cuts[j + 1]], {}, int(day[k])
        epochs.append((area.area, area.centres))
        far_r2.append(area.limits.unusual_far_r2)
    learned = np.full(n, -1, dtype=np.int64)
    learned[at] = np.arange(len(at))
    head = np.r_[True, vehicle[1:] != vehicle[:-1]]
    start = np.maximum.accumulate(np.where(head, np.arange(n), 0))
    latest = _previous(learned >= 0, start)  # the last learn before each day, or -1
    latest = np.where(learned >= 0, np.arange(n), latest)
    day_epoch = np.where(latest >= 0, learned[np.maximum(latest, 0)], -1)
    _leave_windows(areas, vehicle, day, lo, bounds, cell.tolist(), count.tolist())
    return epochs, far_r2, day_epoch


def _leave_windows(areas: list[Any], vehicle: np.ndarray, day: np.ndarray, lo: np.ndarray,
                   bounds: np.ndarray, cells: list[int], tallies: list[int]) -> None:  # fmt: skip
    """Each vehicle's :class:`ActivityArea` as its last day's roll and tallies left it."""
    lasts = np.r_[np.flatnonzero(np.diff(vehicle)), len(vehicle) - 1]
    edges, days = bounds.tolist(), day.tolist()
    for k, first in zip(lasts.tolist(), lo[lasts].tolist(), strict=True):
        area = areas[vehicle[k]]
        area.day, area.today = days[k], dict(zip(cells[edges[k]:edges[k + 1]],
                                                 tallies[edges[k]:edges[k + 1]], strict=True))
        area.days = deque((days[j], dict(zip(cells[edges[j]:edges[j + 1]],
                                             tallies[edges[j]:edges[j + 1]], strict=True)))
                          for j in range(first, k))  # fmt: skip
        totals: dict[int, int] = {}
        for _, today in area.days:
            for c, count in today.items():
                totals[c] = totals.get(c, 0) + count
        area.totals = totals


def _hold_epoch(detector: Any, epochs: list[tuple[frozenset[int], np.ndarray]],
                fars: dict[int, dict[int, bool]], epoch: int) -> None:  # fmt: skip
    """The area (and far-cell cache) the detector held between two learns."""
    if epoch < 0:
        detector.area, detector.centres, detector.far = frozenset(), np.zeros((0, 3)), {}
    else:
        detector.area, detector.centres = epochs[epoch]
        detector.far = fars.setdefault(epoch, {})


# -- tracker pairs (rank 9), which read the trackers' kinds, limits and last reports -----------


def pairs(cols: Columns, order: OpenOrder) -> None:
    """Every judgement :class:`TrackerPair` makes (a pair within the window, a silent other,
    a bound, a stay or bound when the other's next fix arrives) computed for all fixes of
    two-tracker vehicles; Python runs the detector's verdicts that can change its state: every
    "apart" one, and "together" ones while an episode is open."""
    paired = cols.of_vehicle([m.pair is not None for m in cols.monitors], bool)
    vi = np.flatnonzero(cols.c["valid"] & paired)
    if not len(vi):
        return
    c = cols.c
    vehicle, time, slot = cols.vehicle[vi], cols.time[vi], c["slot"][vi]
    start = np.maximum.accumulate(np.where(np.r_[True, vehicle[1:] != vehicle[:-1]],
                                           np.arange(len(vi)), 0))  # fmt: skip
    before = [_previous(slot == s, start) for s in (0, 1)]
    other = np.where(slot == 0, before[1], before[0])  # the other tracker's last valid fix
    has = other >= 0
    o = np.maximum(other, 0)
    g_o, g_f = vi[o], vi
    lag = time - time[o]
    c2 = _chord2(c, g_f, g_o)
    lim = {name: cols.limits(name)[vi] for name in
           ("mismatch_m", "mismatch_r2", "mismatch_stay_r2", "stay_r2")}  # fmt: skip
    window = cols.limits("pair_window_s")[vi]
    in_window = has & (lag <= window)
    allowed = _allowed_chord2(lim["mismatch_m"], np.where(in_window, lag, 0))
    other_any = c["slots_before"][g_f, 1 - slot]  # its last report, valid or not
    silent = has & ~in_window & (
        time - cols.time[np.maximum(other_any, 0)] - cols.tracker("silence", vi, 1 - slot) > 0
    ) & (c2 > lim["mismatch_r2"])
    reach = TrackerPair._BOUND_MPS * lag  # how far the car may have gone since the other's fix
    bound = has & ~in_window & ~silent & _beyond(c2, lim["mismatch_m"], reach)
    other_wired = cols.tracker("wired", vi, 1 - slot)
    waits = has & ~in_window & ~silent & ~bound & other_wired
    # a waiting fix is judged at the other tracker's next valid fix (if it kept it: 64 newest)
    following = [_following(slot == s, vehicle) for s in (0, 1)]
    judge = np.where(slot == 0, following[1], following[0])
    waiting_count = [np.cumsum(waits & (slot == s)) for s in (0, 1)]
    count = np.where(slot == 0, waiting_count[0], waiting_count[1])
    count_at = np.where(slot == 0, waiting_count[0][np.maximum(judge - 1, 0)],
                        waiting_count[1][np.maximum(judge - 1, 0)])  # fmt: skip
    judged = waits & (judge >= 0) & (count_at - count < TrackerPair._PENDING)
    j = np.maximum(judge, 0)
    g_j = vi[j]
    stay = judged & (_chord2(c, g_o, g_j) <= lim["stay_r2"]) & (
        time[j] - time[o] <= cols.tracker("limit_of", vi, 1 - slot)
    )
    c2_after = _chord2(c, g_f, g_j)
    stay_together = stay & (c2 <= lim["mismatch_r2"])
    stay_apart = stay & ~stay_together & (c2 > lim["mismatch_stay_r2"])
    bracket_apart = (
        judged
        & ~stay
        & _beyond(c2, lim["mismatch_m"], reach)
        & _beyond(c2_after, lim["mismatch_m"], TrackerPair._BOUND_MPS * (time[j] - time))
    )
    # events: (judging fix, 0 for a waiting fix judged there / 1 for its own, fix, other,
    # kind: 0 together, 1 apart, 2 silent; rule; when)
    direct = np.flatnonzero(in_window | silent | bound)
    kind_d = np.where(silent[direct], 2, np.where(bound[direct], 1,
                      (c2 > allowed)[direct].astype(np.int64)))  # fmt: skip
    rule_d = np.where(silent[direct], 3, np.where(bound[direct], 1, 0))
    late = np.flatnonzero(stay_together | stay_apart | bracket_apart)
    kind_l = np.where(stay_together[late], 0, 1)
    rule_l = np.where(bracket_apart[late], 1, 2)
    at = np.r_[direct, j[late]]
    sub = np.r_[np.ones(len(direct), np.int64), np.zeros(len(late), np.int64)]
    fix = np.r_[direct, late]
    kind = np.r_[kind_d, kind_l]
    rule = np.r_[rule_d, rule_l]
    ranked = np.lexsort((fix, sub, at))
    at, fix, kind, rule = at[ranked], fix[ranked], kind[ranked], rule[ranked]
    _verdicts(cols, order, vi, at, fix, o[fix], kind, rule)
    _end_pairs(cols, vi, vehicle, waits & (judge < 0), slot)


_RULES = ("pair", "bound", "stay", "silent")


def _verdicts(cols: Columns, order: OpenOrder, vi: np.ndarray, at: np.ndarray, fix: np.ndarray,
              other: np.ndarray, kind: np.ndarray, rule: np.ndarray) -> None:  # fmt: skip
    """Run the verdicts in order, skipping "together" ones while no episode is open (they
    change nothing then)."""
    notable = np.flatnonzero(kind != 0)
    following = np.searchsorted(notable, np.arange(len(kind) + 1))
    next_notable = np.r_[notable, len(kind)][following]
    soon = np.unique(np.r_[notable, np.minimum(notable + 1, len(kind) - 1)])  # most of the run
    cols.prepare(vi[np.concatenate([fix[soon], other[soon], at[soon]])])
    at_l, fix_l, other_l, kind_l, rule_l = (a.tolist() for a in (at, fix, other, kind, rule))
    k, m = 0, len(kind_l)
    while k < m:
        pair = cols.monitors[cols.vehicle[vi[fix_l[k]]]].pair
        if kind_l[k] == 0 and pair.apart_since is None and not pair.alerted:
            k = int(next_notable[k])
            continue
        judged, beside = cols.fix(int(vi[fix_l[k]])), cols.fix(int(vi[other_l[k]]))
        when = cols.time[vi[at_l[k]]]
        if kind_l[k] == 2:
            pair._mismatch(judged, beside, judged.time, at=judged.time, rule="silent")
        else:
            pair._verdict(judged, beside, kind_l[k] == 1, at=int(when), rule=_RULES[rule_l[k]])
        order.mark(int(vi[at_l[k]]), 9)
        k += 1


def _end_pairs(cols: Columns, vi: np.ndarray, vehicle: np.ndarray, unjudged: np.ndarray,
               slot: np.ndarray) -> None:  # fmt: skip
    """Each tracker's last valid fix, and the fixes still waiting for the other's next."""
    for monitor, fixes in cols.last_valid_of_devices:
        if monitor.pair is not None:
            monitor.pair.last.update(fixes)
    waiting = vi[np.flatnonzero(unjudged)]
    cols.prepare(waiting)
    for w in waiting.tolist():
        fix = cols.fix(w)
        pending = cols.monitors[cols.vehicle[w]].pair.pending
        queue = pending.get(fix.device_id)
        if queue is None:
            queue = pending[fix.device_id] = deque(maxlen=TrackerPair._PENDING)
        queue.append(fix)


def _allowed_chord2(mismatch_m: np.ndarray, lag: np.ndarray) -> np.ndarray:
    """``chord2_of_m(mismatch_m + _LAG_MPS · lag)`` per fix, as the detector computes it (in
    Python floats), from a table over the few thresholds and the lags within the window."""
    values, of_value = np.unique(mismatch_m, return_inverse=True)
    lags = range(int(lag.max()) + 1)
    table = np.array(
        [[chord2_of_m(m + TrackerPair._LAG_MPS * k) for k in lags] for m in values.tolist()]
    )
    return table[of_value, lag]


def _beyond(c2: np.ndarray, mismatch_m: np.ndarray, reach_m: np.ndarray) -> np.ndarray:
    """:meth:`TrackerPair._beyond` over arrays."""
    far = mismatch_m + reach_m
    return c2 * TrackerPair._R2 > far * far


def _following(mask: np.ndarray, vehicle: np.ndarray) -> np.ndarray:
    """For each position, the next later position of the same vehicle where ``mask``, or -1."""
    n = len(mask)
    marked = np.minimum.accumulate(np.where(mask, np.arange(n), n)[::-1])[::-1]
    following = np.r_[marked[1:], n]
    ok = following < n
    ok[ok] = vehicle[following[ok]] == vehicle[ok]
    return np.where(ok, following, -1)
