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
    SNAPSHOT_COLUMNS,
    latest_snapshot_of,
    open_alerts_of,
    row_figures,
)
from lienwatch.services.reads.visibility import task_condition
from lienwatch.store.tables import Loan, LoanSnapshot, Task, User

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
    """One round trip: the page of tasks with their loan, assignee, figures and alerts."""
    query = (
        select(Task.id, Task.case_id, Task.channel, Task.step, Task.team, Task.due_at,
               Task.deadline_at, Task.priority, Loan.ref, User.username,
               open_alerts_of(Task.loan_id).label("open_alerts"), *SNAPSHOT_COLUMNS)
        .join(Loan, Loan.id == Task.loan_id)
        .outerjoin(User, User.id == Task.assignee_id)
        .outerjoin(LoanSnapshot, latest_snapshot_of(Task.loan_id))
        .where(Task.status == TaskStatus.QUEUED, condition)
        .order_by(Task.priority.desc(), Task.deadline_at, Task.id)
        .limit(limit)
    )  # fmt: skip
    if after is not None:
        priority, deadline_text, task_id = after
        deadline = datetime.fromisoformat(deadline_text)
        query = query.where(or_(
            Task.priority < priority,
            and_(Task.priority == priority, Task.deadline_at > deadline),
            and_(Task.priority == priority, Task.deadline_at == deadline, Task.id > task_id),
        ))  # fmt: skip
    return [
        {"task": row.id, "case": row.case_id, "loan": row.ref, "channel": row.channel,
         "step": row.step, "team": row.team, "assignee": row.username, "due_at": row.due_at,
         "deadline_at": row.deadline_at, "priority": row.priority,
         "open_alerts": row.open_alerts, **row_figures(row)}
        for row in session.execute(query)
    ]  # fmt: skip


def queue_key(row: dict[str, Any]) -> QueueKey:
    """The key of a queue row, for the cursor of the next page."""
    return (row["priority"], row["deadline_at"].isoformat(), row["task"])
