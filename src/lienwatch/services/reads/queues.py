"""Queues: an agent's (or a supervisor's own) and a team's, most urgent first, by keyset
pages, each row with what a collector decides on (DPD, amount overdue, unsecured exposure,
open alerts, the step and its deadline)."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from lienwatch.access.policy import Scope
from lienwatch.access.principal import Viewer
from lienwatch.followup.model import TaskStatus
from lienwatch.services.reads.figures import FIGURE_COLUMNS, latest_snapshot_of, open_alerts_of
from lienwatch.services.reads.visibility import task_condition
from lienwatch.store.tables import Loan, LoanSnapshot, Task, User

#: A page starts after the row with this key: (priority, deadline ISO 8601, task id).
QueueKey = tuple[int, str, int]


def my_queue(
    session: Session, viewer: Viewer, *, limit: int, after: QueueKey | None = None
) -> list[dict[str, Any]]:
    """The tasks queued for the viewer themselves, most urgent first."""
    return _page(session, _mine(after is not None), {"viewer_id": viewer.principal.user_id},
                 limit, after)  # fmt: skip


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
    return _page(session, _query(condition, after is not None), {}, limit, after)


@cache  # a statement built once per process: an agent's page is the hot read of the API
def _mine(keyed: bool) -> Select[Any]:
    return _query(Task.assignee_id == bindparam("viewer_id"), keyed)


def _query(condition: ColumnElement[bool], keyed: bool) -> Select[Any]:
    """The page of queued tasks meeting ``condition``, each with its loan, assignee, figures
    and open alerts, in one statement; ``keyed``: after the key given as bound parameters."""
    query = (
        select(Task.id.label("task"), Task.case_id.label("case"), Loan.ref.label("loan"),
               Task.channel, Task.step, Task.team, User.username.label("assignee"),
               Task.due_at, Task.deadline_at, Task.priority,
               open_alerts_of(Task.loan_id).label("open_alerts"), *FIGURE_COLUMNS)
        .join(Loan, Loan.id == Task.loan_id)
        .outerjoin(User, User.id == Task.assignee_id)
        .outerjoin(LoanSnapshot, latest_snapshot_of(Task.loan_id))
        .where(Task.status == TaskStatus.QUEUED, condition)
        .order_by(Task.priority.desc(), Task.deadline_at, Task.id)
        .limit(bindparam("limit"))
    )  # fmt: skip
    if keyed:
        priority, deadline = bindparam("after_priority"), bindparam("after_deadline")
        query = query.where(or_(
            Task.priority < priority,
            and_(Task.priority == priority, Task.deadline_at > deadline),
            and_(Task.priority == priority, Task.deadline_at == deadline,
                 Task.id > bindparam("after_task")),
        ))  # fmt: skip
    return query


def _page(
    session: Session, query: Select[Any], params: dict[str, Any], limit: int,
    after: QueueKey | None,
) -> list[dict[str, Any]]:  # fmt: skip
    """One round trip: the rows of ``query`` as the queue shows them."""
    params = {**params, "limit": limit}
    if after is not None:
        priority, deadline_text, task_id = after
        params |= {"after_priority": priority,
                   "after_deadline": datetime.fromisoformat(deadline_text),
                   "after_task": task_id}  # fmt: skip
    return [dict(row) for row in session.execute(query, params).mappings()]


def queue_key(row: dict[str, Any]) -> QueueKey:
    """The key of a queue row, for the cursor of the next page."""
    return (row["priority"], row["deadline_at"].isoformat(), row["task"])
