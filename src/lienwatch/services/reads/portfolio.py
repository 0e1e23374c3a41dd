"""The book as the nightly run's snapshots show it, summed: the read verbs of the daily report's
portfolio, delinquency and models sections (and of the demo's summary). Amounts are fen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lienwatch.domain.delinquency import LoanStatus
from lienwatch.store.tables import Borrower, Loan, LoanSnapshot

DEFAULT_DPD = 90  # a loan defaulted once more than this many days past due, or written off
WRITTEN_OFF = (LoanStatus.CHARGED_OFF, LoanStatus.REPOSSESSED, LoanStatus.WRITTEN_OFF)


@dataclass(frozen=True, slots=True)
class MonthEnd:
    """One loan's snapshot at the end of a calendar month, with what vintages need."""

    loan: int
    month: date  # the first day of the snapshot's month
    bucket: str
    dpd: int
    outstanding: int  # principal, fen
    disbursed_on: date
    principal: int  # disbursed, fen


def snapshot_buckets(session: Session) -> set[str]:
    """Every bucket name the snapshots hold."""
    return set(session.scalars(select(LoanSnapshot.bucket).distinct()))


def exposure_by_segment(session: Session, day: date) -> list[tuple[Any, ...]]:
    """(product, booking province, origination grade or None, loans, outstanding, EAD,
    unsecured) of ``day``'s snapshots."""
    return list(session.execute(
        select(Loan.product, Loan.booked_province, Loan.grade, func.count(),
               func.sum(LoanSnapshot.outstanding_principal), func.sum(LoanSnapshot.ead),
               func.sum(LoanSnapshot.unsecured))
        .join(Loan, Loan.id == LoanSnapshot.loan_id)
        .where(LoanSnapshot.as_of == day)
        .group_by(Loan.product, Loan.booked_province, Loan.grade)
    ).all())  # fmt: skip


def bucket_balances(session: Session, day: date) -> dict[str, tuple[int, int]]:
    """bucket -> (loans, outstanding principal) of ``day``'s snapshots."""
    rows = session.execute(
        select(LoanSnapshot.bucket, func.count(), func.sum(LoanSnapshot.outstanding_principal))
        .where(LoanSnapshot.as_of == day)
        .group_by(LoanSnapshot.bucket)
    ).all()
    return {bucket: (n, int(balance)) for bucket, n, balance in rows}


def past_due_30(session: Session, day: date) -> tuple[int, int]:
    """(loans, outstanding principal) of ``day``'s snapshots at DPD ≥ 30."""
    count, balance = session.execute(
        select(func.count(), func.coalesce(func.sum(LoanSnapshot.outstanding_principal), 0))
        .where(LoanSnapshot.as_of == day, LoanSnapshot.dpd >= 30)
    ).one()  # fmt: skip
    return count, int(balance)


def daily_totals(session: Session, *, day: date, days: int) -> list[dict[str, Any]]:
    """Loans, outstanding principal, unsecured exposure and the 30+ share of each nightly run
    of the ``days`` days up to ``day``, oldest first."""
    window = (LoanSnapshot.as_of > day - timedelta(days=days), LoanSnapshot.as_of <= day)
    totals = session.execute(
        select(LoanSnapshot.as_of, func.count(), func.sum(LoanSnapshot.outstanding_principal),
               func.sum(LoanSnapshot.unsecured))
        .where(*window).group_by(LoanSnapshot.as_of)
    ).all()  # fmt: skip
    late = dict(session.execute(
        select(LoanSnapshot.as_of, func.sum(LoanSnapshot.outstanding_principal))
        .where(*window, LoanSnapshot.dpd >= 30).group_by(LoanSnapshot.as_of)
    ).all())  # fmt: skip
    return [
        {"day": d.isoformat(), "loans": n, "outstanding": int(out), "unsecured": int(uns),
         "dpd30_share": int(late.get(d) or 0) / int(out) if out else None}
        for d, n, out, uns in sorted(totals)
    ]  # fmt: skip


