"""Queries of the follow-up tables the engine and its reports share: who owes a delinquency
follow-up, the queue as assignment sees it, the work nobody present can take."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session

from lienwatch.domain.delinquency import FINAL_STATUSES, LIVE_STATUSES
from lienwatch.followup.assignment import AgentSlot, QueuedTask, unstaffed
from lienwatch.followup.model import TaskStatus
from lienwatch.followup.triggers import DELINQUENCY
from lienwatch.monitor.model import OPEN_STATUSES
from lienwatch.store.tables import Borrower, Loan, LoanSnapshot, Task, Trigger, User

# Loan statuses that end every trigger of the loan, and those still followed up.
FINAL_LOAN_STATUSES = tuple(sorted(FINAL_STATUSES))
LIVE_LOAN_STATUSES = tuple(sorted(LIVE_STATUSES))
OPEN_ALERT_STATUSES = tuple(sorted(OPEN_STATUSES))
HISTORY_DAYS = 7  # contact history the guard needs (the longest rule is 7 days)


def owes_delinquency_follow_up(loan_id: Any, at: datetime | None = None) -> ColumnElement[bool]:
    """SQL over snapshots joined to their loans: the loan (``loan_id``) is past due in the
    snapshot, live, and has no delinquency trigger open (at ``at``, or now): the book owes a
    follow-up nobody is giving."""
    open_trigger = Trigger.resolved_at.is_(None)
    if at is not None:
        resolved_later = or_(Trigger.resolved_at.is_(None), Trigger.resolved_at > at)
        open_trigger = and_(Trigger.opened_at <= at, resolved_later)
    followed = exists().where(Trigger.loan_id == loan_id, open_trigger,
                              Trigger.kind.in_([k.value for k in DELINQUENCY]))  # fmt: skip
    return and_(LoanSnapshot.dpd > 0, Loan.status.in_(LIVE_LOAN_STATUSES), ~followed)


def unassigned_tasks(session: Session) -> list[QueuedTask]:
    """The queued tasks nobody holds, as assignment sees them."""
    rows = session.execute(
        select(Task.id, Task.skill, Task.priority, Task.deadline_at, Borrower.province_code,
               Task.team)
        .join(Loan, Loan.id == Task.loan_id)
        .join(Borrower, Borrower.id == Loan.borrower_id)
        .where(Task.status == TaskStatus.QUEUED, Task.assignee_id.is_(None))
    ).all()  # fmt: skip
    return [QueuedTask(t.id, t.skill, t.priority, t.deadline_at, t.province_code, team=t.team)
            for t in rows]  # fmt: skip


def unstaffed_tasks(session: Session) -> list[QueuedTask]:
    """Queued tasks nobody holds that no active agent can take (no one of their skill, team
    and region is present): they will breach unless someone is hired, back or re-skilled."""
    agents = session.scalars(select(User).where(User.role == "agent", User.active.is_(True)))
    return unstaffed(unassigned_tasks(session), [agent_slot(agent, 0) for agent in agents])


def agent_slot(agent: User, taken_today: int) -> AgentSlot:
    """An agent as assignment sees them, with ``taken_today`` tasks already taken."""
    skills = agent.skills or {}
    return AgentSlot(
        id=agent.id,
        team=agent.team or "",
        skill=str(skills.get("mode", "phone")),
        regions=frozenset(skills.get("regions", ())),
        languages=frozenset(skills.get("languages", ())),
        remaining=max(agent.daily_capacity - taken_today, 0),
        load=taken_today,
    )

