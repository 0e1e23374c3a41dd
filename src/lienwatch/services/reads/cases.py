"""A case as a collector works it: the loan and borrower, the figures, the open tasks, and
its timeline (triggers, steps, actions, refused contacts, alerts, payments, promises)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from lienwatch.access.policy import Scope
from lienwatch.access.principal import Viewer
from lienwatch.errors import NotFoundError
from lienwatch.followup.model import Channel, TaskStatus
from lienwatch.services.reads.book import loan_summary
from lienwatch.services.reads.figures import FIGURE_COLUMNS, latest_snapshot_of, open_alerts_of
from lienwatch.services.reads.people import borrower_view
from lienwatch.services.reads.visibility import case_condition, case_rule, viewer_params
from lienwatch.store.tables import (
    Action,
    Alert,
    Borrower,
    Case,
    ContactAttempt,
    Loan,
    LoanSnapshot,
    Payment,
    Promise,
    Task,
    Trigger,
    User,
    Vehicle,
)


def visible_case(session: Session, viewer: Viewer, case_id: int) -> Case:
    """Case ``case_id`` if ``viewer`` reaches it; else not found."""
    case = session.scalar(select(Case).where(Case.id == case_id, case_condition(viewer)))
    if case is None:
        raise NotFoundError(f"case_id: no case {case_id}")
    return case


def visible_tracker_request(
    session: Session, viewer: Viewer, request_id: int
) -> tuple[Action, str]:
    """Tracker command request ``request_id`` (its action) and its loan's reference, if
    ``viewer`` reaches its case; else not found."""
    found = session.execute(
        select(Action, Loan.ref).join(Case, Case.id == Action.case_id)
        .join(Loan, Loan.id == Case.loan_id)
        .where(Action.id == request_id, Action.kind == Channel.TRACKER_COMMAND.value,
               case_condition(viewer))
    ).first()  # fmt: skip
    if found is None:
        raise NotFoundError(f"request_id: no tracker command request {request_id}")
    return found[0], found[1]


def tracker_request_view(session: Session, request: Action, loan: str) -> dict[str, Any]:
    """A tracker command request as listed: who asked for which command, when and why."""
    asker = session.get(User, request.performed_by) if request.performed_by else None
    return {"request": request.id, "case": request.case_id, "loan": loan,
            "command": request.details["command"], "requested_at": request.performed_at,
            "requested_by": asker.username if asker else None, "why": request.note}  # fmt: skip


def case_brief(session: Session, case: Case) -> dict[str, Any]:
    """A case's id, status and the username of its holder."""
    holder = session.get(User, case.assignee_id) if case.assignee_id else None
    return {"case": case.id, "status": case.status,
            "assignee": holder.username if holder else None}  # fmt: skip


def case_detail(
    session: Session, viewer: Viewer, case_id: int, *, at: datetime, reveal: bool = False,
    client: str = "",
) -> dict[str, Any]:  # fmt: skip
    """The case with its loan, borrower (masked unless revealed), vehicle, figures and open
    tasks, in two round trips."""
    found = session.execute(
        _detail(viewer.scope), {"case_id": case_id, **viewer_params(viewer)}
    ).first()
    if found is None:
        raise NotFoundError(f"case_id: no case {case_id}")
    case, loan, borrower, vehicle = found[:4]
    tasks = session.execute(_open_tasks(), {"case_id": case.id}).mappings()
    figures = {key: found._mapping[key] for key in FIGURES}
    return {
        "case": case.id, "status": case.status, "hold": case.hold, "priority": case.priority,
        "opened_at": case.opened_at, "closed_at": case.closed_at,
        "close_reason": case.close_reason, "strategy": case.strategy,
        "assignee": found.username,
        "loan": loan_summary(loan),
        "borrower": borrower_view(session, viewer, borrower, reveal=reveal, at=at,
                                  client=client, why=f"case {case.id}"),
        "vehicle": {"vin": vehicle.vin, "plate": vehicle.plate, "make": vehicle.make,
                    "model": vehicle.model},
        "figures": {**figures, "open_alerts": found.open_alerts},
        "tasks": [dict(task) for task in tasks],
    }  # fmt: skip


FIGURES = [column.key for column in FIGURE_COLUMNS]


@cache  # statements built once per process (with the viewer as bound parameters)
def _detail(scope: Scope) -> Select[Any]:
    return (
        select(Case, Loan, Borrower, Vehicle, User.username,
               open_alerts_of(Case.loan_id).label("open_alerts"), *FIGURE_COLUMNS)
        .join(Loan, Loan.id == Case.loan_id).join(Borrower, Borrower.id == Loan.borrower_id)
        .join(Vehicle, Vehicle.id == Loan.vehicle_id)
        .outerjoin(User, User.id == Case.assignee_id)
        .outerjoin(LoanSnapshot, latest_snapshot_of(Case.loan_id))
        .where(Case.id == bindparam("case_id"), case_rule(scope))
    )  # fmt: skip


