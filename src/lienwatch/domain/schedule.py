"""Repayment schedules exact to the fen.

Amounts are integer fen; rates are :class:`~decimal.Decimal` and are turned into exact
fractions, so no step depends on a decimal context's precision. Each installment's interest is
rounded half up to the fen and the last installment absorbs the remainder, so the principal
parts always sum to the principal exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import TypeVar

from lienwatch.domain.calendar import due_dates
from lienwatch.domain.money import div_round_half_up

MAX_TERM = 120

E = TypeVar("E", bound=StrEnum)


class Method(StrEnum):
    """How principal is repaid."""

    ANNUITY = "annuity"  # 等额本息: equal payments
    EQUAL_PRINCIPAL = "equal-principal"  # 等额本金: equal principal parts
    INTEREST_ONLY = "interest-only"  # 先息后本: interest monthly, principal at the end


class DayCount(StrEnum):
    """How a period's interest is measured.

    ``30/360``: every monthly period is 1/12 of a year. ``act/365``: a period is its actual
    number of days over 365. Annuity installments are sized on the monthly rate
    (annual rate / 12) under both conventions; under act/365 the interest/principal split of
    each installment follows the actual days and the last installment absorbs the difference.
    """

    THIRTY_360 = "30/360"
    ACT_365 = "act/365"

    @property
    def year_days(self) -> int:
        """Days in the convention's year: the divisor of daily (penalty) interest."""
        return 360 if self is DayCount.THIRTY_360 else 365


@dataclass(frozen=True, slots=True)
class Installment:
    """One row of a schedule; amounts in fen."""

    n: int
    due_date: date
    principal: int
    interest: int
    balance_after: int

    @property
    def payment(self) -> int:
        """What the borrower owes on ``due_date``: principal plus interest."""
        return self.principal + self.interest


def rate_fraction(
    annual_rate: Decimal | Fraction | int | str, *, field: str = "annual_rate"
) -> Fraction:
    """``annual_rate`` as an exact fraction, checked to lie within 0–100 % (1 excluded)."""
    try:
        rate = (annual_rate if isinstance(annual_rate, Fraction)
                else Fraction(Decimal(annual_rate)))
    except (ArithmeticError, ValueError, TypeError):
        raise ValueError(f"{field}: {annual_rate!r} is not a number") from None
    if not 0 <= rate < 1:
        raise ValueError(f"{field}: must be within 0–100 %, got {annual_rate}")
    return rate


def validate_terms(
    *, principal: int, annual_rate: Decimal | Fraction | int | str, term: int
) -> Fraction:
    """Check the three numbers every schedule needs; return the rate as a fraction.

    Raises :class:`ValueError` naming the field: ``principal`` must be a positive number of
    fen, ``term`` 1–120 months, ``annual_rate`` within 0–100 %.
    """
    if isinstance(principal, bool) or not isinstance(principal, int) or principal <= 0:
        raise ValueError(f"principal: must be a positive number of fen, got {principal!r}")
    if isinstance(term, bool) or not isinstance(term, int) or not 1 <= term <= MAX_TERM:
        raise ValueError(f"term: must be 1–{MAX_TERM} months, got {term!r}")
    return rate_fraction(annual_rate)


def annuity_factor(monthly_rate: Fraction, term: int) -> Fraction:
    """The exact ``pmt`` factor ``r·g / (g − 1)`` with ``g = (1 + r)^term``; ``1/term`` at 0 %."""
    if monthly_rate == 0:
        return Fraction(1, term)
    growth = (1 + monthly_rate) ** term
    return monthly_rate * growth / (growth - 1)


def annuity_payment(principal: int, monthly_rate: Decimal | Fraction, term: int) -> int:
    """The regular annuity installment in fen: ``pmt`` computed exactly, rounded half up."""
    exact = principal * annuity_factor(Fraction(monthly_rate), term)
    return div_round_half_up(exact.numerator, exact.denominator)


def period_interest(balance: int, annual_rate: Fraction, days: int, day_count: DayCount) -> int:
    """Interest in fen on ``balance`` over one monthly period of ``days`` days, rounded half up."""
    # plain integers rather than Fraction arithmetic: rounding does not depend on reducing
    num, den = annual_rate.numerator, annual_rate.denominator
    if day_count is DayCount.THIRTY_360:
        return div_round_half_up(balance * num, den * 12)
    return div_round_half_up(balance * num * days, den * 365)


def build_schedule(
    *,
    principal: int,
    annual_rate: Decimal | Fraction,
    term: int,
    method: Method | str,
    start: date,
    day_count: DayCount | str = DayCount.THIRTY_360,
) -> list[Installment]:
    """The schedule of a loan of ``principal`` fen disbursed on ``start``.

    Installment ``n`` falls due ``n`` months after ``start`` (clamped to month end). Interest
    is the period interest on the opening balance (see :class:`DayCount`). An annuity's
    principal part is the regular payment minus interest, never below zero; the last
    installment repays whatever balance is left.

    Raises :class:`ValueError` naming ``principal``, ``annual_rate``, ``term``, ``method`` or
    ``day_count`` when one is out of range.
    """
    rate = validate_terms(principal=principal, annual_rate=annual_rate, term=term)
    method = parse_enum(Method, method, "method")
    day_count = parse_enum(DayCount, day_count, "day_count")
    dues = due_dates(start, term)
    return amortize(
        principal=principal, annual_rate=rate, periods=list(zip([start, *dues], dues,
                                                                strict=False)),
        method=method, day_count=day_count, regular=annuity_payment(principal, rate / 12, term),
        fixed_part=principal // term,
    )


def amortize(
    *, principal: int, annual_rate: Fraction, periods: Sequence[tuple[date, date]],
    method: Method, day_count: DayCount, regular: int, fixed_part: int, shorten: bool = False,
) -> list[Installment]:
    """Repay ``principal`` over ``periods`` (start, due) pairs: the rule behind every schedule.

    Each period's interest is :func:`period_interest` on the opening balance. The principal
    part is ``regular`` − interest (annuity, never below zero), ``fixed_part`` (equal
    principal) or nothing (interest only), never more than the balance; the last period
    repays the rest. With ``shorten`` the rows stop once the balance is repaid (a prepayment
    that reduces the term).
    """
    rows: list[Installment] = []
    balance = principal
    for n, (period_start, due) in enumerate(periods, start=1):
        interest = period_interest(balance, annual_rate, (due - period_start).days, day_count)
        if n == len(periods):
            part = balance
        elif method is Method.ANNUITY:
            part = max(0, min(regular - interest, balance))
        elif method is Method.EQUAL_PRINCIPAL:
            part = min(fixed_part, balance)
        else:
            part = 0
        balance -= part
        rows.append(Installment(n, due, part, interest, balance))
        if shorten and balance == 0:
            break
    return rows


def regular_installment(dues: Sequence[int]) -> int:
    """The amount a borrower regularly pays, from the schedule's total dues (principal,
    interest and fee) in installment order: the second (the first may cover a broken period),
    the first when there is only one, 0 when there is none. The one definition the behaviour
    score (partial payments) and the abnormal-payment rules (splits, amounts) read."""
    return int(dues[1] if len(dues) > 1 else dues[0] if dues else 0)


def parse_enum(kind: type[E], value: E | str, field: str) -> E:
    """``value`` as a member of ``kind``; a :class:`ValueError` naming ``field`` otherwise."""
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise ValueError(f"{field}: {value!r} is not one of {choices}") from None
