"""Collateral alerts the viewer reaches (those on the loans of their cases, or all), newest
first, with filters and the evidence of each (who paid a payment it names masked)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lienwatch.access.masking import mask_evidence
from lienwatch.access.principal import Viewer
from lienwatch.errors import NotFoundError
from lienwatch.services.reads.visibility import loan_condition
from lienwatch.store.tables import Alert, Loan, Vehicle


def alerts(
    session: Session, viewer: Viewer, *, limit: int, before: int | None = None,
    status: str | None = None, type_: str | None = None, loan: str | None = None,
    since: datetime | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Alerts newest first (by id), before id ``before``, filtered."""
    query = (select(Alert, Loan.ref, Vehicle.vin).outerjoin(Loan, Loan.id == Alert.loan_id)
             .join(Vehicle, Vehicle.id == Alert.vehicle_id)
             .order_by(Alert.id.desc()).limit(limit))  # fmt: skip
    query = query.where(loan_condition(viewer))
    if before is not None:
        query = query.where(Alert.id < before)
    if status is not None:
        query = query.where(Alert.status == status)
    if type_ is not None:
        query = query.where(Alert.type == type_)
    if loan is not None:
        query = query.where(Loan.ref == loan)
    if since is not None:
        query = query.where(or_(Alert.started_at >= since, Alert.ended_at.is_(None)))
    return [alert_view(a, ref, vin) for a, ref, vin in session.execute(query).all()]


def visible_alert(session: Session, viewer: Viewer, alert_id: int) -> Alert:
    """Alert ``alert_id`` if the viewer reaches it; else not found."""
    query = select(Alert).outerjoin(Loan, Loan.id == Alert.loan_id).where(Alert.id == alert_id)
    query = query.where(loan_condition(viewer))
    alert = session.scalar(query)
    if alert is None:
        raise NotFoundError(f"alert_id: no alert {alert_id}")
    return alert


def alert_view(a: Alert, loan: str | None, vin: str) -> dict[str, Any]:
    return {"id": a.id, "type": a.type, "severity": a.severity, "status": a.status,
            "loan": loan, "vin": vin, "started_at": a.started_at, "ended_at": a.ended_at,
            "lat": a.lat, "lon": a.lon, "province_code": a.province_code,
            "exposure_fen": a.exposure, "evidence": mask_evidence(a.evidence),
            "decided_by": a.status_by,
            "decided_at": a.status_at}  # fmt: skip
