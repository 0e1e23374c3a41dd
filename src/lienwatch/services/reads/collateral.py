"""The collateral as the daily report reads it at a moment: alerts by type and severity with
their status then, open alerts on the loans with the largest unsecured exposure (with their
evidence and the car's recent track), trackers gone quiet, clusters of financed cars."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from lienwatch.access.masking import mask_evidence
from lienwatch.store.followup import OPEN_ALERT_STATUSES
from lienwatch.store.tables import Alert, Device, Loan, LoanSnapshot, Position, Vehicle

OFFLINE_AFTER = timedelta(hours=72)
TRACK_DAYS = 7
TRACK_POINTS = 120


def _raised() -> ColumnElement[Any]:
    return func.coalesce(Alert.raised_at, Alert.started_at)


def _open_at(at: datetime) -> ColumnElement[bool]:
    """Alerts raised by ``at`` and not closed by then."""
    return (_raised() <= at) & or_(
        Alert.status.in_(OPEN_ALERT_STATUSES), Alert.status_at.is_(None), Alert.status_at > at
    )


def alerts_raised_by(session: Session, at: datetime) -> list[tuple[Any, ...]]:
    """(type, severity, status, raised at, status at) of every alert raised by ``at``."""
    return list(session.execute(
        select(Alert.type, Alert.severity, Alert.status, _raised(), Alert.status_at)
        .where(_raised() <= at)
    ).all())  # fmt: skip


def open_alerts_at(session: Session, at: datetime) -> int:
    """Alerts open at ``at``."""
    return session.scalar(select(func.count()).select_from(Alert).where(_open_at(at))) or 0


def alert_counts(session: Session, *, kind: str, since: datetime | None,
                 at: datetime) -> dict[str, int]:  # fmt: skip
    """Alerts of ``kind`` open now that were raised by ``at``, and those raised in
    ``(since, at]`` (all by ``at`` without ``since``)."""
    def count(*where: Any) -> int:
        return session.scalar(
            select(func.count()).select_from(Alert).where(Alert.type == kind, *where)
        ) or 0

    raised = [Alert.raised_at <= at] + ([Alert.raised_at > since] if since else [])
    return {"open": count(Alert.status.in_(OPEN_ALERT_STATUSES), Alert.raised_at <= at),
            "new": count(*raised)}  # fmt: skip


def offline_trackers(session: Session, at: datetime) -> list[dict[str, Any]]:
    """Trackers on a vehicle whose last fix by ``at`` is older than 72 hours, or that have
    none though registered by then (a tracker registered later is not counted)."""
    last_fix = (  # one index seek per tracker on (device_id, fix_time)
        select(func.max(Position.fix_time))
        .where(Position.device_id == Device.id, Position.fix_time <= at)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Device.ident, Device.protocol, Device.kind, Vehicle.plate, Device.created_at,
               last_fix)
        .join(Vehicle, Vehicle.id == Device.vehicle_id)
        .order_by(Device.ident)
    ).all()  # fmt: skip
    found = []
    for ident, protocol, kind, plate, registered, seen in rows:
        if (seen is None and registered <= at) or (seen is not None and at - seen > OFFLINE_AFTER):
            found.append({"device": ident, "protocol": protocol, "kind": kind, "plate": plate,
                          "last_fix": seen.isoformat() if seen else None})  # fmt: skip
    return found


def top_exposure_alerts(session: Session, *, day: date, at: datetime,
                        limit: int) -> list[dict[str, Any]]:  # fmt: skip
    """The ``limit`` vehicles with the largest unsecured exposure (snapshot of ``day``) and an
    open alert at ``at``, with their open alerts' evidence and a recent track."""
    alerts = session.execute(
        select(Alert.loan_id, Alert.vehicle_id, Alert.id, Alert.type, Alert.severity,
               Alert.started_at, Alert.evidence)
        .where(_open_at(at), Alert.loan_id.is_not(None))
        .order_by(Alert.started_at)
    ).all()  # fmt: skip
    by_loan: dict[int, list[Any]] = defaultdict(list)
    for alert in alerts:
        by_loan[alert.loan_id].append(alert)
    if not by_loan:
        return []
    rows = session.execute(
        select(Loan.id, Loan.ref, Vehicle.id, Vehicle.plate, LoanSnapshot.unsecured,
               LoanSnapshot.dpd, LoanSnapshot.bucket)
        .join(LoanSnapshot, LoanSnapshot.loan_id == Loan.id)
        .join(Vehicle, Vehicle.id == Loan.vehicle_id)
        .where(LoanSnapshot.as_of == day, Loan.id.in_(by_loan))
        .order_by(LoanSnapshot.unsecured.desc(), Loan.ref)
        .limit(limit)
    ).all()  # fmt: skip
    return [
        {"loan": ref, "plate": plate, "unsecured": int(unsecured), "dpd": dpd, "bucket": bucket,
         "alerts": [{"id": a.id, "type": a.type, "severity": a.severity,
                     "started_at": a.started_at.isoformat(),
                     "evidence": mask_evidence(a.evidence or {})}
                    for a in by_loan[loan_id]],
         "track": recent_track(session, vehicle_id, at)}
        for loan_id, ref, vehicle_id, plate, unsecured, dpd, bucket in rows
    ]  # fmt: skip


def recent_track(session: Session, vehicle_id: int, at: datetime) -> list[list[float]]:
    """Up to :data:`TRACK_POINTS` valid fixes (lon, lat) of the vehicle's trackers over the
    last :data:`TRACK_DAYS` days, evenly thinned, oldest first."""
    points = session.execute(
        select(Position.lon, Position.lat)
        .join(Device, Device.id == Position.device_id)
        .where(Device.vehicle_id == vehicle_id, Position.valid,
               Position.fix_time <= at, Position.fix_time > at - timedelta(days=TRACK_DAYS))
        .order_by(Position.fix_time)
    ).all()  # fmt: skip
    step = max(1, -(-len(points) // TRACK_POINTS))
    return [[round(lon, 5), round(lat, 5)] for lon, lat in points[::step]]


def open_clusters(session: Session, at: datetime) -> list[dict[str, Any]]:
    """Open ``cluster`` alerts at ``at``: several financed cars gathered at one place."""
    rows = session.execute(
        select(Alert.id, Alert.started_at, Alert.province_code, Alert.evidence, Vehicle.plate)
        .join(Vehicle, Vehicle.id == Alert.vehicle_id)
        .where(_open_at(at), Alert.type == "cluster")
        .order_by(Alert.started_at)
    ).all()  # fmt: skip
    return [
        {"alert": i, "started_at": s.isoformat(), "province": p, "plate": plate,
         "vehicles": (e or {}).get("vehicles")}
        for i, s, p, e, plate in rows
    ]  # fmt: skip
