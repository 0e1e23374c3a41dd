"""Schedules for many loans at once, in int64 fen, identical to ``build_schedule`` row by row.

Every step is integer arithmetic except the regular annuity installment, which is estimated
in float64 (see :func:`annuity_payments`): the estimate is accurate to far better than the
margin it is checked against, so ``floor(x + ½)`` can only be wrong when ``x`` lies within
that margin of a half fen, and those rare loans are recomputed exactly with Python integers.
Tests compare the result with ``build_schedule`` on random loans.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from lienwatch.domain.schedule import DayCount, Method, annuity_payment

METHOD_CODES: tuple[Method, ...] = tuple(Method)
DAY_COUNT_CODES: tuple[DayCount, ...] = tuple(DayCount)
MAX_PRINCIPAL = 10**10  # 100,000,000.00 CNY: keeps every int64 product below 2⁶³
_INT64_LIMIT = 2**62  # half of int64, room for the ×2 of rounding half up


@dataclass(frozen=True, slots=True)
class ScheduleArrays:
    """Installments of many loans, flattened loan after loan (CSR layout).

    Loan ``i`` owns rows ``offsets[i]:offsets[i+1]``; ``due`` is days since 1970-01-01.
    """

    offsets: np.ndarray  # int64, loans + 1
    due: np.ndarray  # int64 day numbers
    principal: np.ndarray  # int64 fen
    interest: np.ndarray  # int64 fen
    balance_after: np.ndarray  # int64 fen

    @property
    def loan_of_row(self) -> np.ndarray:
        """The loan index of every row."""
        return np.repeat(np.arange(len(self.offsets) - 1), np.diff(self.offsets))


def rate_arrays(rates: list[Fraction]) -> tuple[np.ndarray, np.ndarray]:
    """Exact rates as int64 numerator and denominator arrays."""
    return (np.array([r.numerator for r in rates], dtype=np.int64),
            np.array([r.denominator for r in rates], dtype=np.int64))


def check_int64_room(principal: np.ndarray, rate_num: np.ndarray) -> None:
    """Refuse inputs whose interest products could overflow int64 (named by field)."""
    if len(principal) == 0:
        return
    if int(principal.min()) <= 0 or int(principal.max()) > MAX_PRINCIPAL:
        raise ValueError(f"principal: must be 1–{MAX_PRINCIPAL} fen for the vectorized path")
    if int(principal.max()) * int(rate_num.max()) * 31 >= _INT64_LIMIT:
        raise ValueError("annual_rate: too many decimals for exact int64 arithmetic; "
                         "use at most 6 decimals")


# Day number of the first day of every month from 1970-01 to 2299-12 (and one past it):
# due dates become integer look-ups instead of datetime64 conversions.
_MONTH_STARTS = np.arange(
    np.datetime64("1970-01"), np.datetime64("2300-02"), dtype="datetime64[M]"
).astype("datetime64[D]").astype(np.int64)


def month_parts(start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Month index since 1970-01 and zero-based day of month of day numbers ``start``."""
    if len(start) and (start.min() < 0 or start.max() >= _MONTH_STARTS[-12 * 11]):
        raise ValueError("start: must be between 1970-01-01 and 2289-12-31")
    month = np.searchsorted(_MONTH_STARTS, start, side="right") - 1
    return month, start - _MONTH_STARTS[month]


def due_days(month: np.ndarray, day_of_month: np.ndarray, n: int) -> np.ndarray:
    """Day numbers ``n`` months after the dates given by :func:`month_parts`, clamped to the
    target month's last day (a loan of Jan 31 falls due on Feb 28/29)."""
    target = month + n
    first = _MONTH_STARTS[target]
    return first + np.minimum(day_of_month, _MONTH_STARTS[target + 1] - first - 1)


def annuity_payments(
    principal: np.ndarray, rate_num: np.ndarray, rate_den: np.ndarray, term: np.ndarray
) -> np.ndarray:
    """The regular annuity installment per loan, equal to ``annuity_payment`` exactly.

    The float estimate ``principal × r·eˣ / (eˣ − 1)`` with ``x = n·ln(1 + r)`` (log1p and
    expm1 keep it accurate for tiny rates) is within a relative ``1e-14`` of the exact
    value for terms up to 120 months and rates below 100 %; estimates within a relative
    ``2⁻⁴⁰`` of a half fen are recomputed exactly.
    """
    payment = _round_half_up(principal, term)  # 0 % loans: principal / term
    paying = np.flatnonzero(rate_num > 0)
    p, a, b, n = principal[paying], rate_num[paying], rate_den[paying], term[paying]
    rate = a / (12.0 * b)
    x = n * np.log1p(rate)
    estimate = p * (rate * np.exp(x) / np.expm1(x))
    rounded = np.floor(estimate + 0.5)
    payment[paying] = rounded.astype(np.int64)
    doubtful = np.flatnonzero(np.abs(estimate - rounded + 0.5) <= estimate * 2.0**-40)
    doubtful = np.union1d(doubtful, np.flatnonzero(np.abs(estimate - rounded - 0.5)
                                                   <= estimate * 2.0**-40))
    for i in doubtful:
        payment[paying[i]] = annuity_payment(int(p[i]), Fraction(int(a[i]), 12 * int(b[i])),
                                             int(n[i]))
    return payment


