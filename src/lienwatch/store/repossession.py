"""Queries of the repossession tables the repossession service and its readers share."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lienwatch.store.tables import Action, LoanSnapshot, RepossessionCost, RepossessionStep

ACTION_KIND = "repossession"  # the kind of a repossession's actions on its case's timeline


def overdue_steps(session: Session, at: datetime) -> list[RepossessionStep]:
    """The steps waited for past their SLA deadline at ``at``, most overdue first."""
    return list(session.scalars(
        select(RepossessionStep)
        .where(RepossessionStep.done_at.is_(None), RepossessionStep.deadline_at < at)
        .order_by(RepossessionStep.deadline_at, RepossessionStep.id)
    ))  # fmt: skip


def open_step(session: Session, repossession_id: int) -> RepossessionStep | None:
    """The step a repossession waits for; None once it is final."""
    return session.scalar(
        select(RepossessionStep).where(RepossessionStep.repossession_id == repossession_id,
                                       RepossessionStep.done_at.is_(None))
    )  # fmt: skip


def timeline(session: Session, case_id: int) -> list[Action]:
    """A case's repossession actions, in order."""
    return list(session.scalars(
        select(Action).where(Action.case_id == case_id, Action.kind == ACTION_KIND)
        .order_by(Action.performed_at, Action.id)
    ))  # fmt: skip


def latest_snapshot(session: Session, loan_id: int, day: date) -> LoanSnapshot | None:
    """The loan's latest nightly snapshot up to ``day``."""
    return session.scalar(
        select(LoanSnapshot).where(LoanSnapshot.loan_id == loan_id, LoanSnapshot.as_of <= day)
        .order_by(LoanSnapshot.as_of.desc()).limit(1)
    )  # fmt: skip


def costs_total(session: Session, repossession_id: int) -> int:
    """The fen a repossession has cost so far."""
    return int(session.scalar(
        select(func.coalesce(func.sum(RepossessionCost.amount), 0))
        .where(RepossessionCost.repossession_id == repossession_id)
    ))  # fmt: skip
