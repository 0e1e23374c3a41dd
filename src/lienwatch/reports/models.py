"""Section 5 of the daily report: the risk models on the book. Grades against outcome and
the grade mix's stability (PSI of new loans against the book before them), the behaviour
score's AUC on the loans whose outcome is known now with its champion/challenger, abnormal
payments raised and fraud rings among the borrowers (docs/risk.md)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from lienwatch.risk.behaviour import BehaviourError
from lienwatch.risk.rings import encode_links, find_rings
from lienwatch.risk.stability import psi
from lienwatch.services.behaviour import behaviour_backtest
from lienwatch.services.origination import scorecard_stability
from lienwatch.services.payment_anomalies import PAYMENT_ANOMALY
from lienwatch.services.reads.collateral import alert_counts
from lienwatch.services.reads.portfolio import (
    borrower_contacts,
    grade_mix,
    grades_against_outcome,
)

GRADES = ("A", "B", "C", "D", "E")
NEW_LOAN_DAYS = 90  # loans disbursed this recently are "new" for the grade mix's PSI
RING_MAX_SHARE = 20


def models_figures(session: Session, *, day: date, since: datetime | None,
                   at: datetime, previous_day: date | None = None,
                   previous: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """The section's figures for the business ``day``; ``since`` is the previous report's
    moment (what is new since), ``at`` this one's, ``previous_day`` its business day: the
    grade mix's PSI, the rings and the behaviour score's AUC of that day are given as
    ``changes``, read from ``previous`` (the models section of the report written for that
    day) when given, else computed for it the same way."""
    stability = _stability(session, day)
    behaviour = _behaviour(session, day)
    rings = _rings(session, day)
    found = {"installed": True, "grades": grades_against_outcome(session, day),
             "stability": stability,
             "scorecard": _scorecard(session, day, previous_day, previous),
             "behaviour": behaviour,
             "payment_anomalies": _payment_anomalies(session, since, at),
             "rings": rings}  # fmt: skip
    if previous_day is not None:
        was = previous if previous and {"stability", "rings", "behaviour"} <= set(previous) else {
            "stability": _stability(session, previous_day),
            "rings": _rings(session, previous_day),
            "behaviour": _behaviour(session, previous_day)}  # fmt: skip
        stability["change"] = _change(stability["psi"], was["stability"]["psi"])
        found["changes"] = {
            "candidate_rings": rings["candidate_rings"] - was["rings"]["candidate_rings"],
            "ring_borrowers": rings["borrowers"] - was["rings"]["borrowers"],
            "auc": _change(behaviour.get("auc"), was["behaviour"].get("auc")),
        }
    return found


def _change(now: float | None, then: float | None) -> float | None:
    """``now - then`` rounded as the report prints PSI and AUC (None when either is)."""
    return None if now is None or then is None else round(now - then, 4)


def _stability(session: Session, day: date) -> dict[str, Any]:
    """The grade mix of the loans disbursed in the last 90 days against the book's before
    them, and its PSI (None while either side has no graded loan)."""
    start = day - timedelta(days=NEW_LOAN_DAYS)
    counts = grade_mix(session, grades=GRADES, day=day, since=start)
    found = psi(list(counts["reference"].values()), list(counts["recent"].values()))
    return {**counts, "psi": None if found is None else round(found, 4),
            "recent_since": start.isoformat()}  # fmt: skip


def _scorecard(session: Session, day: date, previous_day: date | None,
               previous: dict[str, Any] | None) -> dict[str, Any] | None:  # fmt: skip
    """The scorecard's stability on ``day`` (:func:`scorecard_stability`) with each PSI's
    change since the previous report's day (absent for the first report), read from that
    report's figures (``previous``) when given."""
    found = scorecard_stability(session, day=day)
    if found is None or previous_day is None:
        return found
    before = (previous["scorecard"] if previous and "scorecard" in previous
              else scorecard_stability(session, day=previous_day))  # fmt: skip
    if before is None or (before["scorecard"], before["population"]) != (
        found["scorecard"], found["population"]):
        return found
    was = {c["name"]: c["psi"] for c in before["characteristics"]}
    found["score"]["change"] = _change(found["score"]["psi"], before["score"]["psi"])
    for c in found["characteristics"]:
        c["change"] = _change(c["psi"], was.get(c["name"]))
    found["applications_change"] = found["applications"] - before["applications"]
    return found


def _behaviour(session: Session, day: date) -> dict[str, Any]:
    """The behaviour score judged on the last month whose outcome is known, or why not."""
    try:
        result = behaviour_backtest(session, through=day)
    except BehaviourError as exc:
        return {"available": False, "why": str(exc), "reason": exc.reason,
                "months": exc.months}  # fmt: skip
    keep = ("fit_months", "test_months", "rows", "rolled", "auc", "ks", "calibration",
            "capacity", "champion_challenger")  # fmt: skip
    return {"available": True, **{k: result[k] for k in keep}}


def _payment_anomalies(session: Session, since: datetime | None, at: datetime) -> dict[str, int]:
    return alert_counts(session, kind=PAYMENT_ANOMALY, since=since, at=at)


def _rings(session: Session, day: date) -> dict[str, Any]:
    """Candidate rings among the borrowers of the loans disbursed by ``day``, linked by phone
    and address."""
    borrowers = borrower_contacts(session, day=day)
    refs = [ref for ref, _, _ in borrowers]
    held = ((ref, kind, value) for ref, phone, address in borrowers
            for kind, value in (("phone", phone), ("address", address)))  # fmt: skip
    links, _ = encode_links(refs, held)
    rings = find_rings(links, max_share=RING_MAX_SHARE)
    return {"candidate_rings": len(rings), "borrowers": int((rings.ring >= 0).sum()),
            "largest": int(rings.size.max()) if len(rings) else 0,
            "max_share": RING_MAX_SHARE}  # fmt: skip