def _round_half_up(numerator: np.ndarray, denominator: np.ndarray | int) -> np.ndarray:
    return (2 * numerator + denominator) // (2 * denominator)


def build_schedules(
    *, principal: np.ndarray, rate_num: np.ndarray, rate_den: np.ndarray, term: np.ndarray,
    method: np.ndarray, start: np.ndarray, day_count: np.ndarray,
) -> ScheduleArrays:
    """Schedules of many loans, row for row what ``build_schedule`` gives for each.

    ``method`` and ``day_count`` are codes: indices into :data:`METHOD_CODES` and
    :data:`DAY_COUNT_CODES`; ``start`` is day numbers; amounts are fen. Raises
    :class:`ValueError` naming ``principal``, ``annual_rate``, ``term`` or ``start`` when
    a loan is outside what int64 arithmetic can carry exactly.
    """
    principal = np.asarray(principal, dtype=np.int64)
    term = np.asarray(term, dtype=np.int64)
    check_int64_room(principal, np.asarray(rate_num, dtype=np.int64))
    if len(term) and (term.min() < 1 or term.max() > 120):
        raise ValueError("term: must be 1–120 months")
    offsets = np.zeros(len(term) + 1, dtype=np.int64)
    np.cumsum(term, out=offsets[1:])
    out = ScheduleArrays(offsets, *(np.empty(offsets[-1], dtype=np.int64) for _ in range(4)))
    # Longest terms first: the loans still running in period n are then a prefix, and every
    # step works on views. The stable sort keeps loans of equal term in book order, so each
    # step writes its rows in ascending positions.
    order = np.argsort(-term, kind="stable")
    term = term[order]
    p = principal[order]
    a = np.asarray(rate_num, dtype=np.int64)[order]
    b = np.asarray(rate_den, dtype=np.int64)[order]
    method = np.asarray(method)[order]
    start = np.asarray(start, dtype=np.int64)[order]
    act365 = np.asarray(day_count)[order] == DAY_COUNT_CODES.index(DayCount.ACT_365)
    annuity = method == METHOD_CODES.index(Method.ANNUITY)
    # the principal part of every period but the last: annuity → regular − interest,
    # equal principal → principal // term, interest only → 0
    fixed_part = np.where(method == METHOD_CODES.index(Method.EQUAL_PRINCIPAL), p // term, 0)
    regular = np.zeros(len(p), dtype=np.int64)
    regular[annuity] = annuity_payments(p[annuity], a[annuity], b[annuity], term[annuity])
    # interest = round half up of balance × a × days / den = (balance·2a·days + den) // 2den
    twice_a = 2 * a
    interest_den = np.where(act365, 365, 12) * b
    twice_den = 2 * interest_den
    first_row = offsets[:-1][order]
    month, day_of_month = month_parts(start)
    running = np.searchsorted(-term, -np.arange(1, int(term.max(initial=0)) + 2), side="right")
    balance = p.copy()
    period_start = start.copy()
    any_act365, all_annuity = bool(act365.any()), bool(annuity.all())
    for n in range(1, len(running)):
        live = slice(0, running[n - 1])
        due = due_days(month[live], day_of_month[live], n)
        interest = balance[live] * twice_a[live]
        if any_act365:
            interest *= np.where(act365[live], due - period_start[live], 1)
        interest += interest_den[live]
        interest //= twice_den[live]
        part = np.minimum(np.maximum(regular[live] - interest, 0), balance[live])
        if not all_annuity:
            part = np.where(annuity[live], part, fixed_part[live])
        part[running[n]:] = balance[running[n]:running[n - 1]]  # last installments
        balance[live] -= part
        rows = first_row[live] + (n - 1)
        out.due[rows], out.principal[rows] = due, part
        out.interest[rows], out.balance_after[rows] = interest, balance[live]
        if any_act365:
            period_start[live] = due
    return out
