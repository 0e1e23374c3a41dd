"""The simulator's applications through the pre-loan decision (贷前调查, 贷款审批), so the demo's
book carries grades, and grade against outcome measured at the end of the run.

A top-layer module: it reads the simulator's stories, which :mod:`lienwatch.risk` never sees.
The simulated book has no credit file, so each loan's application gets the scorecard's
characteristics from a row of the held-out half of the German credit data (the scorecard is
fitted on the other half): a bad row for a loan whose story ends badly (it slides into
default, is pledged again, loses its tracker, belongs to a fraud ring), a good row otherwise.
Grade against outcome therefore measures the scorecard on rows it never saw, through the
book's own outcomes; it says nothing about how German credit habits fit Chinese car loans.
Income is drawn so the simulated installment takes 20-45 % of it. Company borrowers have no
resident identity number to check, so their loans are not scored (grade None).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from lienwatch.domain.schedule import annuity_factor
from lienwatch.risk.applications import decide_batch
from lienwatch.risk.checks import Application
from lienwatch.risk.datasets import GERMAN_CREDIT
from lienwatch.risk.policy import Decision, shipped_policy
from lienwatch.risk.scorecard import Scorecard, fit_scorecard
from lienwatch.services.applications import InForce, german_credit, store_decisions
from lienwatch.services.origination import fit_reference
from lienwatch.services.reads.portfolio import grades_against_outcome
from lienwatch.sim.records import Portfolio, Profile
from lienwatch.store.tables import Loan

#: Stories that end badly: their applications are drawn from the bad rows.
BAD_STORIES = frozenset({Profile.SLIDES_INTO_DEFAULT, Profile.SECONDARY_PLEDGE,
                         Profile.TRACKER_REMOVED, Profile.FRAUD_RING})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Origination:
    """The decision on each scored loan's application (by loan ref), the fit's size, and
    what the book keeps of it: the scorecard, its fit's reference and the applications'
    characteristics (row for row with ``decisions``)."""

    decisions: dict[str, Decision]
    fit_rows: int
    unscored: int
    card: Scorecard | None = None
    reference: dict[str, Any] | None = None
    columns: dict[str, np.ndarray] | None = None
    applied_on: dict[str, date] | None = None


def originate(portfolio: Portfolio, *, seed: int) -> Origination:
    """Check, score and decide the application of every person's loan in ``portfolio``."""
    rng = np.random.default_rng(seed)
    data = german_credit()
    held_out = rng.permutation(data.bad.size) % 2 == 1
    fit = data.rows(np.flatnonzero(~held_out))
    card = fit_scorecard(fit.columns, fit.bad, GERMAN_CREDIT)
    pool = {bad: np.flatnonzero(held_out & (data.bad == bad)) for bad in (False, True)}
    borrowers = {b.ref: b for b in portfolio.borrowers}
    vehicles = {v.vin: v for v in portfolio.vehicles}
    loans = [loan for loan in portfolio.loans if borrowers[loan.borrower_ref].kind == "person"]
    drawn, apps = [], []
    for loan in loans:
        candidates = pool[portfolio.truth.profiles[loan.ref] in BAD_STORIES]
        drawn.append(candidates[int(rng.integers(candidates.size))])
        apps.append(_application(loan, borrowers[loan.borrower_ref], vehicles[loan.vehicle_vin],
                                 share=float(rng.uniform(0.20, 0.45))))  # fmt: skip
    columns = data.rows(np.array(drawn, dtype=np.int64)).columns
    decisions = decide_batch(apps, columns, card, shipped_policy(), blacklist={}) if apps else []
    return Origination({loan.ref: d for loan, d in zip(loans, decisions, strict=True)},
                       int(fit.bad.size), len(portfolio.loans) - len(loans), card,
                       fit_reference(card, fit.columns), columns,
                       {loan.ref: loan.disbursed_on for loan in loans})  # fmt: skip


def _application(loan: Any, borrower: Any, vehicle: Any, *, share: float) -> Application:
    """A loan's application as it stood on its disbursement day."""
    rate = Fraction(Decimal(loan.annual_rate)) / 12
    installment = loan.principal * annuity_factor(rate, loan.term)
    kind = ("used" if vehicle.condition == "used"
            else "new-nev" if vehicle.energy == "nev" else "new-ice")  # fmt: skip
    return Application(
        application_id=loan.ref, applied_on=loan.disbursed_on, id_number=borrower.id_number,
        monthly_income=int(installment / Fraction(share)), monthly_debt=0,
        amount=loan.principal, term_months=loan.term, vin=loan.vehicle_vin,
        vehicle_year=vehicle.purchase_date.year, price=vehicle.purchase_price,
        appraisal=vehicle.purchase_price, vehicle_class=kind,
        identifiers={"phone": borrower.phone},
    )  # fmt: skip


def record_grades(session: Session, origination: Origination, *, at: datetime) -> None:
    """Store each scored loan's score and grade on the book, and its application (decided
    on its disbursement day, recorded at ``at``) with the attributes the scorecard binned."""
    if origination.decisions:  # one statement, executed for every loan
        loans = Loan.__table__
        session.execute(
            update(loans).where(loans.c.ref == bindparam("loan_ref"))
            .values(score=bindparam("loan_score"), grade=bindparam("loan_grade")),
            [{"loan_ref": ref, "loan_score": d.score, "loan_grade": d.grade}
             for ref, d in origination.decisions.items()],
        )  # fmt: skip
    o = origination
    if o.card is None or o.reference is None or o.columns is None or not o.decisions:
        return
    refs = list(o.decisions)
    ids = dict(session.execute(select(Loan.ref, Loan.id).where(Loan.ref.in_(refs))).all())
    store_decisions(session, InForce(o.card, o.reference), list(o.decisions.values()),
                    o.columns, at=at, loans=ids, decided_on=o.applied_on)  # fmt: skip


def grade_outcomes(session: Session, origination: Origination, *, through: date) -> dict[str, Any]:
    """The decisions made, and by grade the loans of the book and those that defaulted in the
    run (the daily report's measure, :func:`grades_against_outcome`)."""
    decided = Counter(d.decision for d in origination.decisions.values())
    return {
        "scorecard_fit_rows": origination.fit_rows,
        "applications": len(origination.decisions),
        "unscored_company_loans": origination.unscored,
        "decisions": dict(sorted(decided.items())),
        "by_grade": {
            row["grade"]: {k: row[k] for k in ("loans", "defaulted", "default_rate")}
            for row in grades_against_outcome(session, through)
        },
    }
