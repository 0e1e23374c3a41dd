"""The streaming monitor: fixes in any order (within the reorder window), alerts out.

:class:`Monitor` enriches each batch of fixes with vectorized lookups (validity, province,
risk zone, local time, unit vectors), holds them per vehicle until the reorder window has
passed, and hands them in time order to the vehicle's :class:`VehicleMonitor`. A tracker
alarm (power cut, removal, tamper, antenna cut) is not held: its alert is raised as it
arrives (:meth:`~lienwatch.monitor.detectors.alarms.Alarms.on_arrival`), the same alert the
ordered pass raises later. A fix older
than what a vehicle has already processed is dropped and counted (``late``); so is a repeat of
a (device, time) already seen. :meth:`Monitor.advance` is the clock: it releases held fixes
and raises silences (``device_offline``, ``device_removed``) whose deadline has passed.
Feeding a whole file at once gives exactly what feeding it fix by fix gives.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from lienwatch.config import MonitorSettings
from lienwatch.domain.geo import unit_vectors
from lienwatch.domain.positions import PositionColumns
from lienwatch.domain.provinces import OUTSIDE, ProvinceIndex
from lienwatch.monitor.cluster import find_clusters
from lienwatch.monitor.columnar import Columns, OpenOrder, run_passes, sort_order
from lienwatch.monitor.detectors.activity_area import activity_cells
from lienwatch.monitor.detectors.base import StayRecord, evidence_of
from lienwatch.monitor.lifecycle import AlertBook
from lienwatch.monitor.model import (
    Alert,
    AlertType,
    DeviceSpec,
    Fix,
    MonitorInputError,
    VehicleSpec,
    iso_utc,
)
from lienwatch.monitor.regions import RegionLibrary
from lienwatch.monitor.vehicle import VehicleMonitor
from lienwatch.monitor.zones import ZoneLibrary

#: A moment before any fix: a clock not started, nothing forgotten yet.
BEFORE_ANY = -(2**62)
_NOTHING = (BEFORE_ANY, "")  # a slot's ``released`` before its first fix


@dataclass(slots=True)
class _Slot:
    monitor: VehicleMonitor
    held: list[tuple[int, str, int, Fix]] = field(default_factory=list)
    newest: int = BEFORE_ANY
    released: tuple[int, str] = _NOTHING


class Monitor:
    """All detectors over a fleet; see the module docstring for the ordering contract."""

    def __init__(
        self,
        devices: Sequence[DeviceSpec] = (),
        vehicles: Sequence[VehicleSpec] = (),
        *,
        settings: MonitorSettings | None = None,
        zones: ZoneLibrary | None = None,
        regions: RegionLibrary | None = None,
        provinces: ProvinceIndex,
    ) -> None:
        """Raises MonitorInputError for a vehicle whose ``area`` is not in ``regions``."""
        self.settings = settings or MonitorSettings()
        self.zones = zones
        self.regions = regions
        self._check_areas(vehicles)
        self.provinces = provinces
        self.book = AlertBook(provinces.provinces)
        self.book.rule_set = self.settings.rule_set
        self.counts: Counter[str] = Counter()
        self._codes = [p.code for p in provinces.provinces]
        self._vehicle_specs = {v.vehicle_id: v for v in vehicles}
        self._devices = {d.device_id: d for d in devices}
        self._devices_of = _devices_by_vehicle(self._devices.values())
        self._loans = {v.loan_id: v for v in vehicles if v.loan_id}
        self._slots: dict[str, _Slot] = {}
        self._seq = itertools.count()
        self._clock = BEFORE_ANY
        #: The groups (vehicles, start) an hourly pass saw ended, and when: not raised again.
        self._clustered: dict[tuple[frozenset[str], int], int] = {}
        #: The newest end of a long stay forgotten (``_forget_stays``): a group that began
        #: before it may be what is left of one whose member was forgotten.
        self._forgotten_until = BEFORE_ANY
        #: The long stays of vehicles other monitors watch (a scaled-out worker's other
        #: partitions): ``cluster`` compares them with this monitor's own and raises its
        #: alerts on this monitor's vehicles only; their owners raise the rest.
        self.neighbours: Sequence[StayRecord] = ()
        #: The newest ``forgotten_until`` of those monitors, given with their stays: what is
        #: left of a group whose member a neighbour forgot is no new group here either.
        self.neighbours_forgotten_until = BEFORE_ANY

    @property
    def alerts(self) -> list[Alert]:
        """Every alert raised so far (open and closed), in the order they were opened; a
        long-running caller may have the book forget closed ones it saved."""
        return self.book.alerts

    # -- input -----------------------------------------------------------------------------

    def ingest(self, batch: PositionColumns) -> None:
        """Take fixes in any order; each is processed once the reorder window has passed.

        A call is walked vehicle by vehicle, each vehicle's fixes in the order they arrived
        (what happens to one depends on its vehicle's arrivals alone), so that a vehicle's
        state stays in the cache over its fixes, where in arrival order the fleet's other
        vehicles evict it between two of them. The alerts opened are then put in the order a
        call per fix opens them, so a call gives what one call per fix gives."""
        if not len(batch):
            return
        unique, device_of = factorize(batch.device_id)
        slot_of = self._slots_of(unique.tolist(), device_of)
        vehicles: dict[int, int] = {}
        vehicle_of = np.array([vehicles.setdefault(id(s), len(vehicles)) for s in slot_of])
        fixes = list(_tuples(self._columns(batch, unique, device_of)))
        window, devices = self.settings.reorder_window_s, device_of.tolist()
        opened = OpenOrder(self.book)  # by arrival, then by release (an alarm after its own)
        opened.global_of = np.arange(len(fixes))
        for arrival in np.argsort(vehicle_of[device_of], kind="stable").tolist():
            fix = fixes[arrival]
            slot = slot_of[devices[arrival]]
            if (fix.time, fix.device_id) <= slot.released:
                self.counts["late"] += 1
                continue
            heapq.heappush(slot.held, (fix.time, fix.device_id, next(self._seq), fix))
            if fix.time > slot.newest:
                slot.newest = fix.time
                self._release(slot, slot.newest - window, opened, arrival)
            if fix.alarms and (fix.time, fix.device_id) > slot.released:
                # an alarm is an event: its alert is raised now, not after the window
                slot.monitor.alarms.on_arrival(fix, _pending(slot))
                opened.mark(arrival, _ON_ARRIVAL)
        opened.restore()

    def _slots_of(self, unique: list[str], device_of: np.ndarray) -> list[_Slot]:
        """The slot of each device id in ``unique``, made in the order the batch first names
        them (as a walk in arrival order makes them: the order ``advance`` takes vehicles in)."""
        first_seen = np.unique(device_of, return_index=True)[1]
        for code in np.argsort(first_seen, kind="stable").tolist():
            self._slot(unique[code])
        return [self._slots[device] for device in unique]

    def replay(self, batch: PositionColumns) -> None:
        """Process a complete batch directly in (vehicle, time, device) order.

        The batch path: what :meth:`ingest` does once the window has passed, without holding
        fixes. Vehicles without earlier state run detector by detector over the columns
        (:mod:`lienwatch.monitor.columnar`), the others fix by fix. Call :meth:`flush`
        afterwards.
        """
        if not len(batch):
            return
        unique, device_of = factorize(batch.device_id)
        for device in unique.tolist():
            self._slot(device)
        names, vehicle_of = np.unique([self._slot_key(d) for d in unique.tolist()],
                                      return_inverse=True)  # fmt: skip
        order = sort_order(vehicle_of[device_of], batch.time, device_of)
        vehicle = vehicle_of[device_of[order]]
        slots = [self._slots[name] for name in names.tolist()]
        columnar = _columnar_vehicles(slots)
        rows = columnar[vehicle] & _before_alarms(batch.alarms[order] != "", vehicle, len(slots))
        time = np.asarray(batch.time, dtype=np.int64)[order]
        local = time + self._utc_offsets(self._specs(unique), device_of[order], time)
        back = _clock_back(local[rows], vehicle[rows])
        if len(back):  # a time-zone transition: those vehicles go fix by fix
            columnar[back] = False
            rows &= columnar[vehicle]
        opened = OpenOrder(self.book)
        if rows.any():
            columnar[:] = False
            columnar[vehicle[rows]] = True  # those with fixes before their first alarm
            opened.global_of = np.flatnonzero(rows)
            self._replay_columns(batch, order[rows], local[rows], unique, device_of,
                                 vehicle[rows], slots, columnar, opened)  # fmt: skip
            opened.seal()
        fallback = order[~rows]  # whole vehicles, and alarm vehicles from their first alarm
        if len(fallback):
            opened.global_of = np.flatnonzero(~rows)
            fixes = self._columns(batch.take(fallback), unique, device_of[fallback], local[~rows])
            self._replay_fixes(fixes, opened)
        opened.restore()

    def _replay_fixes(self, columns: dict[str, np.ndarray], opened: OpenOrder) -> None:
        """The per-fix batch path: each fix through its vehicle's monitor, in order."""
        slots, alerts = self._slots, self.book.alerts
        fixes = invalid = late = 0  # counted here, not per fix: this loop is the batch run
        for i, fix in enumerate(_tuples(columns)):
            slot = slots.get(fix.device_id) or self._slot(fix.device_id)
            key = (fix.time, fix.device_id)
            if key <= slot.released:
                late += 1
                continue
            slot.released = key
            slot.newest = fix.time
            fixes += 1
            if not fix.valid:
                invalid += 1
            slot.monitor.on_fix(fix)
            if len(alerts) != opened.seen:
                opened.mark(i, 0)
        for name, count in (("fixes", fixes), ("invalid", invalid), ("late", late)):
            if count:
                self.counts[name] += count

    def _replay_columns(
        self,
        batch: PositionColumns,
        index: np.ndarray,
        local: np.ndarray,
        unique: np.ndarray,
        device_of: np.ndarray,
        vehicle: np.ndarray,
        slots: list[_Slot],
        columnar: np.ndarray,
        opened: OpenOrder,
    ) -> None:
        """The columnar batch path over fresh vehicles: the fixes ``index`` of ``batch``, sorted
        by (vehicle, time, device), and their wall clock ``local``; ``vehicle`` indexes
        ``slots``, ``device_of`` ``unique``.

        The columns are built and the passes run over runs of whole vehicles of about
        ``_CHUNK`` fixes, one run after another: vehicles are independent, and arrays of that
        size stay in the cache and reuse their memory (the whole batch's columns at once cost
        twice the time, in cache misses and page faults)."""
        chosen = np.flatnonzero(columnar)
        code = np.full(len(slots), -1, dtype=np.int64)
        code[chosen] = np.arange(len(chosen))
        vehicle, dev = code[vehicle], device_of[index]
        time = np.asarray(batch.time, dtype=np.int64)[index]
        repeat = np.r_[False, (vehicle[1:] == vehicle[:-1]) & (time[1:] == time[:-1])
                       & (dev[1:] == dev[:-1])]  # fmt: skip
        if repeat.any():
            kept = ~repeat
            vehicle, time, dev, index = vehicle[kept], time[kept], dev[kept], index[kept]
            local = local[kept]
            opened.global_of = opened.global_of[kept]
        global_of = opened.global_of
        monitors = [slots[k].monitor for k in chosen.tolist()]
        ends = np.r_[np.flatnonzero(vehicle[1:] != vehicle[:-1]), len(vehicle) - 1]
        invalid = 0
        for lo, hi in _chunks(ends, _CHUNK):
            c = self._columns(batch.take(index[lo:hi]), unique, dev[lo:hi], local[lo:hi])
            first = int(vehicle[lo])
            c["vehicle"] = vehicle[lo:hi] - first
            opened.global_of = global_of[lo:hi]
            cols = Columns(c, monitors[first : int(vehicle[hi - 1]) + 1])
            run_passes(cols, opened)
            bad = ~c["valid"]
            invalid += int(bad.sum())
            counts = np.add.reduceat(bad, np.r_[0, cols.ends[:-1] + 1]).tolist()
            for end, count in zip((cols.ends + lo).tolist(), counts, strict=True):
                slot = slots[chosen[vehicle[end]]]
                slot.released = (int(time[end]), str(unique[dev[end]]))
                slot.newest = int(time[end])
                slot.monitor.invalid += count
        self.counts["fixes"] += len(vehicle)
        for name, count in (("invalid", invalid), ("late", int(repeat.sum()))):
            if count:
                self.counts[name] += count

    def update_fleet(self, devices: Sequence[DeviceSpec], vehicles: Sequence[VehicleSpec]) -> None:
        """Watch this fleet from now on (a running monitor's periodic reload of its view).

        New trackers and vehicles are watched from their next fix. A known vehicle whose spec
        changed keeps its state: its next alerts carry the new loan, borrower and exposure
        (its open alerts the new exposure), and its detectors judge its next fixes by the new
        home, permitted region or area, product thresholds and time zone
        (:meth:`VehicleMonitor.respec`). A vehicle that left the fleet (loan closed, trackers
        unbound) is forgotten, and so is one whose trackers were taken off: it starts afresh
        from its next fix. Raises MonitorInputError, changing nothing, for a vehicle whose
        ``area`` is unknown.
        """
        self._check_areas(vehicles)
        new_devices = {d.device_id: d for d in devices}
        new_specs = {v.vehicle_id: v for v in vehicles}
        old_sets, new_sets = _trackers(self._devices.values()), _trackers(devices)
        dropped: set[int] = set()
        for slot in list(self._unique_slots()):
            spec = slot.monitor.out.spec
            vehicle_id = spec.vehicle_id
            new_set = new_sets.get(vehicle_id, frozenset())
            new_spec = new_specs.get(vehicle_id) or VehicleSpec(vehicle_id)
            if not new_set or not old_sets.get(vehicle_id, new_set) <= new_set:
                dropped.add(id(slot))
                continue
            if _reshaped(spec, new_spec):
                slot.monitor.respec(
                    new_spec,
                    sorted(new_set, key=lambda d: d.device_id),
                    self.settings.for_product(new_spec.product),
                    region=self._region_of(new_spec),
                )
            slot.monitor.out.spec = new_spec
            if new_spec.exposure != spec.exposure:
                self.book.carry_exposure(vehicle_id, new_spec.exposure)
        self._slots = {key: s for key, s in self._slots.items() if id(s) not in dropped}
        self._devices = new_devices
        self._devices_of = _devices_by_vehicle(new_devices.values())
        self._vehicle_specs = new_specs
        self._loans = {v.loan_id: v for v in vehicles if v.loan_id}

    def use_references(self, zones: ZoneLibrary | None, regions: RegionLibrary | None) -> None:
        """Judge fixes from now on by these risk zones and permitted regions (a running
        monitor's reload of changed files). Every vehicle keeps its state: one in a zone
        that is still there (by ``zone_id``) stays in it, one in a zone taken out leaves it
        at its next fix. Raises MonitorInputError, changing nothing, for a watched vehicle
        whose ``area`` is not in ``regions``."""
        self._check_areas(list(self._vehicle_specs.values()), regions)
        self._take_references(zones, regions)

    def reconfigure(
        self,
        devices: Sequence[DeviceSpec],
        vehicles: Sequence[VehicleSpec],
        zones: ZoneLibrary | None,
        regions: RegionLibrary | None,
    ) -> None:
        """:meth:`use_references` and :meth:`update_fleet` at once (a fleet reload that
        brings new references): ``vehicles`` are checked against the new ``regions`` only, so
        a region taken out together with the areas naming it is no error. Raises
        MonitorInputError, changing nothing, for a vehicle whose ``area`` is not in
        ``regions``."""
        self._check_areas(vehicles, regions)
        self._take_references(zones, regions)
        self.update_fleet(devices, vehicles)

    def _take_references(self, zones: ZoneLibrary | None, regions: RegionLibrary | None) -> None:
        new = {zone.zone_id: k for k, zone in enumerate(zones.zones if zones else ())}
        for slot in self._unique_slots():
            detector = slot.monitor.zones
            if detector.current >= 0:
                detector.current = new.get(detector.zones[detector.current].zone_id, -2)
            detector.zones = zones.zones if zones else ()
        self.zones, self.regions = zones, regions

    def use_rules(self, settings: MonitorSettings) -> None:
        """Judge fixes from now on by the thresholds, product overrides and enabled types of
        ``settings`` (a running monitor taking a newly published alert-rule version). Every
        vehicle keeps its state (:meth:`VehicleMonitor.respec`): a stay's and its trackers'
        silence clocks run on to the new lengths, learned places and nights are kept, the
        other figures apply from its next fix; alerts opened from then on record
        ``settings.rule_set``."""
        self.settings = settings
        self.book.rule_set = settings.rule_set
        trackers = _trackers(self._devices.values())
        for slot in self._unique_slots():
            spec = slot.monitor.out.spec
            devices = sorted(trackers.get(spec.vehicle_id, ()), key=lambda d: d.device_id)
            slot.monitor.respec(spec, devices, settings.for_product(spec.product),
                                region=self._region_of(spec))  # fmt: skip

    def _check_areas(
        self, vehicles: Sequence[VehicleSpec], regions: RegionLibrary | None = None
    ) -> None:
        regions = self.regions if regions is None else regions
        for vehicle in vehicles:
            if vehicle.area is not None and (regions is None or vehicle.area not in regions):
                raise MonitorInputError(
                    f"area: vehicle {vehicle.vehicle_id}'s region {vehicle.area!r} is not in "
                    "the permitted regions"
                )

    def update_ltv(self, loan_id: str, ltv: float, at: int) -> None:
        """Servicing's loan-to-value for a loan: ``ltv_breach`` above the product's cap,
        resolved when it falls back under it."""
        vehicle = self._loans.get(loan_id)
        if vehicle is None:
            raise MonitorInputError(f"loan_id: unknown loan {loan_id!r}")
        thresholds = self.settings.for_product(vehicle.product)
        cap = thresholds.ltv_cap
        slot = self._slots.get(vehicle.vehicle_id)
        position = slot.monitor.out.position if slot else None
        if ltv <= cap:
            self.book.resolve_cause(vehicle.vehicle_id, AlertType.LTV_BREACH, at)
        elif thresholds.enabled["ltv_breach"]:
            self.book.raise_alert(
                AlertType.LTV_BREACH,
                vehicle,
                severity=thresholds.severities["ltv_breach"],
                start=at,
                at=at,
                device_id=None,
                position=position,
                evidence=evidence_of(
                    "ltv_breach", thresholds, details={"ltv": round(ltv, 4), "cap": cap}
                ),
            )

    # -- clock -----------------------------------------------------------------------------

    def advance(self, now: int) -> None:
        """The clock reached ``now``: process held fixes and silences older than the window."""
        watermark = now - self.settings.reorder_window_s
        for slot in self._unique_slots():
            self._release(slot, watermark)
            slot.monitor.fire_due(watermark)
        if watermark // 3_600 > self._clock // 3_600:
            self._raise_clusters()
            lookback_s = int(self.settings.cluster_lookback_days * 86_400)
            self._forget_stays(watermark - lookback_s)  # each stay is in one pass at least
        self._clock = max(self._clock, watermark)

    def flush(self, now: int | None = None, *, clusters: bool = True) -> None:
        """End of input: process every held fix, then silences due before ``now`` (default:
        the newest fix seen), then clusters (unless a caller merges partitions first)."""
        slots = list(self._unique_slots())
        newest = max((s.newest for s in slots), default=0)
        until = newest if now is None else now
        for slot in slots:
            self._release(slot, 2**62)
            slot.monitor.fire_due(until)
        if clusters:
            self._raise_clusters()

    # -- internals -------------------------------------------------------------------------

    @property
    def forgotten_until(self) -> int:
        """The newest end of a long stay this monitor forgot (what the monitors of other
        partitions take as their ``neighbours_forgotten_until``)."""
        return self._forgotten_until

    def long_stays(self) -> list[StayRecord]:
        """The long stays ``cluster`` compares: every vehicle's, those still going or ended
        within ``cluster_lookback_days`` of the clock at its last hourly pass (what another
        monitor needs for clusters with this one's vehicles)."""
        return [s for slot in self._unique_slots() for s in slot.monitor.stays.long_stays]

    def _forget_stays(self, before: int) -> None:
        """Forget the long stays that ended before ``before``, and the ended groups they were
        in: the hourly pass reads only the others, so its cost and the state stay bounded in
        a monitor that runs for months. A vehicle keeps its stays in time order and at most
        its last one is going on."""
        for slot in self._unique_slots():
            stays = slot.monitor.stays
            kept = stays.long_stays
            if kept and kept[0].ended and kept[0].last < before:
                forgotten = [s for s in kept if s.ended and s.last < before]
                stays.long_stays = kept[len(forgotten) :]  # the forgotten come first
                self._forgotten_until = max(self._forgotten_until, forgotten[-1].last)
        self._clustered = {group: end for group, end in self._clustered.items() if end >= before}

    def _raise_clusters(self) -> None:
        stays = self.long_stays()
        own: Container[str] | None = None
        if self.neighbours:
            own = {s.vehicle_id for s in stays} | set(self._vehicle_specs)
            stays += [s for s in self.neighbours if s.vehicle_id not in own]
        forgotten_until = max(self._forgotten_until, self.neighbours_forgotten_until)
        raise_clusters(self.book, stays, self.settings, self._vehicle_spec, self._clustered,
                       only=own, new_since=forgotten_until)  # fmt: skip

    def _unique_slots(self) -> Iterable[_Slot]:
        seen: set[int] = set()
        for slot in self._slots.values():
            if id(slot) not in seen:
                seen.add(id(slot))
                yield slot

    def _release(
        self, slot: _Slot, watermark: int, opened: OpenOrder | None = None, arrival: int = 0
    ) -> None:
        """Process the fixes ``slot`` holds up to ``watermark``; within an ``ingest`` call, the
        alerts each opens marked in ``opened`` as opened at its row ``arrival``, by release."""
        held = slot.held
        released = 0
        while held and held[0][0] <= watermark:
            time, device, _, fix = heapq.heappop(held)
            if (time, device) <= slot.released:
                self.counts["late"] += 1
                continue
            slot.released = (time, device)
            self._process(slot.monitor, fix)
            if opened is not None and len(opened.book.alerts) != opened.seen:
                opened.mark(arrival, released)
            released += 1

    def _process(self, monitor: VehicleMonitor, fix: Fix) -> None:
        self.counts["fixes"] += 1
        if not fix.valid:
            self.counts["invalid"] += 1
        monitor.on_fix(fix)

    def _slot_key(self, device_id: str) -> str:
        device = self._devices.get(device_id)
        return device.vehicle_id if device else device_id

    def _vehicle_spec(self, vehicle_id: str) -> VehicleSpec:
        return self._vehicle_specs.get(vehicle_id) or VehicleSpec(vehicle_id)

    def _slot(self, device_id: str) -> _Slot:
        """The vehicle slot of a device (shared by the vehicle's devices), made on first use.

        A device missing from the fleet is its own vehicle: a wired tracker whose permitted
        region is the province of its first valid fix.
        """
        slot = self._slots.get(device_id)
        if slot is not None:
            return slot
        device = self._devices.get(device_id)
        if device is None:
            device = self._devices[device_id] = DeviceSpec(device_id, device_id)
            self._devices_of.setdefault(device_id, []).append(device)
            self.counts["unknown_devices"] += 1
        slot = self._slots.get(device.vehicle_id)
        if slot is None:
            slot = self._new_slot(self._vehicle_spec(device.vehicle_id))
            self._slots[device.vehicle_id] = slot
        if device_id not in slot.monitor.liveness.limit:
            slot.monitor.add_device(device)
        self._slots[device_id] = slot
        return slot

    def _new_slot(self, spec: VehicleSpec) -> _Slot:
        devices = self._devices_of.get(spec.vehicle_id, [])
        monitor = VehicleMonitor(
            spec,
            devices,
            self.settings.for_product(spec.product),
            self.book,
            region=self._region_of(spec),
            zones=self.zones.zones if self.zones else (),
            province_codes=self._codes,
        )
        return _Slot(monitor)

    def _region_of(self, spec: VehicleSpec) -> int | None:
        """The index of the vehicle's booked province, None without one."""
        if spec.region is None:
            return None
        return self._codes.index(self.provinces.by_code(spec.region).code)

    def _columns(
        self,
        batch: PositionColumns,
        unique: np.ndarray,
        device_of: np.ndarray,
        local: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """The :class:`Fix` fields of the batch as arrays, derived fields computed, and
        ``dev``: each fix's index into ``unique``, the distinct device ids. ``local``, the
        wall clock of each fix, is computed unless the caller has it (the batch path reads
        it for the whole batch first)."""
        n = len(batch)
        if n == 0:
            return {name: np.zeros(0) for name in (*Fix._fields, "dev")}
        lat = np.asarray(batch.lat, dtype=np.float64)
        lon = np.asarray(batch.lon, dtype=np.float64)
        valid = usable(lat, lon, np.asarray(batch.valid, dtype=bool))
        province = np.full(n, OUTSIDE, dtype=np.int64)
        province[valid] = self.provinces.lookup(lat[valid], lon[valid])
        zone = np.full(n, -1, dtype=np.int64)
        if self.zones is not None and len(self.zones):
            zone[valid] = self.zones.lookup(lat[valid], lon[valid])
        x, y, z = unit_vectors(np.where(valid, lat, 0.0), np.where(valid, lon, 0.0))
        devices = unique.astype(object)[device_of]  # shares the id strings: no copy of each
        specs = self._specs(unique)
        time = np.asarray(batch.time, dtype=np.int64)
        if local is None:
            local = time + self._utc_offsets(specs, device_of, time)
        cells = activity_cells(np.where(valid, lat, 0.0), np.where(valid, lon, 0.0))
        in_area = self._in_areas(specs, device_of, lat, lon, valid)
        return {
            "time": time, "device_id": devices, "valid": valid, "lat": lat, "lon": lon,
            "x": x, "y": y, "z": z, "province": province, "zone": zone, "local": local,
            "cell": cells, "alarms": np.asarray(batch.alarms), "in_area": in_area,
            "dev": device_of,
        }  # fmt: skip

    def _specs(self, unique: np.ndarray) -> list[VehicleSpec]:
        """The vehicle of each device id in ``unique``."""
        return [self._vehicle_spec(self._slot_key(d)) for d in unique.tolist()]

    def _in_areas(
        self,
        specs: list[VehicleSpec],
        device_of: np.ndarray,
        lat: np.ndarray,
        lon: np.ndarray,
        valid: np.ndarray,
    ) -> np.ndarray:
        """Whether each valid fix lies in its vehicle's lender-defined area (True without);
        ``specs`` are the vehicles of the distinct devices, ``device_of`` each fix's."""
        inside = np.ones(len(device_of), dtype=bool)
        if self.regions is None:
            return inside
        names, area_of = np.unique([s.area or "" for s in specs], return_inverse=True)
        areas = area_of[device_of]
        for code, name in enumerate(names.tolist()):
            if not name:
                continue
            rows = np.flatnonzero((areas == code) & valid)
            inside[rows] = self.regions.contains(name, lat[rows], lon[rows])
        return inside

    def _utc_offsets(
        self, specs: list[VehicleSpec], device_of: np.ndarray, time: np.ndarray
    ) -> np.ndarray:
        """Seconds to add to each UTC time for the wall clock of its vehicle's time zone."""
        names, zone_of = np.unique([s.time_zone for s in specs], return_inverse=True)
        zones = zone_of[device_of]
        offsets = np.zeros(len(time), dtype=np.int64)
        for code, name in enumerate(names.tolist()):
            rows = np.flatnonzero(zones == code) if len(names) > 1 else slice(None)
            offsets[rows] = _zone_offsets(ZoneInfo(name), time[rows])
        return offsets


_CHUNK = 100_000  # fixes per run of vehicles on the columnar path (see _replay_columns)
_ON_ARRIVAL = 2**62  # the rank of an alarm's alert raised on arrival: after what it released


def _chunks(ends: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Row ranges of whole vehicles of about ``size`` fixes (``ends``: each vehicle's last row)."""
    cuts = ends[np.r_[np.flatnonzero(np.diff(ends // size)), len(ends) - 1]] + 1
    return list(zip(np.r_[0, cuts[:-1]].tolist(), cuts.tolist(), strict=True))


def _fresh(slot: _Slot) -> bool:
    """Whether a vehicle's monitor has seen no fix yet (nothing processed, nothing held)."""
    return slot.released == _NOTHING and not slot.held and not slot.monitor.liveness.last_fix


def _columnar_vehicles(slots: list[_Slot]) -> np.ndarray:
    """Which vehicles the columnar path may take: no earlier state, at most two trackers."""
    return np.array([_fresh(s) and len(s.monitor.liveness.limit) <= 2 for s in slots],
                    dtype=bool)  # fmt: skip


def _before_alarms(alarm: np.ndarray, vehicle: np.ndarray, vehicles: int) -> np.ndarray:
    """Whether each fix (sorted by vehicle, time, device) comes before its vehicle's first
    tracker alarm in the batch: the columnar path leaves the state the per-fix path would,
    so the per-fix path takes over from the first alarm on (:class:`Alarms` raises from
    fix to fix, and a power cut moves the liveness deadlines)."""
    index = np.arange(len(vehicle))
    first = np.full(vehicles, len(vehicle), dtype=np.int64)
    np.minimum.at(first, vehicle[alarm], index[alarm])
    return index < first[vehicle]


def _clock_back(local: np.ndarray, vehicle: np.ndarray) -> np.ndarray:
    """The vehicles whose wall clock goes back between two fixes (sorted by vehicle, time)."""
    same = vehicle[1:] == vehicle[:-1]
    return np.unique(vehicle[1:][same & (local[1:] < local[:-1])])


def factorize(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(ids.astype(str), return_inverse=True)``, sorting only the first id of each
    run of equal ids: batches usually come grouped by device, which makes this O(n)."""
    starts = np.r_[True, ids[1:] != ids[:-1]]
    unique, head_of = np.unique(np.asarray(ids[starts]).astype(str), return_inverse=True)
    return unique, head_of[np.cumsum(starts) - 1]


def _tuples(columns: dict[str, np.ndarray]) -> Iterable[Fix]:
    return map(Fix._make, zip(*(columns[name].tolist() for name in Fix._fields), strict=True))


def _pending(slot: _Slot) -> list[Fix]:
    """The fixes a slot holds as the ordered pass will process them: in (time, device)
    order, a repeat of a (device, time) left out (it will be dropped as late)."""
    pending, last = [], slot.released
    for time, device, _, fix in sorted(slot.held):
        if (time, device) > last:
            pending.append(fix)
            last = (time, device)
    return pending


def _trackers(devices: Iterable[DeviceSpec]) -> dict[str, frozenset[DeviceSpec]]:
    """Vehicle id -> its trackers."""
    found: dict[str, set[DeviceSpec]] = {}
    for device in devices:
        found.setdefault(device.vehicle_id, set()).add(device)
    return {vehicle: frozenset(specs) for vehicle, specs in found.items()}


def _devices_by_vehicle(devices: Iterable[DeviceSpec]) -> dict[str, list[DeviceSpec]]:
    """Vehicle id -> its trackers, in the order given."""
    found: dict[str, list[DeviceSpec]] = {}
    for device in devices:
        found.setdefault(device.vehicle_id, []).append(device)
    return found


def _reshaped(old: VehicleSpec, new: VehicleSpec) -> bool:
    """Whether a vehicle's detectors must be told of ``new`` (they read these at birth)."""
    return (old.home, old.region, old.area, old.product, old.time_zone) != (
        new.home, new.region, new.area, new.product, new.time_zone
    )  # fmt: skip


def _zone_offsets(zone: ZoneInfo, time: np.ndarray) -> np.ndarray:
    def offset(t: int) -> int:
        delta = datetime.fromtimestamp(t, zone).utcoffset()
        return int(delta.total_seconds()) if delta else 0

    first, last = offset(int(time.min())), offset(int(time.max()))
    if first == last and offset(int(np.median(time))) == first:
        return np.full(len(time), first, dtype=np.int64)  # no transition in range (China)
    hours = time // 3_600
    unique, inverse = np.unique(hours, return_inverse=True)
    return np.array([offset(int(h) * 3_600) for h in unique], dtype=np.int64)[inverse]


def usable(lat: np.ndarray, lon: np.ndarray, flagged_valid: np.ndarray) -> np.ndarray:
    """Fixes whose coordinates may move a vehicle's state: flagged valid, finite, in range and
    not the (0, 0) a tracker without a fix sends."""
    with np.errstate(invalid="ignore"):
        in_range = (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    return flagged_valid & in_range & ~((lat == 0) & (lon == 0))


def raise_clusters(
    book: AlertBook,
    stays: Sequence[StayRecord],
    settings: MonitorSettings,
    vehicle: Callable[[str], VehicleSpec],
    ended: dict[tuple[frozenset[str], int], int] | None = None,
    only: Container[str] | None = None,
    new_since: int | None = None,
) -> None:
    """Raise (or update) a ``cluster`` alert on every member of every group of ``stays``
    (the members in ``only`` when given: the vehicles of this monitor).

    ``ended`` holds the groups (their vehicles and start, with their end) already reported
    ended by an earlier pass of the same monitor; they are skipped, and the groups this pass
    sees ended are added, so a clock that runs this every hour does not raise an ended group
    again (the same vehicles together again later are another group). A group that began
    before ``new_since`` (the newest end of a stay the monitor forgot) only updates or ends the
    alerts its members have open: it may be what is left of a group whose forgotten member
    ended it, which a pass over every stay never raises.
    """
    thresholds = settings.thresholds
    need_s = int(thresholds.cluster_h * 3_600)
    for group in find_clusters(stays, thresholds):
        names = sorted(s.vehicle_id for s in group.members)
        if ended is not None and group.end is not None:
            key = (frozenset(names), group.start)
            if key in ended:
                continue
            ended[key] = group.end
        lat = sum(s.anchor.lat for s in group.members) / len(group.members)
        lon = sum(s.anchor.lon for s in group.members) / len(group.members)
        remainder = new_since is not None and group.start < new_since
        for member, since in zip(group.members, group.since, strict=True):
            if only is not None and member.vehicle_id not in only:
                continue
            # what is left of a group whose forgotten member ended it raises nothing new
            stale = remainder and book.open_alert(member.vehicle_id, AlertType.CLUSTER) is None
            if thresholds.enabled["cluster"] and not stale:  # switched off: open ones still end
                evidence = evidence_of(
                    "cluster",
                    thresholds,
                    fixes=[s.anchor for s in group.members],
                    stay={"from": iso_utc(group.start), "to": iso_utc(member.last),
                          "at": [round(lon, 6), round(lat, 6)]},
                    details={
                        "vehicles": names,
                        "centre": [round(lon, 6), round(lat, 6)],
                        "together_since": iso_utc(group.start),
                    },
                )  # fmt: skip
                # opened as the pass that first saw the member in a part of the group would
                # have opened it, then repeated as this group (a repeat keeps the start)
                for start in sorted({since, group.start}):
                    book.raise_alert(
                        AlertType.CLUSTER,
                        vehicle(member.vehicle_id),
                        severity=thresholds.severities["cluster"],
                        start=start,
                        at=start + need_s,
                        device_id=member.anchor.device_id,
                        position=(member.anchor.lat, member.anchor.lon, member.anchor.province),
                        evidence=evidence,
                    )
            if group.end is not None:
                book.resolve_cause(member.vehicle_id, AlertType.CLUSTER, group.end)
