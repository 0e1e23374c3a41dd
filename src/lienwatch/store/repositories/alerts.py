"""Collateral alerts: saved by the monitor, decided by people."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lienwatch.errors import ConflictError, NotFoundError
from lienwatch.monitor.model import Alert as MonitorAlert
from lienwatch.monitor.model import AlertStatus, utc
from lienwatch.store.db import savepoint
from lienwatch.store.tables import (
    Alert,
    Device,
    Loan,
    Vehicle,
)


class AlertRepository:
    """Collateral alerts: the monitor's alerts stored by their key, and people's decisions.

    At most one open (or acknowledged) alert per vehicle and type, enforced by the database:
    storing a second one is a :class:`ConflictError`.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def save(self, alert: MonitorAlert) -> Alert:
        """Insert the monitor's alert, or update the stored one with the same key (status,
        end, evidence, repeats, exposure).

        Decisions stored since stand: a stored alert that is closed (resolved, false
        positive) is left as it is, and one someone acknowledged is not set back to open.
        The returned row then tells the caller the status its alert should take.
        """
        row = self.session.scalar(select(Alert).where(Alert.key == alert.id))
        if row is None:
            row = Alert(key=alert.id, type=str(alert.type), **self._references(alert))
            row.started_at = utc(alert.start)
            row.raised_at = utc(alert.raised_at)
            row.lat, row.lon, row.province_code = alert.lat, alert.lon, alert.province
        elif row.status not in _OPEN_ALERT_STATUSES:
            return row
        row.severity = alert.severity
        if not (row.status == "acknowledged" and alert.status == AlertStatus.OPEN):
            row.status = str(alert.status)
            row.ended_at = None if alert.end is None else utc(alert.end)
            row.status_by = alert.status_by
            row.status_at = None if alert.status_at is None else utc(alert.status_at)
        row.evidence = dict(alert.evidence)
        row.exposure = alert.exposure
        row.repeats = alert.repeats
        row.updated_at = utc(alert.updated_at)
        try:
            with savepoint(self.session):  # added inside: a refused insert undoes only itself
                self.session.add(row)
                self.session.flush()
        except IntegrityError:
            raise ConflictError(
                f"vehicle {alert.vehicle_id} already has an open {alert.type} alert"
            ) from None
        return row

    def _references(self, alert: MonitorAlert) -> dict[str, int | None]:
        vehicle_id = self.session.scalar(select(Vehicle.id).where(Vehicle.vin == alert.vehicle_id))
        if vehicle_id is None:
            raise NotFoundError(f"vehicle {alert.vehicle_id!r} does not exist")
        device_id = loan_id = None
        if alert.device_id is not None:
            device_id = self.session.scalar(
                select(Device.id).where(Device.ident == alert.device_id)
            )
        if alert.loan_id is not None:
            loan_id = self.session.scalar(select(Loan.id).where(Loan.ref == alert.loan_id))
        return {"vehicle_id": vehicle_id, "device_id": device_id, "loan_id": loan_id}

    def get(self, alert_id: int) -> Alert:
        row = self.session.get(Alert, alert_id)
        if row is None:
            raise NotFoundError(f"alert {alert_id} does not exist")
        return row

    def open_alerts(self, vehicle_id: int | None = None) -> list[Alert]:
        """Open and acknowledged alerts, largest exposure first."""
        query = select(Alert).where(Alert.status.in_(_OPEN_ALERT_STATUSES))
        if vehicle_id is not None:
            query = query.where(Alert.vehicle_id == vehicle_id)
        return list(self.session.scalars(query.order_by(Alert.exposure.desc(), Alert.id)))

    def acknowledge(self, alert_id: int, *, by: str, at: datetime) -> Alert:
        """Someone took the alert on; it stays open."""
        return self._decide(alert_id, "acknowledged", by, at)

    def resolve(self, alert_id: int, *, by: str, at: datetime) -> Alert:
        return self._decide(alert_id, "resolved", by, at)

    def mark_false_positive(self, alert_id: int, *, by: str, at: datetime) -> Alert:
        return self._decide(alert_id, "false_positive", by, at)

    def _decide(self, alert_id: int, status: str, by: str, at: datetime) -> Alert:
        if not by:
            raise ValueError("by: who decided must be named")
        row = self.get(alert_id)
        if row.status not in _OPEN_ALERT_STATUSES:
            raise ConflictError(f"alert {alert_id} is already {row.status}")
        row.status, row.status_by, row.status_at, row.updated_at = status, by, at, at
        if status != "acknowledged" and row.ended_at is None:
            row.ended_at = at
        self.session.flush()
        return row


_OPEN_ALERT_STATUSES = ("open", "acknowledged")

