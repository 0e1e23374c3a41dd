"""Collateral alerts: saved by the monitor, decided by people."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lienwatch.errors import ConflictError, NotFoundError
from lienwatch.monitor.model import Alert as MonitorAlert
from lienwatch.monitor.model import AlertStatus, utc
from lienwatch.store.db import chunks, savepoint
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
        row = self.save_many([alert])[0]
        if row is None:
            raise ConflictError(
                f"vehicle {alert.vehicle_id} already has an open {alert.type} alert"
            )
        return row

    def save_many(self, alerts: Sequence[MonitorAlert]) -> list[Alert | None]:
        """:meth:`save` each alert in turn; None for one refused because another open alert of
        its vehicle and type is stored (the others are saved).

        The stored rows and the references are read with a few queries and the rows written
        in one flush; only when that flush is refused are the alerts saved one by one, each in
        a savepoint, to find the refused ones."""
        stored = self._stored(alerts)
        references = _References(self.session, [a for a in alerts if a.id not in stored])
        try:
            with savepoint(self.session):
                rows: list[Alert | None] = [
                    self._prepared(alert, stored, references) for alert in alerts
                ]
                self.session.flush()
        except IntegrityError:  # some alert is refused: find which, one by one
            return self._save_each(alerts, references)
        return rows

    def _save_each(
        self, alerts: Sequence[MonitorAlert], references: _References
    ) -> list[Alert | None]:
        stored = self._stored(alerts)
        rows: list[Alert | None] = []
        for alert in alerts:
            try:
                with savepoint(self.session):  # a refused insert undoes only itself
                    row = self._prepared(alert, stored, references)
                    self.session.flush()
            except IntegrityError:
                stored.pop(alert.id, None)
                row = None
            rows.append(row)
        return rows

    def _stored(self, alerts: Sequence[MonitorAlert]) -> dict[str, Alert]:
        """The stored rows of ``alerts`` by key."""
        keys = sorted({alert.id for alert in alerts})
        return {
            row.key: row
            for part in chunks(keys)
            for row in self.session.scalars(select(Alert).where(Alert.key.in_(part)))
        }

    def _prepared(
        self, alert: MonitorAlert, stored: dict[str, Alert], references: _References
    ) -> Alert:
        """The alert's row, new (added to the session and to ``stored``) or updated."""
        row = stored.get(alert.id)
        if row is None:
            row = Alert(key=alert.id, type=str(alert.type), **references.of(alert))
            row.started_at = utc(alert.start)
            row.raised_at = utc(alert.raised_at)
            row.lat, row.lon, row.province_code = alert.lat, alert.lon, alert.province
            self.session.add(row)
            stored[alert.id] = row
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
        return row

    def get(self, alert_id: int) -> Alert:
        row = self.session.get(Alert, alert_id)
        if row is None:
            raise NotFoundError(f"alert {alert_id} does not exist")
        return row

    def open_alerts(
        self, vehicle_id: int | None = None, *, type_: str | None = None,
        loan_id: int | None = None,
    ) -> list[Alert]:  # fmt: skip
        """Open and acknowledged alerts (of one vehicle, type or loan), largest exposure
        first."""
        query = select(Alert).where(Alert.status.in_(_OPEN_ALERT_STATUSES))
        if vehicle_id is not None:
            query = query.where(Alert.vehicle_id == vehicle_id)
        if type_ is not None:
            query = query.where(Alert.type == type_)
        if loan_id is not None:
            query = query.where(Alert.loan_id == loan_id)
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


class _References:
    """The store's keys of the vehicles, trackers and loans a batch of alerts names, read
    with one query per kind."""

    def __init__(self, session: Session, alerts: Sequence[MonitorAlert]) -> None:
        self.vehicles = _keys(session, Vehicle.vin, Vehicle.id, {a.vehicle_id for a in alerts})
        self.devices = _keys(session, Device.ident, Device.id,
                             {a.device_id for a in alerts if a.device_id is not None})  # fmt: skip
        self.loans = _keys(session, Loan.ref, Loan.id,
                           {a.loan_id for a in alerts if a.loan_id is not None})  # fmt: skip

    def of(self, alert: MonitorAlert) -> dict[str, int | None]:
        vehicle_id = self.vehicles.get(alert.vehicle_id)
        if vehicle_id is None:
            raise NotFoundError(f"vehicle {alert.vehicle_id!r} does not exist")
        return {
            "vehicle_id": vehicle_id,
            "device_id": None if alert.device_id is None else self.devices.get(alert.device_id),
            "loan_id": None if alert.loan_id is None else self.loans.get(alert.loan_id),
        }


def _keys(session: Session, name: Any, key: Any, wanted: set[str]) -> dict[str, int]:
    """``{name: key}`` of the rows whose ``name`` is in ``wanted``."""
    names = sorted(wanted)
    return {
        found: id_
        for part in chunks(names)
        for found, id_ in session.execute(select(name, key).where(name.in_(part)))
    }

