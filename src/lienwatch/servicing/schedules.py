"""Schedules for many loans at once, in int64 fen, identical to ``build_schedule`` row by row.

Every step is integer arithmetic except the annuity installment, which is first estimated
in float64 and then checked: ``pmt = principal × factor`` where ``factor`` is the exact
rational annuity factor of the loan's (rate, term) converted to the nearest float. Both
roundings together are off by less than ``x × 2⁻⁵¹``, so ``floor(x + ½)`` can only be wrong
when ``x`` lies within that distance of a half fen; those few loans are recomputed exactly
with Python integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from lienwatch.domain.schedule import DayCount, Method, annuity_factor, annuity_payment

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


def due_days(start: np.ndarray, n: int | np.ndarray) -> np.ndarray:
    """Day numbers ``n`` months after ``start`` (day numbers), clamped to the month's end."""
    start_d = start.astype("datetime64[D]")
    month = start_d.astype("datetime64[M]")
    day_of_month = (start_d - month.astype("datetime64[D]")).astype(np.int64)
    target = month + np.asarray(n)
    month_len = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(
        np.int64)
    return target.astype("datetime64[D]").astype(np.int64) + np.minimum(day_of_month,
                                                                        month_len - 1)


def annuity_payments(
    principal: np.ndarray, rate_num: np.ndarray, rate_den: np.ndarray, term: np.ndarray
) -> np.ndarray:
    """The regular annuity installment per loan, equal to ``annuity_payment`` exactly."""
    keys = np.stack([rate_num, rate_den, term], axis=1)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    factors = [annuity_factor(Fraction(int(a), 12 * int(b)), int(n)) for a, b, n in unique]
    estimate = principal.astype(np.float64) * np.array([float(f) for f in factors])[inverse]
    payment = np.floor(estimate + 0.5).astype(np.int64)
    fraction = estimate - np.floor(estimate)
    doubtful = np.flatnonzero(np.abs(fraction - 0.5) <= estimate * 2.0**-50 + 1e-9)
    for i in doubtful:
        a, b, n = (int(v) for v in unique[inverse[i]])
        payment[i] = annuity_payment(int(principal[i]), Fraction(a, 12 * b), n)
    return payment


def _round_half_up(numerator: np.ndarray, denominator: np.ndarray | int) -> np.ndarray:
    return (2 * numerator + denominator) // (2 * denominator)


def build_schedules(
    *, principal: np.ndarray, rate_num: np.ndarray, rate_den: np.ndarray, term: np.ndarray,
    method: np.ndarray, start: np.ndarray, day_count: np.ndarray,
) -> ScheduleArrays:
    """Schedules of many loans, row for row what ``build_schedule`` gives for each.

    ``method`` and ``day_count`` are codes: indices into :data:`METHOD_CODES` and
    :data:`DAY_COUNT_CODES`; ``start`` is day numbers; amounts are fen.
    """
    principal = np.asarray(principal, dtype=np.int64)
    rate_num = np.asarray(rate_num, dtype=np.int64)
    rate_den = np.asarray(rate_den, dtype=np.int64)
    term = np.asarray(term, dtype=np.int64)
    method = np.asarray(method)
    start = np.asarray(start, dtype=np.int64)
    act365 = np.asarray(day_count) == DAY_COUNT_CODES.index(DayCount.ACT_365)
    check_int64_room(principal, rate_num)
    if len(term) and (term.min() < 1 or term.max() > 120):
        raise ValueError("term: must be 1–120 months")
    loans, width = len(principal), int(term.max()) if len(term) else 0
    annuity = method == METHOD_CODES.index(Method.ANNUITY)
    equal_principal = method == METHOD_CODES.index(Method.EQUAL_PRINCIPAL)
    regular = np.zeros(loans, dtype=np.int64)
    regular[annuity] = annuity_payments(principal[annuity], rate_num[annuity],
                                        rate_den[annuity], term[annuity])
    equal_part = principal // term
    shape = (loans, width)
    due, part, interest, balance_after = (np.zeros(shape, dtype=np.int64) for _ in range(4))
    balance = principal.copy()
    period_start = start
    for n in range(1, width + 1):
        live = term >= n
        due_n = due_days(start, n)
        days = due_n - period_start
        interest_n = np.where(
            act365,
            _round_half_up(balance * rate_num * days, 365 * rate_den),
            _round_half_up(balance * rate_num, 12 * rate_den),
        )
        part_n = np.where(annuity, np.clip(regular - interest_n, 0, balance),
                          np.where(equal_principal, equal_part, 0))
        part_n = np.where(term == n, balance, part_n)
        balance = np.where(live, balance - part_n, balance)
        due[:, n - 1], part[:, n - 1] = due_n, part_n
        interest[:, n - 1], balance_after[:, n - 1] = interest_n, balance
        period_start = due_n
    mask = np.arange(width) < term[:, None]
    offsets = np.zeros(loans + 1, dtype=np.int64)
    np.cumsum(term, out=offsets[1:])
    return ScheduleArrays(offsets, due[mask], part[mask], interest[mask], balance_after[mask])
