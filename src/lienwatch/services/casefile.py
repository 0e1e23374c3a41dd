"""A case as the people working it read it: the borrower and the loan (phone and ID masked),
the schedule and payments, the timeline, the open tasks and the car's last days."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lienwatch.errors import LienwatchError
from lienwatch.followup.model import CaseStatus, TaskStatus
from lienwatch.monitor.stays import find_stays
from lienwatch.store.followup import OPEN_ALERT_STATUSES
from lienwatch.store.repositories import UserRepository
from lienwatch.store.repossession import latest_snapshot
from lienwatch.store.tables import (
    Action,
    Alert,
    Borrower,
    Case,
    ContactAttempt,
    Device,
    Loan,
    Payment,
    Position,
    Promise,
    Task,
    Trigger,
    User,
    Vehicle,
)

TRACK_DAYS = 3
MAX_TRACK_POINTS = 2_000  # a week of fixes every few minutes is thinned to this


def mask_phone(phone: str) -> str:
    """``13812345678`` → ``138****5678`` (the first three and last four digits)."""
    return phone[:3] + "*" * max(len(phone) - 7, 0) + phone[-4:] if len(phone) > 7 else "****"


def mask_id(number: str) -> str:
    """``330106199001011234`` → ``3301**********1234`` (the first and last four)."""
    return number[:4] + "*" * max(len(number) - 8, 0) + number[-4:] if len(number) > 8 else "****"


@dataclass(frozen=True, slots=True)
class Event:
    """One line of a case's timeline: ``kind`` is trigger, action, refusal, alert, payment or
    promise; ``what`` and ``codes`` are codes the console translates (an action's outcome and
    channel, a status change's statuses); ``note`` what a person wrote; ``detail`` a date."""

    at: datetime
    kind: str
    what: str
    by: str | None = None
    detail: str = ""
    codes: tuple[str, ...] = ()
    note: str = ""
    amount: int | None = None  # fen: a payment's or a promise's
    until: datetime | None = None  # a refused contact's next allowed time


@dataclass(frozen=True, slots=True)
class Stay:
    lon: float
    lat: float
    start: datetime
    end: datetime
    open: bool


@dataclass(frozen=True, slots=True)
class CaseFile:
    case_id: int
    status: str
    loan: str
    product: str
    principal: int
    term_months: int
    disbursed_on: date
    loan_status: str
    time_zone: str
    borrower: str
    phone: str  # masked
    id_number: str  # masked
    city: str
    vehicle: str  # make, model and plate
    vin: str
    figures: dict[str, Any]  # the latest nightly snapshot's, or empty
    schedule: list[dict[str, Any]]
    payments: list[dict[str, Any]]
    timeline: list[Event]
    tasks: list[dict[str, Any]]
    track: list[tuple[float, float]] = field(default_factory=list)  # lon, lat
    stays: list[Stay] = field(default_factory=list)


def case_file(session: Session, case_id: int, *, at: datetime) -> CaseFile:
    """The case ``case_id`` as of ``at`` (the caller has checked who may see it)."""
    case = session.get_one(Case, case_id)
    loan = session.get_one(Loan, case.loan_id)
    borrower, vehicle = loan.borrower, loan.vehicle
    snapshot = latest_snapshot(session, loan.id, at.date())
    figures: dict[str, Any] = {} if snapshot is None else {
        "as_of": snapshot.as_of, "dpd": snapshot.dpd, "bucket": snapshot.bucket,
        "outstanding": snapshot.outstanding_principal,
        "overdue": snapshot.overdue_principal + snapshot.overdue_interest
        + snapshot.penalty_accrued + snapshot.fees_due,
        "unsecured": snapshot.unsecured, "collateral": snapshot.collateral_value,
        "ltv_bps": snapshot.ltv_bps,
    }  # fmt: skip
    track, stays = vehicle_track(session, vehicle.id, at=at)
    return CaseFile(
        case_id=case.id, status=case.status, loan=loan.ref, product=loan.product,
        principal=loan.principal, term_months=loan.term_months, disbursed_on=loan.disbursed_on,
        loan_status=loan.status, time_zone=borrower.time_zone, borrower=borrower.name,
        phone=mask_phone(borrower.phone), id_number=mask_id(borrower.id_number),
        city=borrower.city, vehicle=f"{vehicle.make} {vehicle.model} {vehicle.plate}",
        vin=vehicle.vin, figures=figures,
        schedule=[{"n": i.n, "due_date": i.due_date, "principal": i.principal,
                   "interest": i.interest, "fee": i.fee} for i in loan.installments],
        payments=[{"paid_on": p.paid_on, "amount": p.amount, "channel": p.channel,
                   "reversed": p.reversed_at is not None} for p in loan.payments],
        timeline=timeline(session, case),
        tasks=open_tasks(session, case.id), track=track, stays=stays,
    )  # fmt: skip


def open_tasks(session: Session, case_id: int) -> list[dict[str, Any]]:
    """The case's queued tasks, with whom each is assigned to."""
    rows = session.execute(
        select(Task, User.username).outerjoin(User, User.id == Task.assignee_id)
        .where(Task.case_id == case_id, Task.status == TaskStatus.QUEUED)
        .order_by(Task.due_at, Task.id)
    ).tuples()  # fmt: skip
    return [{"task": t.id, "channel": t.channel, "due_at": t.due_at,
             "deadline_at": t.deadline_at, "assignee": name} for t, name in rows]  # fmt: skip


def timeline(session: Session, case: Case) -> list[Event]:
    """Triggers, actions, refused contacts, alerts, payments and promises of the case's
    loan since the day before the case opened, newest first."""
    users = dict(session.execute(select(User.id, User.username)).tuples().all())
    events = [Event(t.opened_at, "trigger", t.kind)
              for t in session.scalars(select(Trigger).where(Trigger.case_id == case.id))]
    for action in session.scalars(select(Action).where(Action.case_id == case.id)):
        if action.kind == "status" and "to" in action.details:
            codes = tuple(c for c in (action.details.get("from"), action.details["to"]) if c)
        else:
            codes = (action.kind,) if action.outcome and action.outcome != action.kind else ()
        # The automation's own words (a status change's reason) are English; a person's note
        # is theirs, shown as written.
        note = action.note or "" if action.performed_by is not None else ""
        events.append(Event(action.performed_at, "action", action.outcome or action.kind,
                            users.get(action.performed_by), codes=codes, note=note))
    since = case.opened_at - timedelta(days=1)
    for attempt in session.scalars(select(ContactAttempt).where(
            ContactAttempt.loan_id == case.loan_id, ~ContactAttempt.allowed,
            ContactAttempt.at >= since)):  # fmt: skip
        events.append(Event(attempt.at, "refusal", attempt.rule,
                            until=attempt.next_allowed_at))  # fmt: skip
    for alert in session.scalars(select(Alert).where(Alert.loan_id == case.loan_id,
                                                     Alert.started_at >= since)):
        events.append(Event(alert.started_at, "alert", alert.type, codes=(alert.status,)))
    for payment in session.scalars(select(Payment).where(Payment.loan_id == case.loan_id,
                                                         Payment.received_at >= since)):
        events.append(Event(payment.received_at, "payment", "payment",
                            amount=payment.amount))  # fmt: skip
    for promise in session.scalars(select(Promise).where(Promise.case_id == case.id)):
        made = session.get_one(Action, promise.action_id).performed_at
        events.append(Event(made, "promise", promise.status,
                            detail=promise.promised_on.isoformat(), amount=promise.amount))
    return sorted(events, key=lambda e: e.at, reverse=True)


def vehicle_track(
    session: Session, vehicle_id: int, *, at: datetime, days: int = TRACK_DAYS,
    radius_m: float = 200, min_stay_s: float = 3 * 3600,
) -> tuple[list[tuple[float, float]], list[Stay]]:  # fmt: skip
    """The car's valid fixes (all its devices) in the ``days`` before ``at`` as (lon, lat),
    thinned to at most MAX_TRACK_POINTS, and its stays of ``min_stay_s`` or longer."""
    devices = select(Device.id).where(Device.vehicle_id == vehicle_id)
    rows = session.execute(
        select(Position.fix_time, Position.lat, Position.lon)
        .where(Position.device_id.in_(devices), Position.valid,
               Position.fix_time >= at - timedelta(days=days), Position.fix_time <= at)
        .order_by(Position.fix_time)
    ).tuples().all()  # fmt: skip
    if not rows:
        return [], []
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
    return [(float(x), float(y)) for x, y in zip(lon[::step], lat[::step], strict=True)], stays


def open_alerts(session: Session, *, loan_ids: set[int] | None = None) -> list[dict[str, Any]]:
    """The open and acknowledged collateral alerts (of ``loan_ids`` only, when given),
    largest exposure first, each with its evidence: the rule that fired and the fixes."""
    query = select(Alert, Loan.ref, Vehicle.plate).join(Vehicle, Vehicle.id == Alert.vehicle_id)
    query = query.outerjoin(Loan, Loan.id == Alert.loan_id).where(
        Alert.status.in_(OPEN_ALERT_STATUSES))
    if loan_ids is not None:
        query = query.where(Alert.loan_id.in_(loan_ids))
    rows = session.execute(query.order_by(Alert.exposure.desc(), Alert.id).limit(500)).tuples()
    return [{"id": a.id, "type": a.type, "severity": a.severity, "status": a.status,
             "loan": ref, "plate": plate, "started_at": a.started_at, "exposure": a.exposure,
             "lat": a.lat, "lon": a.lon, "repeats": a.repeats,
             "evidence": sorted(a.evidence.items())} for a, ref, plate in rows]  # fmt: skip


SEARCHES = ("ref", "plate", "vin", "phone")


def search_loans(session: Session, text: str, *, by: str,
                 loan_ids: set[int] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Loans by reference, plate or VIN (a prefix, any case) or the borrower's phone (exact),
    at most 50, each with its open case; only ``loan_ids`` when given. Phones masked."""
    if by not in SEARCHES:
        raise LienwatchError(f"by: search by one of {', '.join(SEARCHES)}")
    text = text.strip()
    column = {"ref": Loan.ref, "plate": Vehicle.plate, "vin": Vehicle.vin}.get(by)
    where = (Borrower.phone == text if column is None
             else func.upper(column).startswith(text.upper(), autoescape=True))
    query = (select(Loan, Borrower, Vehicle)
             .join(Borrower, Borrower.id == Loan.borrower_id)
             .join(Vehicle, Vehicle.id == Loan.vehicle_id).where(where))  # fmt: skip
    if loan_ids is not None:
        query = query.where(Loan.id.in_(loan_ids))
    found = session.execute(query.order_by(Loan.ref).limit(50)).tuples().all()
    cases = dict(session.execute(
        select(Case.loan_id, Case.id).where(Case.loan_id.in_([lo.id for lo, _, _ in found]),
                                            Case.status != CaseStatus.CLOSED)
    ).tuples().all())  # fmt: skip
    return [{"loan": lo.ref, "borrower": b.name, "phone": mask_phone(b.phone),
             "plate": v.plate, "vin": v.vin, "status": lo.status,
             "case_id": cases.get(lo.id)} for lo, b, v in found]  # fmt: skip


def user_rows(session: Session, *, team: str | None = None) -> list[dict[str, Any]]:
    """The users (of ``team`` only, when given) by team and name."""
    rows = UserRepository(session).all()
    return [{"username": u.username, "display_name": u.display_name, "role": u.role,
             "team": u.team, "active": u.active, "daily_capacity": u.daily_capacity}
            for u in rows if team is None or u.team == team]  # fmt: skip
