"""Decisions on collateral alerts, each recorded in the ledger with the decision."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.access.masking import mask_evidence
from lienwatch.errors import NotFoundError
from lienwatch.ledger.entries import EntryKind
from lienwatch.monitor.model import AlertStatus
from lienwatch.services.ledger import record
from lienwatch.store.repositories import AlertRepository
from lienwatch.store.tables import Alert, Loan, Vehicle


def decide_alert(
    session: Session, *, alert_id: int, decision: AlertStatus | str, by: str, at: datetime,
    why: str = "",
) -> Alert:  # fmt: skip
    """Acknowledge an open alert (it stays open), resolve it or mark it a false positive,
    with who, when and why in the ledger; a decided alert is a ConflictError. The live
    monitor reads the decision back at its next tick."""
    decision = AlertStatus(decision)
    alerts = AlertRepository(session)
    decide = {
        AlertStatus.ACKNOWLEDGED: alerts.acknowledge,
        AlertStatus.RESOLVED: alerts.resolve,
        AlertStatus.FALSE_POSITIVE: alerts.mark_false_positive,
    }.get(decision)
    if decide is None:
        raise ValueError(f"decision: {decision.value} is not a decision (acknowledged, "
                         "resolved, false_positive)")  # fmt: skip
    row = decide(alert_id, by=by, at=at)
    if row.loan_id is not None:  # about a loan's collateral, else a car of no live loan
        subject = session.scalar(select(Loan.ref).where(Loan.id == row.loan_id))
    else:
        subject = session.scalar(select(Vehicle.vin).where(Vehicle.id == row.vehicle_id))
    record(session, EntryKind.ALERT_DECIDED, subject=subject or "", at=at, by=by,
           data={"alert": row.id, "type": row.type, "decision": decision.value,
                 "why": why})  # fmt: skip
    return row


def open_alert_views(
    session: Session, *, type_: str | None = None, loan: str | None = None
) -> list[dict[str, Any]]:
    """The open and acknowledged alerts (of one type, of one loan by reference) as people
    read them, largest exposure first; NotFoundError for a loan that does not exist."""
    loan_id = None
    if loan is not None:
        loan_id = session.scalar(select(Loan.id).where(Loan.ref == loan))
        if loan_id is None:
            raise NotFoundError(f"loan: no loan {loan!r}")
    found = AlertRepository(session).open_alerts(type_=type_, loan_id=loan_id)
    return [alert_view(session, alert) for alert in found]


def alert_detail(session: Session, alert_id: int) -> dict[str, Any]:
    """Alert ``alert_id`` as :func:`alert_view` shows it, with its end, the decision on it
    (who, when) and its evidence (who paid a payment it names masked); NotFoundError if
    there is no such alert."""
    alert = AlertRepository(session).get(alert_id)
    return alert_view(session, alert) | {
        "ended_at": _iso(alert.ended_at), "decided_by": alert.status_by,
        "decided_at": _iso(alert.status_at), "evidence": mask_evidence(alert.evidence),
    }  # fmt: skip


def alert_view(session: Session, alert: Alert) -> dict[str, Any]:
    """An alert with its loan by reference and its car by VIN."""
    loan = session.get(Loan, alert.loan_id) if alert.loan_id is not None else None
    return {"alert": alert.id, "type": alert.type, "severity": alert.severity,
            "status": alert.status, "loan": loan.ref if loan else None,
            "vin": session.get_one(Vehicle, alert.vehicle_id).vin,
            "started_at": _iso(alert.started_at), "exposure_fen": alert.exposure,
            "repeats": alert.repeats}  # fmt: skip


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")
