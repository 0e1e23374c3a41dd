"""Reads of the console beyond the API's: a collector's open cases by priority, a car's last
days as a track with its stays, and finding loans by reference, plate, VIN or the borrower's
phone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lienwatch.access.masking import mask_phone
from lienwatch.access.principal import Viewer
from lienwatch.errors import LienwatchError
from lienwatch.followup.model import CaseStatus
from lienwatch.monitor.stays import find_stays
from lienwatch.services.auth import AuditAction, AuthService
from lienwatch.services.reads.book import loan_of_viewer
from lienwatch.services.reads.figures import (
    latest_snapshots,
    open_alert_counts,
    snapshot_figures,
)
from lienwatch.services.reads.visibility import case_condition, loan_condition
from lienwatch.store.followup import next_steps
from lienwatch.store.tables import Borrower, Case, Device, Loan, Position, Vehicle

TRACK_DAYS = 3
MAX_TRACK_POINTS = 2_000  # a week of fixes every few minutes is thinned to this
SEARCHES = ("ref", "plate", "vin", "phone")


def case_queue(session: Session, viewer: Viewer, *, limit: int) -> list[dict[str, Any]]:
    """The open cases ``viewer`` reaches (a collector: their own), most urgent first, each
    with its loan's latest figures, open alerts and next step (``store.followup.next_steps``:
    its first queued task, else its first open trigger's next step, the automation's)."""
    rows = session.execute(
        select(Case, Loan.ref).join(Loan, Loan.id == Case.loan_id)
        .where(Case.status != CaseStatus.CLOSED, case_condition(viewer))
        .order_by(Case.priority.desc(), Case.opened_at, Case.id).limit(limit)
    ).all()  # fmt: skip
    loan_ids = [case.loan_id for case, _ in rows]
    snapshots, alerts = latest_snapshots(session, loan_ids), open_alert_counts(session, loan_ids)
    steps = next_steps(session, [case.id for case, _ in rows])
    out = []
    for case, ref in rows:
        step = steps.get(case.id)
        nxt = None if step is None else {
            "task": step.task_id, "channel": step.channel,
            "trigger": None if step.task_id else step.trigger_kind,
            "due_at": step.due_at, "deadline_at": step.deadline_at}  # fmt: skip
        out.append({"case": case.id, "loan": ref, "status": case.status,
                    "priority": case.priority, "open_alerts": alerts.get(case.loan_id, 0),
                    "next": nxt, **snapshot_figures(snapshots.get(case.loan_id))})  # fmt: skip
    return out


@dataclass(frozen=True, slots=True)
class Stay:
    lon: float
    lat: float
    start: datetime
    end: datetime
    open: bool  # the car is still there


@dataclass(frozen=True, slots=True)
class Track:
    points: list[tuple[float, float]]  # lon, lat, oldest first
    stays: list[Stay]


def vehicle_track(
    session: Session, viewer: Viewer, loan_ref: str, *, at: datetime, days: int = TRACK_DAYS,
    radius_m: float = 200, min_stay_s: float = 3 * 3600,
) -> Track:  # fmt: skip
    """The valid fixes of the loan's car (all its devices) in the ``days`` before ``at``,
    thinned to at most MAX_TRACK_POINTS, and its stays of ``min_stay_s`` or longer within
    ``radius_m`` (the monitor's stay segmentation); not found outside the viewer's rows."""
    loan = loan_of_viewer(session, viewer, loan_ref)
    devices = select(Device.id).where(Device.vehicle_id == loan.vehicle_id)
    rows = session.execute(
        select(Position.fix_time, Position.lat, Position.lon)
        .where(Position.device_id.in_(devices), Position.valid,
               Position.fix_time >= at - timedelta(days=days), Position.fix_time <= at)
        .order_by(Position.fix_time)
    ).all()  # fmt: skip
    if not rows:
        return Track([], [])
    times = np.array([r[0].timestamp() for r in rows], dtype=np.int64)
    lat = np.array([r[1] for r in rows])
    lon = np.array([r[2] for r in rows])
    table = find_stays(np.zeros(len(rows), dtype=np.int64), times, lat, lon,
                       radius_m=radius_m, min_duration_s=min_stay_s)  # fmt: skip
    stays = [Stay(float(lon[first]), float(lat[first]), rows[first][0],
                  rows[first][0] + timedelta(seconds=int(end - start)), bool(is_open))
             for first, start, end, is_open in zip(table.first, table.start, table.end,
                                                   table.open, strict=True)]  # fmt: skip
    step = max(1, len(rows) // MAX_TRACK_POINTS)
    points = [(float(x), float(y)) for x, y in zip(lon[::step], lat[::step], strict=True)]
    return Track(points, stays)


def search_loans(session: Session, viewer: Viewer, text: str, *, by: str) -> list[dict[str, Any]]:
    """The viewer's loans by reference, plate or VIN (a prefix, any case) or the borrower's
    phone (the whole number), at most 50, each with its open case; phones masked. The caller
    audits a search by phone (it looks a person up)."""
    if by not in SEARCHES:
        raise LienwatchError(f"by: search by one of {', '.join(SEARCHES)}")
    text = text.strip()
    column = {"ref": Loan.ref, "plate": Vehicle.plate, "vin": Vehicle.vin}.get(by)
    where = (Borrower.phone == text if column is None
             else func.upper(column).startswith(text.upper(), autoescape=True))  # fmt: skip
    found = session.execute(
        select(Loan, Borrower, Vehicle).join(Borrower, Borrower.id == Loan.borrower_id)
        .join(Vehicle, Vehicle.id == Loan.vehicle_id)
        .where(where, loan_condition(viewer)).order_by(Loan.ref).limit(50)
    ).all()  # fmt: skip
    cases = dict(session.execute(
        select(Case.loan_id, Case.id).where(Case.loan_id.in_([lo.id for lo, _, _ in found]),
                                            Case.status != CaseStatus.CLOSED)
    ).all())  # fmt: skip
    return [{"loan": lo.ref, "borrower": b.name, "phone": mask_phone(b.phone),
             "plate": v.plate, "vin": v.vin, "status": lo.status,
             "case_id": cases.get(lo.id)} for lo, b, v in found]  # fmt: skip


def find_loans(
    session: Session, viewer: Viewer, text: str, *, by: str, at: datetime, client: str = ""
) -> list[dict[str, Any]]:
    """:func:`search_loans`, a search by phone written to the audit log (who, how many
    loans, when, from where): it looks a person up."""
    found = search_loans(session, viewer, text, by=by)
    if by == "phone":
        AuthService(session).audit(actor=viewer.username, action=AuditAction.PERSONAL_DATA,
                                   subject=f"phone search: {len(found)} loans", at=at,
                                   client=client, details={"search": "phone"})  # fmt: skip
    return found
