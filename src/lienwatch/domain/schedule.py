"""Repayment schedules exact to the fen.

Amounts are integer fen; rates are :class:`~decimal.Decimal`. Each installment is rounded to
the fen and the last installment absorbs the remainder, so the principal parts always sum to
the principal exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext
from enum import StrEnum

from lienwatch.domain.calendar import due_dates
from lienwatch.domain.money import round_fen


class Method(StrEnum):
    """How principal is repaid."""

    ANNUITY = "annuity"  # 等额本息: equal payments
    EQUAL_PRINCIPAL = "equal-principal"  # 等额本金: equal principal parts
    INTEREST_ONLY = "interest-only"  # 先息后本: interest monthly, principal at the end


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
        return self.principal + self.interest


def annuity_payment(principal: int, monthly_rate: Decimal, term: int) -> int:
    """The regular annuity installment in fen: ``pmt`` computed exactly, rounded half up."""
    if monthly_rate == 0:
        return round_fen(Decimal(principal) / term)
    with localcontext() as ctx:
        ctx.prec = 50
        growth = (1 + monthly_rate) ** term
        return round_fen(Decimal(principal) * monthly_rate * growth / (growth - 1))


def build_schedule(
    *, principal: int, annual_rate: Decimal, term: int, method: Method, start: date
) -> list[Installment]:
    """The schedule of a loan of ``principal`` fen disbursed on ``start``.

    Interest per period is ``balance × annual_rate / 12`` (30/360) rounded to the fen.
    """
    if principal <= 0:
        raise ValueError(f"principal: must be positive, got {principal}")
    if not 1 <= term <= 120:
        raise ValueError(f"term: must be 1–120 months, got {term}")
    if not 0 <= annual_rate < 1:
        raise ValueError(f"annual_rate: must be within 0–100 %, got {annual_rate}")
    monthly_rate = Decimal(annual_rate) / 12
    regular = annuity_payment(principal, monthly_rate, term)
    rows: list[Installment] = []
    balance = principal
    for n, due in enumerate(due_dates(start, term), start=1):
        interest = round_fen(balance * monthly_rate)
        if n == term:
            part = balance
        elif method is Method.ANNUITY:
            part = min(regular - interest, balance)
        elif method is Method.EQUAL_PRINCIPAL:
            part = principal // term
        else:
            part = 0
        balance -= part
        rows.append(Installment(n, due, part, interest, balance))
    return rows
