"""Queries of the follow-up tables the engine and its reports share: who owes a delinquency
follow-up, the queue as assignment sees it, the work nobody present can take."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    exists,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from lienwatch.domain.delinquency import FINAL_STATUSES, LIVE_STATUSES
from lienwatch.followup.assignment import AgentSlot, QueuedTask, unstaffed
from lienwatch.followup.model import TaskStatus, agent_skills
from lienwatch.followup.triggers import DELINQUENCY
from lienwatch.monitor.model import OPEN_STATUSES
from lienwatch.store.db import chunks
from lienwatch.store.tables import Borrower, Case, Loan, LoanSnapshot, Task, Trigger, User
from lienwatch.store.tables.followup import DELINQUENCY_KINDS

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


def uncovered_loans(session: Session, day: date) -> list[int]:
    """:func:`uncovered_past_due` read; on PostgreSQL without parallel workers, each of which
    would read the whole index of open delinquency triggers again (the inner side of a
    parallel merge join is not divided among them): three times the work for no gain."""
    serial = session.get_bind().dialect.name == "postgresql"
    if serial:
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    try:
        return list(session.scalars(uncovered_past_due(day)))
    finally:
        if serial:
            session.execute(text("SET LOCAL max_parallel_workers_per_gather TO DEFAULT"))


def uncovered_past_due(day: date) -> Select[tuple[int]]:
    """The loans past due in the snapshot of ``day`` without an open delinquency trigger,
    in loan order, live or not (see :func:`owes_delinquency_follow_up` for the whole test).

    The coverage check runs it at every tick over the whole book, so it reads only the two
    partial indexes ``ix_loan_snapshots_past_due`` and ``ix_triggers_open_delinquency``:
    on PostgreSQL a merge anti-join of two index-only scans of loan ids (no table read, no
    hash of the book). The predicates are literals, as in the indexes, so that a generic
    plan of the prepared statement still proves them."""
    kinds = bindparam("delinquency_kinds", list(DELINQUENCY_KINDS), literal_execute=True)
    followed = exists().where(Trigger.loan_id == LoanSnapshot.loan_id,
                              Trigger.resolved_at.is_(None), Trigger.kind.in_(kinds))  # fmt: skip
    return (
        select(LoanSnapshot.loan_id)
        .where(LoanSnapshot.as_of == day, LoanSnapshot.dpd > literal_column("0"), ~followed)
        .order_by(LoanSnapshot.loan_id)
    )


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
               Task.team, Case.assignee_id)
        .join(Loan, Loan.id == Task.loan_id)
        .join(Borrower, Borrower.id == Loan.borrower_id)
        .join(Case, Case.id == Task.case_id)
        .where(Task.status == TaskStatus.QUEUED, Task.assignee_id.is_(None))
    ).all()  # fmt: skip
    return [QueuedTask(t.id, t.skill, t.priority, t.deadline_at, t.province_code, team=t.team,
                       owner=t.assignee_id)
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

