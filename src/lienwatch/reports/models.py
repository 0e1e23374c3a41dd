"""Section 5 of the daily report: the risk models on the book. Grades against outcome and
the grade mix's stability (PSI of new loans against the book before them), the behaviour
score's AUC on the loans whose outcome is known now with its champion/challenger, abnormal
payments raised and fraud rings among the borrowers (docs/risk.md)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lienwatch.domain.delinquency import LoanStatus
from lienwatch.risk.behaviour import BehaviourError
from lienwatch.risk.rings import encode_links, find_rings
from lienwatch.risk.stability import psi
from lienwatch.services.behaviour import behaviour_backtest
from lienwatch.services.payment_anomalies import PAYMENT_ANOMALY
from lienwatch.store.followup import OPEN_ALERT_STATUSES
from lienwatch.store.tables import Alert, Borrower, Loan, LoanSnapshot

GRADES = ("A", "B", "C", "D", "E")
NEW_LOAN_DAYS = 90  # loans disbursed this recently are "new" for the grade mix's PSI
DEFAULT_DPD = 90  # a loan defaulted once more than this many days past due, or written off
WRITTEN_OFF = (LoanStatus.CHARGED_OFF, LoanStatus.REPOSSESSED, LoanStatus.WRITTEN_OFF)
RING_MAX_SHARE = 20


def models_figures(session: Session, *, day: date, since: datetime | None,
                   at: datetime) -> dict[str, Any]:  # fmt: skip
    """The section's figures for the business ``day``; ``since`` is the previous report's
    moment (what is new since), ``at`` this one's."""
    return {"installed": True, "grades": grades_against_outcome(session, day),
            "stability": _stability(session, day), "behaviour": _behaviour(session, day),
            "payment_anomalies": _payment_anomalies(session, since, at),
            "rings": _rings(session)}  # fmt: skip


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


def _stability(session: Session, day: date) -> dict[str, Any]:
    """The grade mix of the loans disbursed in the last 90 days against the book's before
    them, and its PSI (None while either side has no graded loan)."""
    start = day - timedelta(days=NEW_LOAN_DAYS)
    counts = {"reference": dict.fromkeys(GRADES, 0), "recent": dict.fromkeys(GRADES, 0)}
    for grade, disbursed, n in session.execute(
        select(Loan.grade, Loan.disbursed_on, func.count())
        .where(Loan.grade.in_(GRADES), Loan.disbursed_on <= day)
        .group_by(Loan.grade, Loan.disbursed_on)
    ):  # fmt: skip
        counts["recent" if disbursed > start else "reference"][grade] += n
    found = psi(list(counts["reference"].values()), list(counts["recent"].values()))
    return {**counts, "psi": None if found is None else round(found, 4),
            "recent_since": start.isoformat()}  # fmt: skip


def _behaviour(session: Session, day: date) -> dict[str, Any]:
    """The behaviour score judged on the last month whose outcome is known, or why not."""
    try:
        result = behaviour_backtest(session, through=day)
    except BehaviourError as exc:
        return {"available": False, "why": str(exc)}
    keep = ("fit_months", "test_months", "rows", "rolled", "auc", "ks", "calibration",
            "capacity", "champion_challenger")  # fmt: skip
    return {"available": True, **{k: result[k] for k in keep}}


def _payment_anomalies(session: Session, since: datetime | None, at: datetime) -> dict[str, int]:
    def count(*where: Any) -> int:
        return session.scalar(
            select(func.count()).select_from(Alert).where(Alert.type == PAYMENT_ANOMALY, *where)
        ) or 0

    raised = [Alert.raised_at <= at] + ([Alert.raised_at > since] if since else [])
    return {"open": count(Alert.status.in_(OPEN_ALERT_STATUSES), Alert.raised_at <= at),
            "new": count(*raised)}  # fmt: skip


def _rings(session: Session) -> dict[str, Any]:
    """Candidate rings among the book's borrowers linked by phone and address."""
    borrowers = session.execute(select(Borrower.ref, Borrower.phone, Borrower.address)).all()
    refs = [ref for ref, _, _ in borrowers]
    held = ((ref, kind, value) for ref, phone, address in borrowers
            for kind, value in (("phone", phone), ("address", address)))  # fmt: skip
    links, _ = encode_links(refs, held)
    rings = find_rings(links, max_share=RING_MAX_SHARE)
    return {"candidate_rings": len(rings), "borrowers": int((rings.ring >= 0).sum()),
            "largest": int(rings.size.max()) if len(rings) else 0,
            "max_share": RING_MAX_SHARE}  # fmt: skip
