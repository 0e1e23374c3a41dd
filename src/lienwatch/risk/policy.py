"""The decision policy as data (贷款审批): hard rules first, then score bands → grade A–E →
approve / refer / decline, with the amount (the least of the request, the LTV cap on the
vehicle and what the income carries at the grade's APR and term), the APR and the term.

The shipped policy is ``risk/policy.toml``; a lender's own is a file of the same shape
(``lienwatch risk score --policy FILE``). Amounts are in fen and rates exact: the installment
is the annuity of :mod:`lienwatch.domain.schedule`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lienwatch.domain.money import format_yuan, parse_yuan
from lienwatch.domain.schedule import annuity_factor, annuity_payment
from lienwatch.errors import LienwatchError
from lienwatch.risk.checks import Application, CheckLimits, Finding, Severity, check_application
from lienwatch.risk.scorecard import Reason

Action = Literal["approve", "refer", "decline"]


class PolicyError(LienwatchError, ValueError):
    """A policy document that does not hold together; the message names the key."""


class GradeTerms(BaseModel):
    """What a grade gets: the action, the APR and the longest term."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min_score: int
    decision: Action
    apr: Decimal = Field(ge=0, lt=1)
    max_term_months: int = Field(gt=0, le=120)


class CheckSettings(BaseModel):
    """The ``[checks]`` table: the thresholds of the hard checks."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min_age: int = Field(default=18, ge=0, le=100)
    max_age_at_maturity: int = Field(default=65, ge=18, le=120)
    max_vehicle_age_years: int = Field(default=8, ge=0, le=50)
    max_price_over_appraisal: Decimal = Field(default=Decimal("0.10"), ge=0, le=10)
    max_credit_worst_dpd_24m: int = Field(default=90, ge=0, le=3650)
    max_credit_inquiries_6m: int = Field(default=6, ge=0, le=1000)


class Policy(BaseModel):
    """A decision policy: grades from the best down, each with its lowest score (the last
    grade takes every score below), the income and collateral limits and the check limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    grades: dict[str, GradeTerms]
    max_dti: Decimal = Field(gt=0, le=1)
    ltv_caps: dict[str, Decimal]
    min_amount_yuan: Decimal = Field(ge=0)
    amount_step_yuan: Decimal = Field(gt=0)
    ring_max_share: int = Field(default=20, ge=2)
    checks: CheckSettings = Field(default_factory=CheckSettings)

    @field_validator("grades")
    @classmethod
    def _ordered(cls, grades: dict[str, GradeTerms]) -> dict[str, GradeTerms]:
        scores = [g.min_score for g in grades.values()]
        if not grades or scores != sorted(scores, reverse=True) or len(set(scores)) < len(scores):
            raise ValueError("list the grades best first, each with a lower min_score")
        return grades

    def check_limits(self) -> CheckLimits:
        c = self.checks
        return CheckLimits(c.min_age, c.max_age_at_maturity, c.max_vehicle_age_years,
                           Fraction(c.max_price_over_appraisal), c.max_credit_worst_dpd_24m,
                           c.max_credit_inquiries_6m)  # fmt: skip

    def grade(self, score: float) -> str:
        """The grade of a score."""
        for name, terms in self.grades.items():
            if score >= terms.min_score:
                return name
        return next(reversed(self.grades))


def parse_policy(document: Mapping[str, Any], source: str) -> Policy:
    """A policy from its TOML document; a bad key is a :class:`PolicyError` naming it."""
    try:
        return Policy.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        reason = error["msg"].removeprefix("Value error, ")
        raise PolicyError(f"{source}: {key}: {reason}") from None


def shipped_policy() -> Policy:
    """The policy shipped with lienwatch (risk/policy.toml)."""
    text = resources.files("lienwatch.risk").joinpath("policy.toml").read_text(encoding="utf-8")
    return parse_policy(tomllib.loads(text), "policy.toml")


@dataclass(frozen=True, slots=True)
class Decision:
    """The decision on one application: grade, action, the amount offered (fen), APR, term,
    installment (fen) and debt-to-income with it, and every reason (hard findings first)."""

    application_id: str
    score: int
    grade: str
    decision: Action
    amount: int
    apr: Decimal
    term_months: int
    installment: int
    dti: Decimal | None
    findings: tuple[Finding, ...]
    reasons: tuple[Reason, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "application_id": self.application_id, "score": self.score, "grade": self.grade,
            "decision": self.decision, "amount": format_yuan(self.amount), "apr": str(self.apr),
            "term_months": self.term_months, "installment": format_yuan(self.installment),
            "dti": None if self.dti is None else str(self.dti),
            "reasons": [f.as_json() for f in self.findings] + [r.as_json() for r in self.reasons],
        }  # fmt: skip


def _floor_to(amount: int, step: int) -> int:
    return max(0, amount // step * step)


def income_capacity(app: Application, policy: Policy, apr: Decimal, term: int) -> int:
    """The largest principal (fen) whose installment keeps debt-to-income within the limit."""
    room = Fraction(policy.max_dti) * app.monthly_income - app.monthly_debt
    if room <= 0:
        return 0
    return int(room / annuity_factor(Fraction(apr) / 12, term))


def decide(
    app: Application, score: int, reasons: Sequence[Reason], policy: Policy, *,
    blacklist: Mapping[str, Collection[str]], linked: Collection[str] = (),
) -> Decision:  # fmt: skip
    """The decision on ``app`` with its ``score`` and the scorecard's ``reasons``: hard checks
    first (any declining finding declines), then the grade's action and terms; the amount is
    capped by LTV and income and rounded down to the step; too small an amount declines."""
    findings = check_application(app, policy.check_limits(), blacklist=blacklist, linked=linked)
    grade = policy.grade(score)
    terms = policy.grades[grade]
    term = min(app.term_months, terms.max_term_months)
    action: Action = terms.decision
    if any(f.severity is Severity.DECLINE for f in findings):
        action = "decline"
    step = parse_yuan(policy.amount_step_yuan)
    cap = policy.ltv_caps.get(app.vehicle_class)
    if cap is None:
        raise PolicyError(f"ltv_caps: no cap for vehicle class {app.vehicle_class!r}")
    limits = {
        "LTV_CAP": int(Fraction(cap) * min(app.price, app.appraisal)),
        "DTI": income_capacity(app, policy, terms.apr, term),
    }
    amount = _floor_to(min(app.amount, *limits.values()), step)
    added = []
    if amount < app.amount:
        bound = min(limits, key=lambda k: limits[k])
        added.append(Finding(f"AMOUNT_{bound}", Severity.REFER,
                             f"amount capped at {format_yuan(amount)} by {bound}"))  # fmt: skip
        if amount < parse_yuan(policy.min_amount_yuan):
            added[-1] = Finding(f"AMOUNT_{bound}", Severity.DECLINE,
                                f"{bound} leaves {format_yuan(amount)}, under the minimum "
                                f"{format_yuan(parse_yuan(policy.min_amount_yuan))}")  # fmt: skip
            action = "decline"
    if action == "approve" and any(f.severity is Severity.REFER for f in findings):
        action = "refer"
    if action == "decline":
        amount = 0
    installment = annuity_payment(amount, Fraction(terms.apr) / 12, term) if amount else 0
    dti = None
    if app.monthly_income > 0:
        dti = (Decimal(app.monthly_debt + installment) / app.monthly_income).quantize(
            Decimal("0.0001"))
    return Decision(app.application_id, score, grade, action, amount, terms.apr, term,
                    installment, dti, (*findings, *added), tuple(reasons))  # fmt: skip
