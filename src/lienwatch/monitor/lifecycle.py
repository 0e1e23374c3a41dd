"""The alert lifecycle: one open alert per vehicle and type; repeats update it; causes that end
resolve it; people acknowledge, resolve or mark it a false positive."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lienwatch.domain.provinces import Province
from lienwatch.monitor.model import Alert, AlertStatus, AlertType, MonitorInputError, VehicleSpec

MONITOR = "monitor"  # the status_by of automatic transitions


class AlertBook:
    """Every alert raised so far, and the open one per (vehicle, type)."""

    def __init__(self, provinces: Sequence[Province]) -> None:
        self._provinces = provinces
        self.alerts: list[Alert] = []
        self._open: dict[tuple[str, AlertType], Alert] = {}
        self._by_id: dict[str, Alert] = {}

    def open_alert(self, vehicle_id: str, alert_type: AlertType) -> Alert | None:
        return self._open.get((vehicle_id, alert_type))

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
        merges the new evidence over the old.
        """
        key = (vehicle.vehicle_id, alert_type)
        current = self._open.get(key)
        if current is not None:
            current.repeats += 1
            current.updated_at = at
            current.evidence.update(evidence)
            current.exposure = vehicle.exposure
            return current
        alert = self._new_alert(alert_type, vehicle, severity, start, at, device_id, position)
        alert.evidence = evidence
        self._open[key] = alert
        self.alerts.append(alert)
        self._by_id[alert.id] = alert
        return alert

    def _new_alert(self, alert_type, vehicle, severity, start, at, device_id, position) -> Alert:
        alert_id = f"{vehicle.vehicle_id}:{alert_type}:{start}"
        while alert_id in self._by_id:
            alert_id += "+"
        lat = lon = None
        province = None
        if position is not None:
            lat, lon, index = position
            province = self._provinces[index] if index >= 0 else None
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

    @staticmethod
    def _set_status(alert: Alert, status: AlertStatus, by: str, at: int) -> None:
        alert.status = status
        alert.status_by = by
        alert.status_at = at
        alert.updated_at = at
