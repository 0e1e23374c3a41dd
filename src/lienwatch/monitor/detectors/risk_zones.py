"""``risk_zone_visit``: dwelling in a risk zone (pawnshop, used-car market, ...)."""

from __future__ import annotations

from collections.abc import Sequence

from lienwatch.monitor.detectors.base import Emitter, Limits, position_of
from lienwatch.monitor.detectors.long_stay import Stays
from lienwatch.monitor.model import AlertType, Fix, iso_utc
from lienwatch.monitor.zones import Zone


class RiskZones:
    """``risk_zone_visit``: inside one zone for longer than the dwell; resolves on leaving.

    A zone visit at one of the vehicle's known places (home or work inside a market's
    polygon) is routine, not a risk, and raises nothing."""

    __slots__ = ("alerted", "current", "dwell_s", "first", "out", "stays", "zones")

    def __init__(self, out: Emitter, zones: Sequence[Zone], stays: Stays) -> None:
        self.out = out
        self.zones = zones
        self.stays = stays
        self.current = -1  # the zone's index, -1 outside any, -2 in one taken out since
        self.first: Fix | None = None  # the first fix in the current zone (or outside any)
        self.alerted = False
        out.keep_tuned(self)

    def tune(self, limits: Limits) -> None:
        self.dwell_s = limits.zone_dwell_s

    def on_fix(self, fix: Fix) -> None:
        zone = fix.zone
        if zone != self.current:
            if self.alerted:
                self.out.resolve(AlertType.RISK_ZONE_VISIT, fix.time)
            self.current, self.first, self.alerted = zone, fix, False
        if zone < 0 or self.alerted:
            return
        entered = self.first.time if self.first is not None else 0
        if fix.time - entered >= self.dwell_s:
            self.alerted = True
            anchor = self.stays.anchor
            if anchor is not None and self.stays.places.known_near(anchor):
                return
            info = self.zones[zone]
            self.out.raise_(
                AlertType.RISK_ZONE_VISIT,
                start=entered,
                at=fix.time,
                device_id=fix.device_id,
                position=position_of(fix),
                fixes=[f for f in (self.first, fix) if f is not None],
                stay={"from": iso_utc(entered), "to": iso_utc(fix.time),
                      "minutes": round((fix.time - entered) / 60)},
                evidence={
                    "zone_id": info.zone_id,
                    "category": info.category,
                    "name": info.name,
                    "minutes": round((fix.time - entered) / 60),
                },
            )
