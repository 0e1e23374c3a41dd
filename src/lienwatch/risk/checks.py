"""Pre-loan checks (贷前调查): named rules on one application, each failing with its own reason
code. They are the hard rules of the decision policy (:mod:`lienwatch.risk.policy`): they run
before the score counts.

Check digits (computed by :mod:`lienwatch.domain.identifiers`):

- **Resident identity number** (GB 11643-1999): 17 digits and a check character (ISO 7064
  MOD 11-2); digits 7–14 are the date of birth.
- **VIN** (ISO 3779 and GB 16735-2019): 17 characters without I, O or Q; the 9th is the check
  digit. ISO 3779 leaves the check digit optional; GB 16735 (China) and North America require
  it, so lienwatch requires it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from fractions import Fraction

from lienwatch.domain.calendar import add_months
from lienwatch.domain.identifiers import VIN_VALUES, resident_id_check, vin_check
from lienwatch.errors import LienwatchError


class CheckError(LienwatchError, ValueError):
    """An application field that cannot be checked at all (named)."""


class Severity(StrEnum):
    """What a failed check does to the decision: decline outright or refer to a person."""

    DECLINE = "decline"
    REFER = "refer"


@dataclass(frozen=True, slots=True)
class Finding:
    """A failed check: its reason code, what it does and what was found."""

    code: str
    severity: Severity
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity.value, "detail": self.detail}


def id_number_problem(number: str) -> str | None:
    """Why ``number`` is not a valid 18-character resident identity number, or None."""
    text = number.strip().upper()
    if len(text) != 18 or not text[:17].isdigit() or not (text[17].isdigit() or text[17] == "X"):
        return "not 17 digits and a check character"
    if birth_date(text) is None:
        return f"no valid date of birth in digits 7-14 ({text[6:14]})"
    if resident_id_check(text[:17]) != text[17]:
        return f"check character {text[17]}, expected {resident_id_check(text[:17])}"
    return None


def birth_date(number: str) -> date | None:
    """The date of birth an 18-character identity number carries, or None."""
    try:
        return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None


def vin_problem(vin: str) -> str | None:
    """Why ``vin`` is not a valid 17-character VIN with its check digit, or None."""
    text = vin.strip().upper()
    if len(text) != 17:
        return f"{len(text)} characters, not 17"
    bad = sorted({c for c in text if c not in VIN_VALUES})
    if bad:
        return f"character(s) {''.join(bad)} not allowed (I, O, Q never appear)"
    if vin_check(text) != text[8]:
        return f"check digit {text[8]}, expected {vin_check(text)}"
    return None


@dataclass(frozen=True, slots=True)
class Application:
    """What the checks read of an application. Money in fen; ``identifiers`` are the contact
    and device identifiers (phone, device, bank account, …) that blacklists and rings use."""

    application_id: str
    applied_on: date
    id_number: str
    monthly_income: int
    monthly_debt: int
    amount: int
    term_months: int
    vin: str
    vehicle_year: int
    price: int
    appraisal: int
    vehicle_class: str = "new-ice"
    identifiers: Mapping[str, str] = field(default_factory=dict)
    # The credit record (征信) as the bureau report gives it; None: not supplied, not checked.
    credit_overdue: int | None = None  # fen past due on other credit today
    credit_worst_dpd_24m: int | None = None  # worst days past due over the last 24 months
    credit_inquiries_6m: int | None = None  # credit inquiries by lenders over the last 6 months
    income_proof: str = ""  # one of INCOME_PROOFS; "" not supplied (not checked)


@dataclass(frozen=True, slots=True)
class CheckLimits:
    """The thresholds of the checks (the policy's ``[checks]`` table)."""

    min_age: int = 18
    max_age_at_maturity: int = 65
    max_vehicle_age_years: int = 8
    max_price_over_appraisal: Fraction = Fraction(1, 10)
    max_credit_worst_dpd_24m: int = 90
    max_credit_inquiries_6m: int = 6


#: How the income was proven: the documents that verify it, and a declaration that does not.
VERIFIED_INCOME = ("payslip", "bank_statement", "tax_record")
INCOME_PROOFS = (*VERIFIED_INCOME, "self_declared", "none")


def age_on(born: date, day: date) -> int:
    """Whole years of age on ``day``."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def check_application(
    app: Application, limits: CheckLimits, *, blacklist: Mapping[str, Collection[str]],
    linked: Collection[str] = (),
) -> list[Finding]:  # fmt: skip
    """Every failed hard check of ``app``, in a fixed order. ``blacklist`` maps a kind
    (``id_number``, ``vin``, ``phone``, ``device``, …) to its listed values; ``linked`` names
    the other applications sharing an identity number, VIN or contact identifier with it."""
    found: list[Finding] = []
    problem = id_number_problem(app.id_number)
    if problem:
        found.append(Finding("ID_CHECK_DIGIT", Severity.DECLINE, f"id_number: {problem}"))
    else:
        born = birth_date(app.id_number.strip())
        assert born is not None
        maturity = add_months(app.applied_on, app.term_months)
        if age_on(born, app.applied_on) < limits.min_age:
            found.append(Finding("AGE_MINIMUM", Severity.DECLINE,
                                 f"age {age_on(born, app.applied_on)} < {limits.min_age}"))
        if age_on(born, maturity) > limits.max_age_at_maturity:
            found.append(Finding("AGE_AT_MATURITY", Severity.DECLINE,
                                 f"age {age_on(born, maturity)} at maturity {maturity} > "
                                 f"{limits.max_age_at_maturity}"))  # fmt: skip
    values = {"id_number": app.id_number.strip().upper(), "vin": app.vin.strip().upper(),
              **app.identifiers}  # fmt: skip
    for kind, value in values.items():
        if value and value in blacklist.get(kind, ()):
            found.append(Finding("BLACKLIST", Severity.DECLINE, f"{kind} {value} is blacklisted"))
    problem = vin_problem(app.vin)
    if problem:
        found.append(Finding("VIN_CHECK_DIGIT", Severity.DECLINE, f"vin: {problem}"))
    vehicle_age = app.applied_on.year - app.vehicle_year
    if vehicle_age > limits.max_vehicle_age_years:
        found.append(Finding("VEHICLE_AGE", Severity.DECLINE,
                             f"vehicle {vehicle_age} years old > "
                             f"{limits.max_vehicle_age_years}"))  # fmt: skip
    if app.appraisal <= 0:
        found.append(Finding("PRICE_VS_APPRAISAL", Severity.DECLINE, "no appraisal"))
    elif app.price > app.appraisal * (1 + limits.max_price_over_appraisal):
        over = Fraction(app.price, app.appraisal) - 1
        found.append(Finding("PRICE_VS_APPRAISAL", Severity.REFER,
                             f"price {float(over):.0%} over the appraisal (limit "
                             f"{float(limits.max_price_over_appraisal):.0%})"))  # fmt: skip
    found += _credit_and_income(app, limits)
    if linked:
        found.append(Finding("LINKED_APPLICATIONS", Severity.REFER,
                             "shares identifiers with " + ", ".join(sorted(linked))))
    return found


def _credit_and_income(app: Application, limits: CheckLimits) -> list[Finding]:
    """The credit record's and the income proof's findings (fields not supplied: none)."""
    found: list[Finding] = []
    if app.credit_overdue:
        found.append(Finding("CREDIT_OVERDUE", Severity.DECLINE,
                             f"{app.credit_overdue} fen past due on other credit"))  # fmt: skip
    worst = app.credit_worst_dpd_24m
    if worst is not None and worst > limits.max_credit_worst_dpd_24m:
        found.append(Finding("CREDIT_HISTORY", Severity.REFER,
                             f"{worst} days past due in the last 24 months > "
                             f"{limits.max_credit_worst_dpd_24m}"))  # fmt: skip
    inquiries = app.credit_inquiries_6m
    if inquiries is not None and inquiries > limits.max_credit_inquiries_6m:
        found.append(Finding("CREDIT_INQUIRIES", Severity.REFER,
                             f"{inquiries} credit inquiries in 6 months > "
                             f"{limits.max_credit_inquiries_6m}"))  # fmt: skip
    if app.income_proof and app.income_proof not in VERIFIED_INCOME:
        found.append(Finding("INCOME_UNVERIFIED", Severity.REFER,
                             f"income {app.monthly_income} fen a month, proof: "
                             f"{app.income_proof}"))  # fmt: skip
    return found
