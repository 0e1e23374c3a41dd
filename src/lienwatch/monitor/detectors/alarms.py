"""Tracker alarms as alerts: ``power_cut``, ``gnss_antenna_cut`` and ``device_removed`` from a
``removal`` or ``tamper`` alarm.

An alarm is an event, not a position to reorder: the streaming engine calls
:meth:`Alarms.on_arrival` as soon as an alarm fix arrives, before the reorder window has
passed, and the alert is raised then. The ordered pass (:meth:`Alarms.on_fix`) later meets the
same fix and finds the alert already there (a repeat no later than its last update changes
nothing), so the alert is the one the batch run raises: same id, start, evidence and
``raised_at``, only known earlier. When what the held fixes before the alarm could still do
is not known (an older alarm of the same vehicle and type, a silence that may raise
``device_removed`` first), the early alert is the one the ordered pass will raise from the
fixes known so far; see "Alarms are events" in docs/monitor.md for the one case where they
differ.
"""

from __future__ import annotations

from collections.abc import Sequence
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

    __slots__ = ("liveness", "out")

    def __init__(self, out: Emitter, liveness: Liveness) -> None:
        self.out = out
        self.liveness = liveness

    def on_fix(self, fix: Fix) -> None:
        """The vehicle's next fix in time order (the ordered pass)."""
        for name, alert_type in self._alarms(fix):
            self._raise(fix, name, alert_type, position_of(fix) if fix.valid else None)
            if not fix.valid:  # raised on arrival: where the car was last seen before it
                self._place(fix, alert_type)
            if alert_type is AlertType.POWER_CUT:
                self.liveness.power_cut(fix)

    def on_arrival(self, fix: Fix, pending: Sequence[Fix]) -> None:
        """An alarm fix arrived; ``pending`` are the vehicle's fixes the ordered pass will
        process, in its order (``fix`` among them unless it repeats one). Raise now each alert
        type the ordered pass will open from them, from the earliest pending alarm of that
        type, unless an alert of that type is open already (the ordered pass repeats it) or,
        for ``device_removed``, a power cut's silence may raise it before (the ordered pass
        decides)."""
        for _, alert_type in self._alarms(fix):
            if self.out.book.open_alert(self.out.spec.vehicle_id, alert_type) is not None:
                continue
            if alert_type is AlertType.DEVICE_REMOVED and self._removal_may_come_first(
                fix, pending
            ):
                continue
            found = next(
                ((p, n) for p in pending for n, t in self._alarms(p) if t is alert_type), None
            )
            if found is not None:
                first, name = found
                self._raise(first, name, alert_type, _position_before(first, pending, self.out))

    def _raise(
        self,
        fix: Fix,
        name: str,
        alert_type: AlertType,
        position: tuple[float, float, int] | None,
    ) -> None:
        self.out.raise_(
            alert_type,
            start=fix.time,
            at=fix.time,
            device_id=fix.device_id,
            position=position,
            fixes=[fix],
            rule="device_removed.alarm" if alert_type is AlertType.DEVICE_REMOVED else None,
            evidence={"alarm": name, "alarm_at": iso_utc(fix.time)},
        )

    def _place(self, fix: Fix, alert_type: AlertType) -> None:
        """An alarm without coordinates raised on arrival was placed at the last fix known
        then; fixes taken before it may have arrived since: place it at the last of them."""
        alert = self.out.book.open_alert(self.out.spec.vehicle_id, alert_type)
        if alert is not None and (alert.start, alert.device_id) == _order(fix):
            self.out.book.place(alert, self.out.position)

    def _alarms(self, fix: Fix) -> list[tuple[str, AlertType]]:
        if not fix.alarms:
            return []
        names = fix.alarms.split(";")
        return [(n, self._TYPES[n]) for n in names if n in self._TYPES]

    def _removal_may_come_first(self, fix: Fix, pending: Sequence[Fix]) -> bool:
        """Whether the ordered pass may raise (or resolve) ``device_removed`` from a silence
        before it reaches ``fix``: a tracker removed by silence (its next report resolves),
        or a power cut whose silence deadline falls before ``fix``."""
        live = self.liveness
        if live.removed_by_silence:
            return True
        if any(deadline < fix.time for _, deadline in live.removal_due.values()):
            return True
        return any(
            "power_cut" in p.alarms.split(";")
            and p.time + live.silence.get(p.device_id, 0) < fix.time
            for p in pending
            if _order(p) < _order(fix)
        )


def _order(fix: Fix) -> tuple[int, str]:
    return (fix.time, fix.device_id)


def _position_before(
    fix: Fix, pending: Sequence[Fix], out: Emitter
) -> tuple[float, float, int] | None:
    """Where the ordered pass will place an alarm of ``fix``: its own coordinates when usable,
    else the last usable fix before it (pending ones first, then those processed)."""
    if fix.valid:
        return position_of(fix)
    earlier = [p for p in pending if p.valid and _order(p) < _order(fix)]
    return position_of(earlier[-1]) if earlier else out.position