@cache
def _open_tasks() -> Select[Any]:
    return (
        select(Task.id.label("task"), Task.channel, Task.step, Task.due_at, Task.deadline_at,
               User.username.label("assignee"))
        .outerjoin(User, User.id == Task.assignee_id)
        .where(Task.case_id == bindparam("case_id"), Task.status == TaskStatus.QUEUED)
        .order_by(Task.deadline_at, Task.id)
    )  # fmt: skip


#: A timeline page starts after the item with this key: (time ISO 8601, item id).
TimelineKey = tuple[str, str]


def case_timeline(
    session: Session, viewer: Viewer, case_id: int, *, limit: int | None = None,
    after: TimelineKey | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Everything that happened on the case and its loan, oldest first (each item's ``id``
    is ``kind:row``), ``limit`` items after the item keyed ``after`` when given."""
    case = visible_case(session, viewer, case_id)
    items = [*_triggers(session, case), *_actions(session, case), *_refusals(session, case),
             *_alerts(session, case), *_payments(session, case),
             *_promises(session, case)]  # fmt: skip
    items.sort(key=lambda item: (item["at"], item["id"]))
    if after is not None:
        moment, ident = datetime.fromisoformat(after[0]), after[1]
        items = [item for item in items if (item["at"], item["id"]) > (moment, ident)]
    return items if limit is None else items[:limit]


def timeline_key(item: dict[str, Any]) -> TimelineKey:
    """The key of a timeline item, for the cursor of the next page."""
    return item["at"].isoformat(), item["id"]


def _item(at: datetime, kind: str, row: int | str, summary: str, **details: Any) -> dict[str, Any]:
    return {"id": f"{kind}:{row}", "at": at, "kind": kind, "summary": summary,
            "details": details}  # fmt: skip


def _triggers(session: Session, case: Case) -> list[dict[str, Any]]:
    rows = session.scalars(select(Trigger).where(Trigger.case_id == case.id).order_by(Trigger.id))
    items = []
    for t in rows:
        items.append(_item(t.opened_at, "trigger", t.id, f"{t.kind} raised", trigger=t.id,
                           trigger_kind=t.kind, ladder=t.ladder, step=t.step,
                           deadline_at=_iso(t.deadline_at)))  # fmt: skip
        if t.resolved_at is not None:
            items.append(_item(t.resolved_at, "trigger_resolved", t.id, f"{t.kind} resolved",
                               trigger=t.id, resolution=t.resolution))  # fmt: skip
    return items


def _actions(session: Session, case: Case) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Action, User.username).outerjoin(User, User.id == Action.performed_by)
        .where(Action.case_id == case.id)
    ).all()  # fmt: skip
    return [_item(a.performed_at, "action", a.id, f"{a.kind}: {a.outcome or ''}".rstrip(": "),
                  action=a.id, action_kind=a.kind, outcome=a.outcome, note=a.note, by=who,
                  step=a.details.get("step"))
            for a, who in rows]  # fmt: skip


def _refusals(session: Session, case: Case) -> list[dict[str, Any]]:
    rows = session.scalars(select(ContactAttempt).where(
        ContactAttempt.loan_id == case.loan_id, ContactAttempt.allowed.is_(False),
        ContactAttempt.at >= case.opened_at))  # fmt: skip
    return [_item(c.at, "contact_refused", c.id, f"{c.channel} refused ({c.rule})",
                  channel=c.channel, rule=c.rule, next_allowed_at=_iso(c.next_allowed_at))
            for c in rows]  # fmt: skip


def _alerts(session: Session, case: Case) -> list[dict[str, Any]]:
    rows = session.scalars(select(Alert).where(Alert.loan_id == case.loan_id))
    return [_item(a.started_at, "alert", a.id, f"{a.type} ({a.severity})", alert=a.id,
                  alert_type=a.type, severity=a.severity, status=a.status,
                  decided_by=a.status_by, decided_at=_iso(a.status_at))
            for a in rows]  # fmt: skip


def _payments(session: Session, case: Case) -> list[dict[str, Any]]:
    rows = session.scalars(select(Payment).where(Payment.loan_id == case.loan_id))
    zone = ZoneInfo(session.get_one(Loan, case.loan_id).time_zone)  # a value date is local
    return [_item(datetime.combine(p.paid_on, time(), tzinfo=zone).astimezone(UTC), "payment",
                  p.external_id,
                  f"payment of {p.amount} fen" + (" (reversed)" if p.reversed_at else ""),
                  payment=p.external_id, amount_fen=p.amount, paid_on=p.paid_on.isoformat(),
                  channel=p.channel, reversed_at=_iso(p.reversed_at))
            for p in rows]  # fmt: skip


def _promises(session: Session, case: Case) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Promise, Action.performed_at).join(Action, Action.id == Promise.action_id)
        .where(Promise.case_id == case.id)
    ).all()  # fmt: skip
    return [_item(made, "promise", p.id, f"promise of {p.amount} fen by {p.promised_on}",
                  promise=p.id, promised_on=p.promised_on.isoformat(), amount_fen=p.amount,
                  status=p.status, decided_at=_iso(p.decided_at))
            for p, made in rows]  # fmt: skip


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
