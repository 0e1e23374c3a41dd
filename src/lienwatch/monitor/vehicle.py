"""Per-vehicle state machines: every single-vehicle detector, updated once per fix, O(1).

A :class:`VehicleMonitor` reads its vehicle's fixes in time order (the engine reorders them)
and calls each detector. Detectors only keep the state they need (the last fix per device,
the current stay, a few learned places, a day's cell counts), so a fix costs a handful of
comparisons. Distances are squared chords of unit vectors compared with thresholds converted
once (:func:`~lienwatch.domain.geo.chord2_of_m`). What a detector concludes depends only on
the ordered fixes, never on when the engine happened to call it, so streaming equals batch.

Each detector family has a module of its own in :mod:`lienwatch.monitor.detectors`. Every
detector, and this class, keeps its state in ``__slots__``: streaming takes a fleet's fixes in
time order, so a vehicle's state has gone cold between two of its fixes, and a slotted object
holds its fields in its own cache lines where an instance dict spreads them over more (the
streaming run took a fifth less CPU: docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from lienwatch.config import MonitorThresholds
from lienwatch.monitor.detectors.activity_area import ActivityArea
from lienwatch.monitor.detectors.alarms import Alarms
from lienwatch.monitor.detectors.base import NEVER, Emitter, Limits, place_at
from lienwatch.monitor.detectors.jumps import Jumps
from lienwatch.monitor.detectors.liveness import Liveness
from lienwatch.monitor.detectors.long_stay import Places, Stays
from lienwatch.monitor.detectors.nights import Nights
from lienwatch.monitor.detectors.region import Region
from lienwatch.monitor.detectors.risk_zones import RiskZones
from lienwatch.monitor.detectors.tracker_pair import TrackerPair
from lienwatch.monitor.lifecycle import AlertBook
from lienwatch.monitor.model import DeviceSpec, Fix, VehicleSpec
from lienwatch.monitor.zones import Zone


class VehicleMonitor:
    """All single-vehicle detectors of one vehicle, fed its fixes in time order."""

    __slots__ = (
        "alarms", "area", "invalid", "jumps", "liveness", "nights", "out", "pair", "region",
        "stays", "zones"
    )

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
        self.invalid = 0

    def add_device(self, device: DeviceSpec) -> None:
        """A tracker seen for the first time (replay without a devices file)."""
        self.liveness.add_device(device)
        if self.pair is None and len(self.liveness.limit) > 1:
            self.pair = TrackerPair(self.out, self.liveness)

    def respec(
        self,
        spec: VehicleSpec,
        devices: Sequence[DeviceSpec],
        thresholds: MonitorThresholds,
        *,
        region: int | None,
    ) -> None:
        """Go on under a changed spec (home, permitted region or area, product, time zone)
        with everything learned kept: stays, places, nights, the activity area, open
        conditions. A stay's and the trackers' silence clocks run on to the new lengths;
        each detector reads the other new figures from the vehicle's next fix: thresholds, home
        and permitted region (a vehicle outside the new one is judged
        outside from then; one without a booked region keeps the province it learned)."""
        out, old = self.out, self.out.spec
        out.spec = spec
        if thresholds != out.thresholds:
            out.thresholds, out.limits = thresholds, Limits.of(thresholds)  # re-tunes them
            self.area.far = {}  # judged with the old distance
            if self.stays.due != NEVER:  # the stay's clock runs on to the new length
                self.stays.due = self.stays.since + out.limits.long_stay_s
            for device in devices:
                self.liveness.add_device(device)
            self.liveness.rejudge()
        if spec.home != old.home:
            self.nights.home = place_at(*spec.home, visits=0) if spec.home else None
            if spec.home is not None:
                self.stays.places.places.append(
                    place_at(*spec.home, visits=out.limits.place_known_visits)
                )
        self.region.area = spec.area
        if region is not None or spec.area is not None:
            self.region.region = region

    @property
    def next_deadline(self) -> float:
        return min(self.liveness.next_deadline, self.stays.due)

    def fire_due(self, until: float) -> None:
        """Raise the silences, and the stay turning long, due before ``until`` (the engine's
        clock), in time order."""
        if self.stays.due < min(until, self.liveness.next_deadline):
            self.stays.fire_due()
        if self.liveness.next_deadline < until:
            self.liveness.fire_due(until)
        if self.stays.due < until:
            self.stays.fire_due()

    def on_fix(self, fix: Fix) -> None:
        """Update every detector with the vehicle's next fix in time order."""
        if self.liveness.next_deadline < fix.time or self.stays.due < fix.time:
            self.fire_due(fix.time)
        self.liveness.on_fix(fix)
        if fix.alarms:
            self.alarms.on_fix(fix)
        if not fix.valid:
            self.invalid += 1  # counted, but a fix without usable coordinates moves nothing
            return
        self.out.last_valid = fix
        self.jumps.on_fix(fix)
        self.stays.on_fix(fix)
        if fix.zone >= 0 or self.zones.current != -1:  # -2: in a zone taken out since
            self.zones.on_fix(fix)
        self.region.on_fix(fix)
        self.nights.on_fix(fix)
        self.area.on_fix(fix)
        if self.pair is not None:
            self.pair.on_fix(fix)
