"""Queries of the follow-up tables the engine and its reports share: who owes a delinquency
follow-up, the queue as assignment sees it, the work nobody present can take."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, literal, null, or_, select, union_all
from sqlalchemy.orm import Session

from lienwatch.domain.delinquency import FINAL_STATUSES, LIVE_STATUSES
from lienwatch.followup.assignment import AgentSlot, QueuedTask, unstaffed
from lienwatch.followup.model import TaskStatus, agent_skills
from lienwatch.followup.triggers import DELINQUENCY
from lienwatch.monitor.model import OPEN_STATUSES
from lienwatch.store.db import chunks
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


@dataclass(frozen=True, slots=True)
class NextStep:
    """What comes next on an open case: its first queued task (``task_id`` and ``channel``
    set), else its first open trigger's next step, which the automation takes (both None)."""

    case_id: int
    task_id: int | None
    channel: str | None
    trigger_id: int
    trigger_kind: str
    due_at: datetime
    deadline_at: datetime


def next_steps(session: Session, case_ids: Iterable[int]) -> dict[int, NextStep]:
    """The next step of each case of ``case_ids`` that has one, in one query per 5,000 cases:
    queued tasks before open triggers, then the earliest due, then the lowest id."""
    found: dict[int, NextStep] = {}
    for chunk in chunks(list(case_ids)):
        tasks = select(
            Task.case_id, Task.id.label("task_id"), Task.channel, Task.trigger_id,
            literal(0).label("rank"), Task.due_at.label("due_at"),
            Task.deadline_at.label("deadline_at"), Task.id.label("item_id"),
        ).where(Task.case_id.in_(chunk), Task.status == TaskStatus.QUEUED)  # fmt: skip
        triggers = select(
            Trigger.case_id, null(), null(), Trigger.id, literal(1), Trigger.next_due_at,
            Trigger.deadline_at, Trigger.id,
        ).where(Trigger.case_id.in_(chunk), Trigger.resolved_at.is_(None))  # fmt: skip
        steps = union_all(tasks, triggers).subquery()
        first = func.row_number().over(partition_by=steps.c.case_id,
                                       order_by=(steps.c.rank, steps.c.due_at, steps.c.item_id))
        ranked = select(steps, first.label("n")).subquery()
        rows = session.execute(
            select(ranked.c.case_id, ranked.c.task_id, ranked.c.channel, ranked.c.trigger_id,
                   Trigger.kind, ranked.c.due_at, ranked.c.deadline_at)
            .join(Trigger, Trigger.id == ranked.c.trigger_id).where(ranked.c.n == 1)
        ).all()  # fmt: skip
        found.update({row.case_id: NextStep(*row) for row in rows})
    return found


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
        skills=frozenset(agent_skills(skills)),
        regions=frozenset(skills.get("regions", ())),
        languages=frozenset(skills.get("languages", ())),
        remaining=max(agent.daily_capacity - taken_today, 0),
        load=taken_today,
    )

