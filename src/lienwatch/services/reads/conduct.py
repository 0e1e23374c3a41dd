"""Collection conduct as a regulator reads it (the disclosure pack of ``lienwatch report
--disclosure``) and repossessions with their proceeds: the report's read verbs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from lienwatch.store.tables import (
    Case,
    Complaint,
    ContactAttempt,
    Loan,
    LoanSnapshot,
    Repossession,
)


def repossession_totals(session: Session, at: datetime) -> list[dict[str, Any]]:
    """By status, the repossessions ordered by ``at``: count, sale proceeds, costs recovered,
    paid to the loans and deficiency (fen)."""
    rows = session.execute(
        select(Repossession.status, func.count(),
               func.coalesce(func.sum(Repossession.sale_price), 0),
               func.coalesce(func.sum(Repossession.costs_recovered), 0),
               func.coalesce(func.sum(Repossession.paid_to_loan), 0),
               func.coalesce(func.sum(Repossession.deficiency), 0))
        .where(Repossession.ordered_at <= at)
        .group_by(Repossession.status)
    ).all()  # fmt: skip
    return [
        {"status": s, "count": n, "proceeds": int(p), "costs_recovered": int(c),
         "to_loan": int(t), "deficiency": int(d)}
        for s, n, p, c, t, d in sorted(rows)
    ]  # fmt: skip


def portfolio_quality(session: Session, day: str) -> list[Any]:
    """(product, bucket, loans, outstanding, EAD, unsecured) of the snapshots of ``day``."""
    return session.execute(
        select(Loan.product, LoanSnapshot.bucket, func.count(),
               func.sum(LoanSnapshot.outstanding_principal), func.sum(LoanSnapshot.ead),
               func.sum(LoanSnapshot.unsecured))
        .join(Loan, Loan.id == LoanSnapshot.loan_id)
        .where(LoanSnapshot.as_of == datetime.fromisoformat(day).date())
        .group_by(Loan.product, LoanSnapshot.bucket)
        .order_by(Loan.product, LoanSnapshot.bucket)
    ).all()  # fmt: skip


def contact_attempts(session: Session, since: datetime, at: datetime) -> list[Any]:
    """By channel and agency, the contacts the guard decided in ``(since, at]``: attempts,
    allowed, refused, connected, conversations."""
    allowed = case((ContactAttempt.allowed, 1), else_=0)
    return session.execute(
        select(ContactAttempt.channel, ContactAttempt.agency, func.count(), func.sum(allowed),
               func.sum(1 - allowed),
               func.sum(case((ContactAttempt.allowed & ContactAttempt.connected, 1), else_=0)),
               func.sum(case((ContactAttempt.allowed & ContactAttempt.conversation, 1),
                             else_=0)))
        .where(ContactAttempt.at > since, ContactAttempt.at <= at)
        .group_by(ContactAttempt.channel, ContactAttempt.agency)
        .order_by(ContactAttempt.channel, ContactAttempt.agency)
    ).all()  # fmt: skip


def refusals_by_rule(session: Session, since: datetime, at: datetime) -> list[Any]:
    """(rule, channel, refused) of the contacts refused in ``(since, at]``, most first."""
    return session.execute(
        select(ContactAttempt.rule, ContactAttempt.channel, func.count())
        .where(ContactAttempt.at > since, ContactAttempt.at <= at, ~ContactAttempt.allowed)
        .group_by(ContactAttempt.rule, ContactAttempt.channel)
        .order_by(func.count().desc(), ContactAttempt.rule, ContactAttempt.channel)
    ).all()  # fmt: skip


def disputes_on_hold(session: Session, at: datetime) -> list[Any]:
    """(hold, cases) of the cases opened by ``at`` with a hold now."""
    return session.execute(
        select(Case.hold, func.count())
        .where(Case.hold.is_not(None), Case.opened_at <= at)
        .group_by(Case.hold)
        .order_by(Case.hold)
    ).all()  # fmt: skip


def complaints_by_category(session: Session, since: datetime, at: datetime) -> list[Any]:
    """By category and channel: complaints received and resolved in ``(since, at]``, upheld
    of those resolved, open at ``at``."""
    received = (Complaint.received_at > since) & (Complaint.received_at <= at)
    resolved = (Complaint.resolved_at > since) & (Complaint.resolved_at <= at)
    still_open = (Complaint.received_at <= at) & (
        Complaint.resolved_at.is_(None) | (Complaint.resolved_at > at))
    return session.execute(
        select(Complaint.category, Complaint.channel, func.sum(case((received, 1), else_=0)),
               func.sum(case((resolved, 1), else_=0)),
               func.sum(case((resolved & Complaint.upheld, 1), else_=0)),
               func.sum(case((still_open, 1), else_=0)))
        .where(Complaint.received_at <= at)
        .group_by(Complaint.category, Complaint.channel)
        .order_by(Complaint.category, Complaint.channel)
    ).all()  # fmt: skip


def repossessions_by_route(session: Session, since: datetime, at: datetime) -> list[Any]:
    """By route and status: orders placed in ``(since, at]`` and by ``at``, proceeds, paid to
    loans, deficiency."""
    return session.execute(
        select(Repossession.route, Repossession.status,
               func.sum(case((Repossession.ordered_at > since, 1), else_=0)), func.count(),
               func.coalesce(func.sum(Repossession.sale_price), 0),
               func.coalesce(func.sum(Repossession.paid_to_loan), 0),
               func.coalesce(func.sum(Repossession.deficiency), 0))
        .where(Repossession.ordered_at <= at)
        .group_by(Repossession.route, Repossession.status)
        .order_by(Repossession.route, Repossession.status)
    ).all()  # fmt: skip
