"""The alert lifecycle: one open alert per vehicle and type; repeats update it; causes that end
resolve it; people acknowledge, resolve or mark it a false positive.

A long-running monitor also uses the book as its working copy of the stored alerts: it takes
the alerts that changed since the last save (:meth:`AlertBook.take_changed`), continues the
alerts an earlier run left open (:meth:`AlertBook.seed`), learns people's decisions made in
the store (:meth:`AlertBook.apply`) and forgets closed alerts once they are saved.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lienwatch.domain.provinces import Province
from lienwatch.monitor.model import Alert, AlertStatus, AlertType, MonitorInputError, VehicleSpec

MONITOR = "monitor"  # the status_by of automatic transitions


@dataclass(frozen=True, slots=True)
class Decision:
    """The status the store holds for an alert, when it differs from the book's (a person
    acknowledged, resolved or marked it a false positive)."""

    alert_id: str
    status: AlertStatus
    by: str | None
    at: int | None
    end: int | None


class AlertBook:
    """Every alert raised so far (or since closed ones were forgotten), and the open one per
    (vehicle, type)."""

    def __init__(self, provinces: Sequence[Province]) -> None:
        self._provinces = provinces
        self.alerts: list[Alert] = []
        self._open: dict[tuple[str, AlertType], Alert] = {}
        self._by_id: dict[str, Alert] = {}
        self._changed: dict[str, Alert] = {}
        #: The published alert-rule version the monitor judges by (None: the configured
        #: thresholds): each alert opened records it in its evidence as ``rule_set``.
        self.rule_set: int | None = None

    def open_alert(self, vehicle_id: str, alert_type: AlertType) -> Alert | None:
        return self._open.get((vehicle_id, alert_type))

    def open_alerts(self) -> list[Alert]:
        """The open and acknowledged alerts."""
        return list(self._open.values())

    @property
    def open_count(self) -> int:
        return len(self._open)

    def take_changed(self) -> list[Alert]:
        """The alerts opened or changed since the last call, in the order they first changed."""
        changed, self._changed = list(self._changed.values()), {}
        return changed

    def seed(self, alerts: Iterable[Alert]) -> None:
        """Continue open alerts stored by an earlier run: each becomes the open alert of its
        vehicle and type, so the condition seen again repeats it and its end resolves it.

        Raises MonitorInputError for a closed alert or a second one of a vehicle and type.
        """
        for alert in alerts:
            key = (alert.vehicle_id, alert.type)
            if not alert.is_open:
                raise MonitorInputError(f"status: seeded alert {alert.id!r} is {alert.status}")
            if key in self._open or alert.id in self._by_id:
                raise MonitorInputError(f"alert_id: {alert.id!r} is already in the book")
            self._open[key] = alert
            self._by_id[alert.id] = alert
            self.alerts.append(alert)

    def apply(self, decision: Decision) -> Alert | None:
        """Take a decision made in the store on an alert of the book (None if it is not
        here); a closed alert stops being the open one, so the next occurrence opens anew."""
        alert = self._by_id.get(decision.alert_id)
        if alert is None or alert.status == decision.status:
            return alert
        alert.status, alert.status_by, alert.status_at = decision.status, decision.by, decision.at
        alert.end = decision.end if decision.end is not None else alert.end
        if not alert.is_open and self._open.get((alert.vehicle_id, alert.type)) is alert:
            del self._open[(alert.vehicle_id, alert.type)]
        return alert

    def replace(self, alert_id: str, stored: Alert) -> None:
        """Continue ``stored``, an open alert another writer stored for the vehicle and type,
        instead of the book's alert ``alert_id`` that the store refused for it."""
        refused = self._by_id.pop(alert_id, None)
        self._changed.pop(alert_id, None)
        if refused is not None:
            self.alerts.remove(refused)
            if self._open.get((refused.vehicle_id, refused.type)) is refused:
                del self._open[(refused.vehicle_id, refused.type)]
        if (stored.vehicle_id, stored.type) not in self._open and stored.id not in self._by_id:
            self.seed([stored])

    def carry_exposure(self, vehicle_id: str, exposure: int) -> None:
        """Servicing revised the vehicle's unsecured exposure: its open alerts carry it."""
        for alert_type in AlertType:
            alert = self._open.get((vehicle_id, alert_type))
            if alert is not None and alert.exposure != exposure:
                alert.exposure = exposure
                self._changed[alert.id] = alert

    def forget_closed(self) -> int:
        """Drop closed alerts that were already taken (saved) from memory; return how many.

        For a monitor that runs for months: the book then holds the open alerts and the ones
        changed since the last save, not every alert ever raised.
        """
        kept = [a for a in self.alerts if a.is_open or a.id in self._changed]
        dropped = len(self.alerts) - len(kept)
        if dropped:
            self.alerts = kept
            self._by_id = {a.id: a for a in kept}
        return dropped

    def raise_alert(
        self,
        alert_type: AlertType,
        vehicle: VehicleSpec,
        *,
        severity: str,
        start: int,
        at: int,
        device_id: str | None,
        position: tuple[float, float, int] | None,
        evidence: dict[str, Any],
    ) -> Alert:
        """Open an alert, or update the open one of this vehicle and type (a repeat).

        ``position`` is (lat, lon, province index or -1). A repeat keeps the original start and
        merges the new evidence over the old (keeping the ``rule_set`` it was opened under). A
        repeat seen no later than the alert's last update changes nothing: it is the same
        observation again, such as history replayed over an alert seeded from the store after
        a restart.
        """
        key = (vehicle.vehicle_id, alert_type)
        current = self._open.get(key)
        if current is not None:
            if at <= current.updated_at:
                return current
            current.repeats += 1
            current.updated_at = at
            current.evidence.update(evidence)
            current.exposure = vehicle.exposure
            self._changed[current.id] = current
            return current
        alert = self._new_alert(alert_type, vehicle, severity, start, at, device_id, position)
        alert.evidence = evidence
        if self.rule_set is not None:
            alert.evidence = {**evidence, "rule_set": self.rule_set}
        self._open[key] = alert
        self.alerts.append(alert)
        self._by_id[alert.id] = alert
        self._changed[alert.id] = alert
        return alert

    def place(self, alert: Alert, position: tuple[float, float, int] | None) -> None:
        """Set where ``alert`` happened: (lat, lon, province index or -1), or None."""
        lat, lon, province = self._where(position)
        code = province.code if province else None
        if (lat, lon, code) != (alert.lat, alert.lon, alert.province):
            alert.lat, alert.lon, alert.province = lat, lon, code
            alert.province_zh = province.name_zh if province else None
            alert.province_en = province.name_en if province else None
            self._changed[alert.id] = alert

    def _where(
        self, position: tuple[float, float, int] | None
    ) -> tuple[float | None, float | None, Province | None]:
        if position is None:
            return None, None, None
        lat, lon, index = position
        return lat, lon, self._provinces[index] if index >= 0 else None

    def _new_alert(self, alert_type, vehicle, severity, start, at, device_id, position) -> Alert:
        alert_id = f"{vehicle.vehicle_id}:{alert_type}:{start}"
        while alert_id in self._by_id:
            alert_id += "+"
        lat, lon, province = self._where(position)
        return Alert(
            id=alert_id,
            type=alert_type,
            severity=severity,
            vehicle_id=vehicle.vehicle_id,
            device_id=device_id,
            loan_id=vehicle.loan_id,
            start=start,
            raised_at=at,
            lat=lat,
            lon=lon,
            province=province.code if province else None,
            province_zh=province.name_zh if province else None,
            province_en=province.name_en if province else None,
            evidence={},
            exposure=vehicle.exposure,
            updated_at=at,
        )

    def resolve_cause(self, vehicle_id: str, alert_type: AlertType, at: int) -> Alert | None:
        """The cause ended at ``at``: resolve the open alert of this vehicle and type, if any."""
        alert = self._open.pop((vehicle_id, alert_type), None)
        if alert is not None:
            alert.end = at
            self._set_status(alert, AlertStatus.RESOLVED, MONITOR, at)
        return alert

    def acknowledge(self, alert_id: str, *, by: str, at: int) -> Alert:
        """Someone took the alert on; it stays open (and still resolves automatically)."""
        alert = self._get_open(alert_id)
        self._set_status(alert, AlertStatus.ACKNOWLEDGED, by, at)
        return alert

    def resolve(self, alert_id: str, *, by: str, at: int) -> Alert:
        """Someone closed the alert; the next occurrence opens a new one."""
        return self._close(alert_id, AlertStatus.RESOLVED, by, at)

    def mark_false_positive(self, alert_id: str, *, by: str, at: int) -> Alert:
        return self._close(alert_id, AlertStatus.FALSE_POSITIVE, by, at)

    def _close(self, alert_id: str, status: AlertStatus, by: str, at: int) -> Alert:
        alert = self._get_open(alert_id)
        del self._open[(alert.vehicle_id, alert.type)]
        self._set_status(alert, status, by, at)
        return alert

    def _get_open(self, alert_id: str) -> Alert:
        alert = self._by_id.get(alert_id)
        if alert is None:
            raise MonitorInputError(f"alert_id: no alert {alert_id!r}")
        if not alert.is_open:
            raise MonitorInputError(f"alert_id: alert {alert_id!r} is already {alert.status}")
        return alert

    def _set_status(self, alert: Alert, status: AlertStatus, by: str, at: int) -> None:
        alert.status = status
        alert.status_by = by
        alert.status_at = at
        alert.updated_at = at
        self._changed[alert.id] = alert
