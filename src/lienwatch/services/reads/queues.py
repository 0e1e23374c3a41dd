"""Queues: an agent's (or a supervisor's own) and a team's, most urgent first, by keyset
pages, each row with what a collector decides on (DPD, amount overdue, unsecured exposure,
open alerts, the step and its deadline)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from lienwatch.access.policy import Scope
from lienwatch.access.principal import Viewer
from lienwatch.followup.model import TaskStatus
from lienwatch.services.reads.figures import (
    latest_snapshots,
    open_alert_counts,
    snapshot_figures,
)
from lienwatch.services.reads.visibility import task_condition
from lienwatch.store.tables import Loan, Task, User

#: A page starts after the row with this key: (priority, deadline ISO 8601, task id).
QueueKey = tuple[int, str, int]


def my_queue(
    session: Session, viewer: Viewer, *, limit: int, after: QueueKey | None = None
) -> list[dict[str, Any]]:
    """The tasks queued for the viewer themselves, most urgent first."""
    mine = Task.assignee_id == viewer.principal.user_id
    return _page(session, mine, limit, after)


def team_queue(
    session: Session, viewer: Viewer, *, limit: int, after: QueueKey | None = None,
    team: str | None = None, unassigned: bool = False,
) -> list[dict[str, Any]]:  # fmt: skip
    """The queued tasks the viewer reaches (a supervisor: their team's, assigned to its
    agents or waiting for the team; an analyst: all, or ``team``'s), most urgent first;
    ``unassigned`` keeps those without an agent."""
    condition = task_condition(viewer)
    if team is not None and viewer.scope is Scope.ALL:
        members = select(User.id).where(User.team == team)
        condition = or_(Task.assignee_id.in_(members), Task.team == team)
    if unassigned:
        condition = and_(condition, Task.assignee_id.is_(None))
    return _page(session, condition, limit, after)


def _page(session: Session, condition: Any, limit: int, after: QueueKey | None) -> list[
    dict[str, Any]
]:
    query = (
        select(Task, Loan.ref, User.username)
        .join(Loan, Loan.id == Task.loan_id)
        .outerjoin(User, User.id == Task.assignee_id)
        .where(Task.status == TaskStatus.QUEUED, condition)
        .order_by(Task.priority.desc(), Task.deadline_at, Task.id)
        .limit(limit)
    )
    if after is not None:
        priority, deadline_text, task_id = after
        deadline = datetime.fromisoformat(deadline_text)
        query = query.where(or_(
            Task.priority < priority,
            and_(Task.priority == priority, Task.deadline_at > deadline),
            and_(Task.priority == priority, Task.deadline_at == deadline, Task.id > task_id),
        ))  # fmt: skip
    rows = session.execute(query).all()
    loan_ids = {task.loan_id for task, _, _ in rows}
    snapshots = latest_snapshots(session, loan_ids)
    alerts = open_alert_counts(session, loan_ids)
    return [
        {"task": task.id, "case": task.case_id, "loan": ref, "channel": task.channel,
         "step": task.step, "team": task.team, "assignee": assignee, "due_at": task.due_at,
         "deadline_at": task.deadline_at, "priority": task.priority,
         "open_alerts": alerts.get(task.loan_id, 0),
         **snapshot_figures(snapshots.get(task.loan_id))}
        for task, ref, assignee in rows
    ]  # fmt: skip


def queue_key(row: dict[str, Any]) -> QueueKey:
    """The key of a queue row, for the cursor of the next page."""
    return (row["priority"], row["deadline_at"].isoformat(), row["task"])
