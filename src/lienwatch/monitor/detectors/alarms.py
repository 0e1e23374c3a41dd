"""Tracker alarms as alerts: ``power_cut``, ``gnss_antenna_cut`` and ``device_removed`` from a
``removal`` or ``tamper`` alarm."""

from __future__ import annotations

from typing import ClassVar

from lienwatch.monitor.detectors.base import Emitter, position_of
from lienwatch.monitor.detectors.liveness import Liveness
from lienwatch.monitor.model import AlertType, Fix, iso_utc


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
            position = position_of(fix) if fix.valid else None
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