def month_end_snapshots(session: Session, *, start: date, end: date) -> list[MonthEnd]:
    """Each loan's last snapshot of every calendar month from ``start``'s to ``end``'s."""
    first, last = start.replace(day=1), end.replace(day=1)
    month = func.strftime("%Y-%m", LoanSnapshot.as_of)
    if session.get_bind().dialect.name == "postgresql":
        month = func.to_char(LoanSnapshot.as_of, "YYYY-MM")
    after = date(last.year + last.month // 12, last.month % 12 + 1, 1)
    latest = (
        select(LoanSnapshot.loan_id, func.max(LoanSnapshot.as_of).label("as_of"))
        .where(LoanSnapshot.as_of >= first, LoanSnapshot.as_of < after)
        .group_by(LoanSnapshot.loan_id, month)
        .subquery()
    )
    rows = session.execute(
        select(LoanSnapshot.loan_id, LoanSnapshot.as_of, LoanSnapshot.bucket, LoanSnapshot.dpd,
               LoanSnapshot.outstanding_principal, Loan.disbursed_on, Loan.principal)
        .join(latest, (LoanSnapshot.loan_id == latest.c.loan_id)
              & (LoanSnapshot.as_of == latest.c.as_of))
        .join(Loan, Loan.id == LoanSnapshot.loan_id)
        .order_by(LoanSnapshot.loan_id, LoanSnapshot.as_of)
    ).all()  # fmt: skip
    return [
        MonthEnd(row.loan_id, row.as_of.replace(day=1), row.bucket, row.dpd,
                 row.outstanding_principal, row.disbursed_on, row.principal)
        for row in rows
    ]  # fmt: skip


def grades_against_outcome(session: Session, day: date) -> list[dict[str, Any]]:
    """By grade, the graded loans disbursed by ``day``, their balance that day, and those that
    defaulted so far: more than 90 days past due in a snapshot up to ``day``, or charged off,
    repossessed or written off."""
    worst = dict(session.execute(
        select(LoanSnapshot.loan_id, func.max(LoanSnapshot.dpd))
        .where(LoanSnapshot.as_of <= day).group_by(LoanSnapshot.loan_id)
    ).all())  # fmt: skip
    balance = dict(session.execute(
        select(LoanSnapshot.loan_id, LoanSnapshot.outstanding_principal)
        .where(LoanSnapshot.as_of == day)
    ).all())  # fmt: skip
    found: dict[str, dict[str, int]] = {}
    for loan_id, grade, status in session.execute(
        select(Loan.id, Loan.grade, Loan.status)
        .where(Loan.grade.is_not(None), Loan.disbursed_on <= day)
    ):  # fmt: skip
        row = found.setdefault(grade, {"loans": 0, "outstanding": 0, "defaulted": 0})
        row["loans"] += 1
        row["outstanding"] += balance.get(loan_id, 0)
        row["defaulted"] += worst.get(loan_id, 0) > DEFAULT_DPD or status in WRITTEN_OFF
    return [{"grade": grade, **row, "default_rate": round(row["defaulted"] / row["loans"], 4)}
            for grade, row in sorted(found.items())]  # fmt: skip


def grade_mix(session: Session, *, grades: tuple[str, ...], day: date,
              since: date) -> dict[str, dict[str, int]]:  # fmt: skip
    """The graded loans disbursed by ``day`` by grade: ``recent`` (disbursed after ``since``)
    and ``reference`` (the book before them)."""
    counts = {"reference": dict.fromkeys(grades, 0), "recent": dict.fromkeys(grades, 0)}
    for grade, disbursed, n in session.execute(
        select(Loan.grade, Loan.disbursed_on, func.count())
        .where(Loan.grade.in_(grades), Loan.disbursed_on <= day)
        .group_by(Loan.grade, Loan.disbursed_on)
    ):  # fmt: skip
        counts["recent" if disbursed > since else "reference"][grade] += n
    return counts


def borrower_contacts(session: Session, *, day: date) -> list[tuple[str, str, str]]:
    """(ref, phone, address) of every borrower with a loan disbursed by ``day``: what fraud
    rings are linked by, as the book stood on that day."""
    booked = select(Loan.borrower_id).where(Loan.disbursed_on <= day)
    return [tuple(row) for row in session.execute(
        select(Borrower.ref, Borrower.phone, Borrower.address)
        .where(Borrower.id.in_(booked)).order_by(Borrower.ref))]  # fmt: skip
