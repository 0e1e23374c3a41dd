"""The nightly portfolio run, vectorized: every loan's state as of a date, over int64 arrays.

It applies the rules of :mod:`lienwatch.servicing.engine` to all loans at once and gives the
same figures to the fen (a property test checks this on random portfolios). The insight that
makes it vectorizable: a payment settles installments oldest first, so at any moment a loan
has a *frontier* installment, every one before it settled and every one after it untouched.
Only the frontier carries running state (amounts paid, posted penalty, fee); untouched
installments are described by the schedule alone. Payments are processed as the k-th
payment day of every loan at once; within a day, one frontier after another.

Loans are processed in chunks to bound memory; the result is the same for any chunk size.
Loans of products that turn overpayments into principal prepayments run here too as long
as no payment goes beyond the installments due and the next one (until then the two policies
agree); a loan whose payment does prepay re-amortizes its schedule mid-life, leaves the model
and is run through the exact path.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from functools import lru_cache

import numpy as np

from lienwatch.domain.allocation import Component
from lienwatch.domain.collateral import MAX_AGE_DAYS, MAX_LTV_BPS, Appraisal, VehicleClass
from lienwatch.domain.delinquency import BucketChanged, LoanStatus
from lienwatch.servicing.engine import LoanState, loan_exposure, loan_state
from lienwatch.servicing.product import Collateral, LoanTerms, Overpayment, Payment, Product
from lienwatch.servicing.schedules import (
    DAY_COUNT_CODES,
    METHOD_CODES,
    ScheduleArrays,
    build_schedules,
    check_int64_room,
    month_parts,
    rate_arrays,
)

EPOCH = date(1970, 1, 1)
STATUS_CODES: tuple[LoanStatus, ...] = tuple(LoanStatus)
VEHICLE_CODES: tuple[VehicleClass, ...] = tuple(VehicleClass)
NO_STATUS = -1
_PENALTY, _FEE, _INTEREST, _PRINCIPAL = (tuple(Component).index(c) for c in Component)


def day_number(day: date) -> int:
    """Days since 1970-01-01: the int64 date of the vectorized code."""
    return (day - EPOCH).days


def from_day_number(days: int) -> date:
    return date.fromordinal(EPOCH.toordinal() + int(days))


@dataclass(frozen=True, slots=True)
class LoanBook:
    """A portfolio as parallel arrays, one entry per loan (see :meth:`from_loans`)."""

    loan_id: np.ndarray  # object: str
    principal: np.ndarray  # int64 fen, financed principal
    rate_num: np.ndarray  # int64: annual rate = rate_num / rate_den
    rate_den: np.ndarray
    term: np.ndarray  # int64 months
    method: np.ndarray  # int8 index into METHOD_CODES
    start: np.ndarray  # int64 day numbers
    day_count: np.ndarray  # int8 index into DAY_COUNT_CODES
    product: np.ndarray  # int64 index into ``products``
    price: np.ndarray  # int64 fen, vehicle price at purchase
    purchased_on: np.ndarray  # int64 day numbers
    vehicle_class: np.ndarray  # int8 index into VEHICLE_CODES
    products: tuple[Product, ...]

    def __len__(self) -> int:
        return len(self.principal)

    @classmethod
    def from_loans(
        cls, terms: Sequence[LoanTerms], collateral: Sequence[Collateral],
        products: Sequence[Product], product_of_loan: Sequence[int],
    ) -> LoanBook:
        """A book from per-loan objects (convenient for tests and small books)."""
        num, den = rate_arrays([Fraction(t.annual_rate) for t in terms])
        return cls(
            loan_id=np.array([t.loan_id for t in terms], dtype=object),
            principal=np.array([t.financed_principal for t in terms], dtype=np.int64),
            rate_num=num, rate_den=den,
            term=np.array([t.term for t in terms], dtype=np.int64),
            method=np.array([METHOD_CODES.index(t.method) for t in terms], dtype=np.int8),
            start=np.array([day_number(t.start) for t in terms], dtype=np.int64),
            day_count=np.array([DAY_COUNT_CODES.index(t.day_count) for t in terms], dtype=np.int8),
            product=np.asarray(product_of_loan, dtype=np.int64),
            price=np.array([c.price for c in collateral], dtype=np.int64),
            purchased_on=np.array([day_number(c.purchased_on) for c in collateral], dtype=np.int64),
            vehicle_class=np.array([VEHICLE_CODES.index(c.vehicle_class) for c in collateral],
                                   dtype=np.int8),
            products=tuple(products),
        )


@dataclass(frozen=True, slots=True)
class PaymentArrays:
    """Payments as parallel arrays: loan index into the book, value day number, fen."""

    loan: np.ndarray
    day: np.ndarray
    amount: np.ndarray

    @classmethod
    def from_payments(cls, by_loan: Sequence[Sequence[Payment]]) -> PaymentArrays:
        """Arrays from per-loan payment lists (the list index is the loan index)."""
        flat = [(i, day_number(p.on), p.amount) for i, ps in enumerate(by_loan) for p in ps]
        table = np.array(flat, dtype=np.int64).reshape(-1, 3)
        return cls(table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy())


@dataclass(frozen=True, slots=True)
class PortfolioResult:
    """Per-loan results of a run as of one date (arrays aligned with the book) and events."""

    as_of: date
    dpd: np.ndarray
    bucket: np.ndarray  # int8 index into each loan's product bucket scheme
    status: np.ndarray  # int8 index into STATUS_CODES
    outstanding_principal: np.ndarray
    overdue_principal: np.ndarray
    overdue_interest: np.ndarray
    penalty_accrued: np.ndarray
    fees_due: np.ndarray
    next_due: np.ndarray  # day number, -1 when none
    payoff: np.ndarray
    credit: np.ndarray
    collateral_value: np.ndarray
    ead: np.ndarray
    recoverable: np.ndarray
    unsecured: np.ndarray
    ltv_bps: np.ndarray
    over_cap: np.ndarray  # bool
    events: list[BucketChanged]
    exact_loans: np.ndarray  # indices of the loans run through the exact path (prepaid)

    def state(self, book: LoanBook, i: int) -> LoanState:
        """Loan ``i`` as a :class:`LoanState`, to compare with the exact path."""
        product = book.products[int(book.product[i])]
        return LoanState(
            loan_id=str(book.loan_id[i]), as_of=self.as_of, dpd=int(self.dpd[i]),
            bucket=product.buckets.names[int(self.bucket[i])],
            status=STATUS_CODES[int(self.status[i])],
            outstanding_principal=int(self.outstanding_principal[i]),
            overdue_principal=int(self.overdue_principal[i]),
            overdue_interest=int(self.overdue_interest[i]),
            penalty_accrued=int(self.penalty_accrued[i]), fees_due=int(self.fees_due[i]),
            next_due_date=None if self.next_due[i] < 0 else from_day_number(self.next_due[i]),
            payoff_amount=int(self.payoff[i]), credit=int(self.credit[i]),
        )


def run_portfolio(
    book: LoanBook, payments: PaymentArrays, as_of: date, *,
    previous_bucket: np.ndarray | None = None, manual_status: np.ndarray | None = None,
    appraisal_value: np.ndarray | None = None, appraisal_day: np.ndarray | None = None,
    chunk_loans: int = 50_000, workers: int = 1,
) -> PortfolioResult:
    """Every loan of ``book`` as of the end of ``as_of``, plus bucket changes.

    Chunks of ``chunk_loans`` loans are shared out over ``workers`` processes where the
    platform can fork (the result does not depend on either).

    ``previous_bucket`` (int, -1 for none) is the last snapshot's bucket per loan; a
    ``bucket_changed`` event is returned for every loan whose bucket differs.
    ``manual_status`` holds STATUS_CODES indices of operator statuses (-1 for none).
    ``appraisal_value``/``appraisal_day`` give each loan's latest appraisal on or before
    ``as_of`` (-1 for none). Payments after ``as_of`` are ignored.

    Raises :class:`ValueError` naming the field for a payment that is not positive, is
    dated before its loan's disbursement or names no loan of the book, and for loans
    whose figures could overflow int64.
    """
    size = len(book)
    if chunk_loans < 1:
        raise ValueError(f"chunk_loans: must be positive, got {chunk_loans}")
    if workers < 1:
        raise ValueError(f"workers: must be positive, got {workers}")
    check_int64_room(book.principal, book.rate_num)
    early = np.flatnonzero(book.start > day_number(as_of))
    if len(early):
        raise ValueError(f"as_of: {as_of} is before the disbursement of loan "
                         f"{book.loan_id[early[0]]}")
    payments = _daily_payments(book, payments, day_number(as_of))
    none = np.full(size, -1, dtype=np.int64)
    previous_bucket = none if previous_bucket is None else np.asarray(previous_bucket)
    manual_status = none if manual_status is None else np.asarray(manual_status)
    appraisal_value = none if appraisal_value is None else np.asarray(appraisal_value)
    appraisal_day = none if appraisal_day is None else np.asarray(appraisal_day)
    global _JOB
    _JOB = _Job(book, payments, as_of, manual_status, appraisal_value, appraisal_day,
                chunk_loans)
    chunks = -(-size // chunk_loans)
    workers = min(workers, chunks) if "fork" in multiprocessing.get_all_start_methods() else 1
    try:
        if workers <= 1:
            parts = _run_chunks((0, 1))
        else:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                parts = [p for ps in pool.map(_run_chunks, [(i, workers) for i in
                                                            range(workers)]) for p in ps]
    finally:
        _JOB = None
    parts = [figures for _, figures in sorted(parts, key=lambda part: part[0])]
    out = {key: np.concatenate([p[key] for p in parts]) if parts else np.zeros(0, np.int64)
           for key in (*_RESULT_FIELDS, "exact_loans")}
    events = _bucket_events(book, as_of, previous_bucket, out["bucket"], out["dpd"])
    return PortfolioResult(as_of=as_of, events=events, **out)


@dataclass(frozen=True, slots=True)
class _Job:
    """One run's inputs, shared with forked workers (inherited, not pickled)."""

    book: LoanBook
    payments: PaymentArrays  # validated daily totals, sorted by loan then day
    as_of: date
    manual_status: np.ndarray
    appraisal_value: np.ndarray
    appraisal_day: np.ndarray
    chunk_loans: int


_JOB: _Job | None = None


def _run_chunks(part: tuple[int, int]) -> list[tuple[int, dict[str, np.ndarray]]]:
    """Chunks ``index``, ``index + workers``, … of the current job, each with its number."""
    index, workers = part
    job = _JOB
    assert job is not None
    chunks = -(-len(job.book) // job.chunk_loans)
    return [(c, _run_chunk(job, c)) for c in range(index, chunks, workers)]


def _run_chunk(job: _Job, c: int) -> dict[str, np.ndarray]:
    """The figures of chunk ``c``; loans that prepaid are rerun on the exact path."""
    lo = c * job.chunk_loans
    hi = min(lo + job.chunk_loans, len(job.book))
    first, last = np.searchsorted(job.payments.loan, [lo, hi])
    payments = job.payments
    chunk = _Chunk(job.book, lo, hi, PaymentArrays(payments.loan[first:last] - lo,
                                                   payments.day[first:last],
                                                   payments.amount[first:last]))
    figures = chunk.run(day_number(job.as_of), job.manual_status[lo:hi],
                        job.appraisal_value[lo:hi], job.appraisal_day[lo:hi])
    exact = np.flatnonzero(figures.pop("needs_exact")) + lo
    _rerun_exactly(job, exact, figures, offset=lo)
    return {**figures, "exact_loans": exact}


def _rerun_exactly(
    job: _Job, loans: np.ndarray, out: dict[str, np.ndarray], *, offset: int
) -> None:
    """Overwrite the figures of ``loans`` (book indices; ``out`` starts at ``offset``) with
    the exact path's.

    These are the loans of prepaying products that did prepay principal: a prepayment
    re-amortizes the schedule mid-life, which the frontier model does not cover. They are
    few in practice (a borrower paying beyond the next installment) and run loan by loan.
    """
    book, payments = job.book, job.payments
    for i in loans.tolist():
        product = book.products[book.product[i]]
        terms = LoanTerms(
            str(book.loan_id[i]), int(book.principal[i]),
            Fraction(int(book.rate_num[i]), int(book.rate_den[i])), int(book.term[i]),
            METHOD_CODES[book.method[i]], from_day_number(book.start[i]),
            day_count=DAY_COUNT_CODES[book.day_count[i]])
        lo, hi = np.searchsorted(payments.loan, [i, i + 1])
        received = [Payment(f"day-{day}", from_day_number(day), int(amount))
                    for day, amount in zip(payments.day[lo:hi], payments.amount[lo:hi],
                                           strict=True)]
        manual = STATUS_CODES[job.manual_status[i]] if job.manual_status[i] >= 0 else None
        state = loan_state(terms, product, received, job.as_of, manual_status=manual)
        appraisals = ([Appraisal(from_day_number(job.appraisal_day[i]),
                                 int(job.appraisal_value[i]))]
                      if job.appraisal_value[i] >= 0 else [])
        vehicle = Collateral(int(book.price[i]), from_day_number(book.purchased_on[i]),
                             VEHICLE_CODES[book.vehicle_class[i]])
        exposure = loan_exposure(state, product, vehicle, appraisals)
        figures = {
            "dpd": state.dpd, "bucket": product.buckets.names.index(state.bucket),
            "status": STATUS_CODES.index(state.status),
            "outstanding_principal": state.outstanding_principal,
            "overdue_principal": state.overdue_principal,
            "overdue_interest": state.overdue_interest,
            "penalty_accrued": state.penalty_accrued, "fees_due": state.fees_due,
            "next_due": day_number(state.next_due_date) if state.next_due_date else -1,
            "payoff": state.payoff_amount, "credit": state.credit,
            "collateral_value": exposure.collateral_value, "ead": exposure.ead,
            "recoverable": exposure.recoverable, "unsecured": exposure.unsecured,
            "ltv_bps": exposure.ltv_bps, "over_cap": exposure.over_cap,
        }
        for key, value in figures.items():
            out[key][i - offset] = value


def _bucket_events(book: LoanBook, as_of: date, previous: np.ndarray, current: np.ndarray,
                   dpd: np.ndarray) -> list[BucketChanged]:
    """A ``bucket_changed`` event for every loan whose bucket differs from ``previous``."""
    names = [product.buckets.names for product in book.products]
    changed = np.flatnonzero(current != previous)
    return [
        BucketChanged(loan, as_of, None if before < 0 else names[product][before],
                      names[product][after], days)
        for loan, product, before, after, days in zip(
            book.loan_id[changed].tolist(), book.product[changed].tolist(),
            previous[changed].tolist(), current[changed].tolist(), dpd[changed].tolist(),
            strict=True)
    ]


_RESULT_FIELDS = (
    "dpd", "bucket", "status", "outstanding_principal", "overdue_principal", "overdue_interest",
    "penalty_accrued", "fees_due", "next_due", "payoff", "credit", "collateral_value", "ead",
    "recoverable", "unsecured", "ltv_bps", "over_cap",
)


def _daily_payments(book: LoanBook, payments: PaymentArrays, as_of: int) -> PaymentArrays:
    """Validate; keep those up to ``as_of``; sum per (loan, day); sort by loan then day."""
    loan = np.asarray(payments.loan, dtype=np.int64)
    day = np.asarray(payments.day, dtype=np.int64)
    amount = np.asarray(payments.amount, dtype=np.int64)
    if len(loan) and (loan.min() < 0 or loan.max() >= len(book)):
        raise ValueError("payment loan: index outside the loan book")
    if np.any(amount <= 0):
        raise ValueError(f"payment amount: must be positive, got {int(amount[amount <= 0][0])}")
    early = np.flatnonzero(day < book.start[loan])
    if len(early):
        i = early[0]
        raise ValueError(f"payment date: {from_day_number(day[i])} is before the disbursement "
                         f"of loan {book.loan_id[loan[i]]}")
    keep = day <= as_of
    loan, day, amount = loan[keep], day[keep], amount[keep]
    order = np.lexsort((day, loan))
    loan, day, amount = loan[order], day[order], amount[order]
    first = np.ones(len(loan), dtype=bool)
    first[1:] = (loan[1:] != loan[:-1]) | (day[1:] != day[:-1])
    starts = np.flatnonzero(first)
    return PaymentArrays(loan[starts], day[starts], np.add.reduceat(amount, starts)
                         if len(starts) else amount)


def _half_up(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return (2 * numerator + denominator) // (2 * denominator)


@dataclass(frozen=True, slots=True)
class _Owed:
    """What some loans owe at a day, unpaid amounts in fen, one entry per loan."""

    outstanding: np.ndarray  # principal
    penalty: np.ndarray
    fees: np.ndarray
    interest_earned: np.ndarray  # by the day, paid or not
    interest_paid: np.ndarray

    def payoff(self, credit: np.ndarray) -> np.ndarray:
        """The early payoff quote: the engine's formula over arrays."""
        return np.maximum(0, self.outstanding + self.interest_earned + self.penalty + self.fees
                          - self.interest_paid - credit)


class _Chunk:
    """Loans ``lo:hi`` of a book with their schedules and per-loan product parameters."""

    def __init__(self, book: LoanBook, lo: int, hi: int, payments: PaymentArrays) -> None:
        self.book, self.lo, self.hi, self.payments = book, lo, hi, payments
        sl = slice(lo, hi)
        self.n = hi - lo
        self.s: ScheduleArrays = build_schedules(
            principal=book.principal[sl], rate_num=book.rate_num[sl], rate_den=book.rate_den[sl],
            term=book.term[sl], method=book.method[sl], start=book.start[sl],
            day_count=book.day_count[sl])
        self.term = book.term[sl]
        self.start = book.start[sl]
        prod = book.product[sl]
        products = book.products

        def per_loan(values: list[int]) -> np.ndarray:
            return np.array(values, dtype=np.int64)[prod]

        self.grace = per_loan([p.grace_days for p in products])
        self.late_fee = per_loan([p.late_fee for p in products])
        self.tolerance = per_loan([p.tolerance for p in products])
        self.charge_off = per_loan([p.charge_off_dpd for p in products])
        self.order = np.array([[tuple(Component).index(c) for c in p.waterfall.order]
                               for p in products], dtype=np.int64)[prod]
        self.pen_num, self.pen_den = self._penalty_rates(prod)
        rows = self.s
        payment = rows.principal + rows.interest
        self.above_tolerance = payment > self.tolerance[rows.loan_of_row]
        # prefix sums over rows, one leading zero: sums over [a, b) are cum[b] - cum[a]
        self.cum_principal = _prefix(rows.principal)
        self.cum_interest = _prefix(rows.interest)
        self.cum_above_tolerance = _prefix(self.above_tolerance.astype(np.int64))
        self.next_above_tolerance = _next_true(self.above_tolerance, rows.offsets)
        self.settles_at_payoff = np.array([p.settle_at_payoff for p in products], bool)[prod]
        self.prepays = np.array([p.overpayment is not Overpayment.CREDIT for p in products],
                                bool)[prod]
        self.due_rows = _DueCounter(rows.due, rows.offsets, self.start, self.term)

    def _penalty_rates(self, prod: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Penalty per day per fen as exact int64 fractions, one per loan."""
        sl = slice(self.lo, self.hi)
        keys = np.stack([self.book.rate_num[sl], self.book.rate_den[sl], prod,
                         self.book.day_count[sl].astype(np.int64)], axis=1)
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        rates = [_penalty_rate(int(a), int(b), self.book.products[int(p)].penalty_multiple,
                               DAY_COUNT_CODES[int(dc)].year_days) for a, b, p, dc in unique]
        num, den = rate_arrays(rates)
        if len(num) and int(self.book.principal.max()) * 200_000 * int(num.max()) >= 2**62:
            raise ValueError("penalty_multiple: too many decimals for exact int64 arithmetic")
        inverse = inverse.reshape(-1)
        return num[inverse], den[inverse]

    # -- frontier state -------------------------------------------------------------------

    def run(self, as_of: int, manual: np.ndarray, appraisal_value: np.ndarray,
            appraisal_day: np.ndarray) -> dict[str, np.ndarray]:
        n = self.n
        self.p = np.zeros(n, dtype=np.int64)
        self.paid = np.zeros((4, n), dtype=np.int64)  # by Component index, frontier only
        self.fee = np.zeros(n, dtype=np.int64)
        self.fee_checked = np.zeros(n, dtype=bool)
        self.posted = np.zeros(n, dtype=np.int64)
        self.accrue_from = self.s.due[self.s.offsets[:-1]].copy()
        self.credit = np.zeros(n, dtype=np.int64)
        self.settled = np.zeros(n, dtype=bool)  # by early payoff; the frontier is then past
        self.needs_exact = np.zeros(n, dtype=bool)  # a prepayment left the frontier model
        self._replay_payments()
        figures = self._read(as_of, manual, appraisal_value, appraisal_day)
        return {**figures, "needs_exact": self.needs_exact}

    def _replay_payments(self) -> None:
        loan, day, amount = self.payments.loan, self.payments.day, self.payments.amount
        if not len(loan):
            return
        first = np.ones(len(loan), dtype=bool)
        first[1:] = loan[1:] != loan[:-1]
        group_start = np.maximum.accumulate(np.where(first, np.arange(len(loan)), 0))
        rank = np.arange(len(loan)) - group_start
        order = np.argsort(rank, kind="stable")
        step_bounds = np.searchsorted(rank[order], np.arange(int(rank.max()) + 2))
        for k in range(int(rank.max()) + 1):
            sel = order[step_bounds[k]:step_bounds[k + 1]]
            self._pay(loan[sel], day[sel], amount[sel].copy())

    def _penalty_until(self, idx: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Posted plus running penalty of the frontier installment of loans ``idx`` at ``day``."""
        row = self.s.offsets[idx] + self.p[idx]
        days = np.maximum(0, day - np.maximum(self.s.due[row], self.accrue_from[idx]))
        unpaid = self.s.principal[row] - self.paid[_PRINCIPAL, idx]
        return self.posted[idx] + _half_up(unpaid * days * self.pen_num[idx], self.pen_den[idx])

    def _check_frontier_fee(self, idx: np.ndarray, day: np.ndarray) -> None:
        """Charge the frontier's late fee once its grace ended on a day before ``day``."""
        live = idx[self.p[idx] < self.term[idx]]
        day = day[self.p[idx] < self.term[idx]]
        row = self.s.offsets[live] + self.p[live]
        due_now = (~self.fee_checked[live]) & (day - self.s.due[row] > self.grace[live])
        live, row = live[due_now], row[due_now]
        unpaid = (self.s.principal[row] + self.s.interest[row]
                  - self.paid[_PRINCIPAL, live] - self.paid[_INTEREST, live])
        self.fee_checked[live] = True
        self.fee[live] = np.where(unpaid > self.tolerance[live], self.late_fee[live], 0)

    def _enter(self, idx: np.ndarray, day: np.ndarray) -> None:
        """Make the (untouched) installment at ``p`` the frontier of loans ``idx`` on ``day``."""
        self.paid[:, idx] = 0
        self.posted[idx] = 0
        inside = self.p[idx] < self.term[idx]
        idx, day = idx[inside], day[inside]
        row = self.s.offsets[idx] + self.p[idx]
        self.accrue_from[idx] = self.s.due[row]
        checked = day - self.s.due[row] > self.grace[idx]
        self.fee_checked[idx] = checked
        self.fee[idx] = np.where(checked & self.above_tolerance[row], self.late_fee[idx], 0)

    def _pay(self, idx: np.ndarray, day: np.ndarray, amount: np.ndarray) -> None:
        """Apply one payment day to each loan in ``idx`` (distinct loans)."""
        on_model = ~self.needs_exact[idx]
        idx, day, amount = idx[on_model], day[on_model], amount[on_model]
        self._check_frontier_fee(idx, day)
        idx, day, amount = self._pay_off(idx, day, amount)
        # a prepaying product settles at most the installments due and the next one; money
        # beyond them prepays principal (a re-amortized schedule: the exact path's job)
        limit = np.full(len(idx), np.iinfo(np.int64).max)
        prepays = self.prepays[idx]
        limit[prepays] = self.due_rows.count(idx[prepays], day[prepays], side="right") + 1
        while len(idx):
            live = self.p[idx] < self.term[idx]
            self.credit[idx[~live]] += amount[~live]
            idx, day, amount, limit = idx[live], day[live], amount[live], limit[live]
            prepaying = self.p[idx] >= limit
            self.needs_exact[idx[prepaying]] = True
            idx, day, amount, limit = (idx[~prepaying], day[~prepaying], amount[~prepaying],
                                       limit[~prepaying])
            if not len(idx):
                return
            row = self.s.offsets[idx] + self.p[idx]
            penalty_total = self._penalty_until(idx, day)
            owed = np.stack([
                penalty_total - self.paid[_PENALTY, idx],
                self.fee[idx] - self.paid[_FEE, idx],
                self.s.interest[row] - self.paid[_INTEREST, idx],
                self.s.principal[row] - self.paid[_PRINCIPAL, idx],
            ])
            got = np.zeros_like(owed)
            cols = np.arange(len(idx))
            for position in range(4):
                component = self.order[idx, position]
                part = np.minimum(amount, owed[component, cols])
                got[component, cols] = part
                amount = amount - part
            principal_paid = got[_PRINCIPAL] > 0
            self.posted[idx[principal_paid]] = penalty_total[principal_paid]
            self.accrue_from[idx[principal_paid]] = np.maximum(day[principal_paid],
                                                               self.s.due[row[principal_paid]])
            self.paid[:, idx] += got
            cleared = np.all(got == owed, axis=0)
            idx, day, amount, limit = idx[cleared], day[cleared], amount[cleared], limit[cleared]
            self.p[idx] += 1
            self._enter(idx, day)
            left = amount > 0
            idx, day, amount, limit = idx[left], day[left], amount[left], limit[left]

    def _pay_off(self, idx: np.ndarray, day: np.ndarray,
                 amount: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Settle the loans whose payment covers the day's payoff quote, before the last due
        date (the engine's rule); return the payments of the other loans."""
        s = self.s
        may = np.flatnonzero(self.settles_at_payoff[idx] & (self.p[idx] < self.term[idx])
                             & (day < s.due[s.offsets[idx + 1] - 1]))
        if not len(may):
            return idx, day, amount
        # cheap bounds first (as in the engine): the quote is at least the unpaid principal
        # less the interest paid on installments not yet due, itself at most all interest
        # paid; an ordinary installment is far below that except near the end of a loan
        loans = idx[may]
        base, p = s.offsets[loans], self.p[loans]
        unpaid = (self.cum_principal[s.offsets[loans + 1]] - self.cum_principal[base + p]
                  - self.paid[_PRINCIPAL, loans])
        paid_interest = (self.cum_interest[base + p] - self.cum_interest[base]
                         + self.paid[_INTEREST, loans])
        near = amount[may] >= unpaid - paid_interest
        may, loans, base, p, unpaid = may[near], loans[near], base[near], p[near], unpaid[near]
        q_le = self.due_rows.count(loans, day[may], side="right")
        paid_ahead = (np.maximum(0, self.cum_interest[base + p] - self.cum_interest[base + q_le])
                      + np.where(p >= q_le, self.paid[_INTEREST, loans], 0))
        may = may[amount[may] >= unpaid - paid_ahead]
        if not len(may):
            return idx, day, amount
        loans, days = idx[may], day[may]
        owed = self._owed(loans, days, self.due_rows.count(loans, days, side="left"),
                          self.due_rows.count(loans, days, side="right"),
                          self.due_rows.count(loans, days - self.grace[loans], side="left"))
        quote = owed.payoff(self.credit[loans])
        pays = amount[may] >= quote
        done = loans[pays]
        self.credit[done] += amount[may][pays] - quote[pays]
        self.settled[done] = True
        self.p[done] = self.term[done]  # nothing falls due any more; later money is credit
        rest = np.ones(len(idx), dtype=bool)
        rest[may[pays]] = False
        return idx[rest], day[rest], amount[rest]

    def _owed(self, idx: np.ndarray, day: np.ndarray, q_lt: np.ndarray, q_le: np.ndarray,
              q_fee: np.ndarray) -> _Owed:
        """What loans ``idx`` owe at ``day``, given per loan the rows due before ``day``
        (``q_lt``), due by it (``q_le``) and whose late fee has been charged (``q_fee``)."""
        s = self.s
        base, end = s.offsets[idx], s.offsets[idx + 1]
        p = self.p[idx]
        has_frontier = p < self.term[idx]
        paid = np.where(has_frontier, self.paid[:, idx], 0)
        penalty = self._untouched_penalty(idx, q_lt, day)
        live = idx[has_frontier]
        penalty[has_frontier] += (self._penalty_until(live, day[has_frontier])
                                  - self.paid[_PENALTY, live])
        after = np.minimum(base + p + 1, end)  # the first untouched row, or the loan's end
        above = self.cum_above_tolerance
        untouched_fees = np.maximum(0, above[base + q_fee] - above[after])
        return _Owed(
            outstanding=self.cum_principal[end] - self.cum_principal[base + p] - paid[_PRINCIPAL],
            penalty=penalty,
            fees=(np.where(has_frontier, self.fee[idx] - paid[_FEE], 0)
                  + self.late_fee[idx] * untouched_fees),
            interest_earned=self._interest_earned(idx, q_le, day),
            interest_paid=self.cum_interest[base + p] - self.cum_interest[base] + paid[_INTEREST],
        )

    # -- reading the state ----------------------------------------------------------------

    def _read(self, as_of: int, manual: np.ndarray, appraisal_value: np.ndarray,
              appraisal_day: np.ndarray) -> dict[str, np.ndarray]:
        s, n = self.s, self.n
        loans = np.arange(n)
        base = s.offsets[:-1]
        end = s.offsets[1:]
        today = np.full(n, as_of, dtype=np.int64)
        self._check_frontier_fee(loans, today + 1)
        p = self.p
        has_frontier = p < self.term
        front = base + np.minimum(p, self.term - 1)
        # rows of each loan due before / on or before as_of, and whose grace has ended
        q_lt = self.due_rows.count(loans, today, side="left")
        q_le = self.due_rows.count(loans, today, side="right")
        owed = self._owed(loans, today, q_lt, q_le,
                          self.due_rows.count(loans, today - self.grace, side="right"))
        outstanding, penalty, fees = owed.outstanding, owed.penalty, owed.fees
        paid_p = np.where(has_frontier, self.paid[_PRINCIPAL], 0)
        paid_i = np.where(has_frontier, self.paid[_INTEREST], 0)
        overdue = p < q_lt
        overdue_principal = np.where(
            overdue, self.cum_principal[base + q_lt] - self.cum_principal[base + p] - paid_p, 0)
        overdue_interest = np.where(
            overdue, self.cum_interest[base + q_lt] - self.cum_interest[base + p] - paid_i, 0)
        after = np.minimum(base + p + 1, end)  # the first untouched row, or the loan's end
        unpaid_front = (s.principal[front] + s.interest[front] - paid_p - paid_i)
        front_late = has_frontier & (s.due[front] <= as_of) & (unpaid_front > self.tolerance)
        clamp = len(s.due) - 1  # keeps gathers in range; the masks discard those rows
        later = np.where(after < end, self.next_above_tolerance[np.minimum(after, clamp)], end)
        later_late = (later < end) & (s.due[np.minimum(later, clamp)] <= as_of)
        oldest = np.where(front_late, s.due[front],
                          np.where(later_late, s.due[np.minimum(later, clamp)], as_of))
        dpd = np.maximum(0, as_of - oldest - self.grace)
        unpaid_interest = self.cum_interest[end] - self.cum_interest[base] - owed.interest_paid
        paid_in_full = (outstanding == 0) & (penalty == 0) & (fees == 0) & (unpaid_interest == 0)
        status = self._status(dpd, paid_in_full, as_of >= s.due[end - 1], manual)
        nxt = base + np.maximum(p, q_lt)
        next_due = np.where((nxt < end) & ~paid_in_full, s.due[np.minimum(nxt, len(s.due) - 1)],
                            -1)
        payoff = owed.payoff(self.credit)
        products = self.book.products
        prod = self.book.product[self.lo:self.hi]
        bucket = np.empty(n, dtype=np.int8)
        for k, product in enumerate(products):
            mine = prod == k
            bucket[mine] = product.buckets.indices(dpd[mine])
        value = self._collateral_value(as_of, appraisal_value, appraisal_day)
        ead = outstanding + overdue_interest + penalty + fees
        rec_num = np.array([p.recovery_rate.numerator for p in products], np.int64)[prod]
        rec_den = np.array([p.recovery_rate.denominator for p in products], np.int64)[prod]
        recoverable = _half_up(value * rec_num, rec_den)
        ltv = np.where(value > 0, np.minimum(MAX_LTV_BPS, _half_up(outstanding * 10_000,
                                                                  np.maximum(value, 1))),
                       MAX_LTV_BPS)
        vclass = self.book.vehicle_class[self.lo:self.hi]
        cap_num = np.array([[p.ltv_caps[v].numerator for v in VEHICLE_CODES] for p in products],
                           np.int64)[prod, vclass]
        cap_den = np.array([[p.ltv_caps[v].denominator for v in VEHICLE_CODES] for p in products],
                           np.int64)[prod, vclass]
        return {
            "dpd": dpd, "bucket": bucket, "status": status,
            "outstanding_principal": outstanding, "overdue_principal": overdue_principal,
            "overdue_interest": overdue_interest, "penalty_accrued": penalty, "fees_due": fees,
            "next_due": next_due, "payoff": payoff, "credit": self.credit.copy(),
            "collateral_value": value, "ead": ead, "recoverable": recoverable,
            "unsecured": np.maximum(0, ead - recoverable), "ltv_bps": ltv,
            "over_cap": ltv * cap_den > 10_000 * cap_num,
        }

    def _untouched_penalty(self, idx: np.ndarray, q_lt: np.ndarray,
                           day: np.ndarray) -> np.ndarray:
        """Penalty at ``day`` on the overdue installments after the frontier of loans ``idx``,
        each rounded on its own."""
        s = self.s
        total = np.zeros(len(idx), dtype=np.int64)
        sel = np.flatnonzero(self.p[idx] + 1 < q_lt)
        k = 1
        while len(sel):
            loans = idx[sel]
            row = s.offsets[loans] + self.p[loans] + k
            days = day[sel] - s.due[row]
            total[sel] += _half_up(s.principal[row] * days * self.pen_num[loans],
                                   self.pen_den[loans])
            k += 1
            sel = sel[self.p[idx[sel]] + k < q_lt[sel]]
        return total

    def _interest_earned(self, idx: np.ndarray, q_le: np.ndarray,
                         day: np.ndarray) -> np.ndarray:
        """Interest of the installments of loans ``idx`` due by ``day`` plus the running
        period's share to that day."""
        s = self.s
        base, end = s.offsets[idx], s.offsets[idx + 1]
        running = base + q_le
        inside = running < end
        row = np.minimum(running, len(s.due) - 1)
        period_start = np.where(q_le > 0, s.due[np.maximum(row - 1, 0)], self.start[idx])
        elapsed = np.maximum(0, day - period_start)
        share = _half_up(s.interest[row] * elapsed, np.maximum(s.due[row] - period_start, 1))
        return self.cum_interest[running] - self.cum_interest[base] + np.where(inside, share, 0)

    def _status(self, dpd: np.ndarray, paid_in_full: np.ndarray, matured: np.ndarray,
                manual: np.ndarray) -> np.ndarray:
        code = STATUS_CODES.index
        status = np.where(dpd > 0, code(LoanStatus.DELINQUENT), code(LoanStatus.ACTIVE))
        status = np.where(dpd >= self.charge_off, code(LoanStatus.CHARGED_OFF), status)
        status = np.where(paid_in_full, np.where(matured & ~self.settled, code(LoanStatus.CLOSED),
                                                 code(LoanStatus.SETTLED)), status)
        return np.where(manual >= 0, manual, status).astype(np.int8)

    def _collateral_value(self, as_of: int, appraisal_value: np.ndarray,
                          appraisal_day: np.ndarray) -> np.ndarray:
        book, sl = self.book, slice(self.lo, self.hi)
        prod = book.product[sl]
        tables = np.stack([p.depreciation.factors_ppm() for p in book.products])
        appraised = (appraisal_value >= 0) & (appraisal_day <= as_of)
        base_value = np.where(appraised, appraisal_value, book.price[sl])
        base_age = np.where(appraised, appraisal_day - book.purchased_on[sl], 0)
        age = as_of - book.purchased_on[sl]
        to_factor = tables[prod, np.clip(age, 0, MAX_AGE_DAYS)]
        from_factor = tables[prod, np.clip(base_age, 0, MAX_AGE_DAYS)]
        return _half_up(base_value * to_factor, from_factor)


def hold_until_released(status: np.ndarray, pledged: np.ndarray) -> np.ndarray:
    """``status`` (STATUS_CODES indices) with every loan paid in full (closed or settled)
    whose vehicle is still pledged to it (``pledged``: its mortgage registration is in force)
    held at ``release-pending``: a loan closes only once its registration is released."""
    code = STATUS_CODES.index
    paid = (status == code(LoanStatus.CLOSED)) | (status == code(LoanStatus.SETTLED))
    return np.where(paid & pledged, code(LoanStatus.RELEASE_PENDING), status).astype(status.dtype)


@lru_cache(maxsize=65_536)
def _penalty_rate(rate_num: int, rate_den: int, multiple: Fraction, year_days: int) -> Fraction:
    return Fraction(rate_num, rate_den) * multiple / year_days


def _prefix(values: np.ndarray) -> np.ndarray:
    out = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(values, out=out[1:])
    return out


def _next_true(flags: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """For every row, the first row at or after it in the same loan where ``flags`` is set.

    Rows with none point at their loan's end offset.
    """
    loan_end = np.repeat(offsets[1:], np.diff(offsets))
    candidate = np.where(flags, np.arange(len(flags)), loan_end)
    return np.minimum.accumulate(candidate[::-1])[::-1]


class _DueCounter:
    """Per loan, how many of its installments fall due before a limit day, for any subset of
    loans, without searching the rows.

    Installment ``n`` falls due in the ``n``-th month after disbursement, so the count is
    the number of months from the start month to the limit's month, less one when that
    month's installment is not yet before the limit: a month look-up and one gather.
    """

    def __init__(self, due: np.ndarray, offsets: np.ndarray, start: np.ndarray,
                 term: np.ndarray) -> None:
        self.due, self.offsets, self.term = due, offsets, term
        self.start_month = month_parts(start)[0]

    def count(self, idx: np.ndarray, limit: np.ndarray, *, side: str) -> np.ndarray:
        """Installments of loans ``idx`` due before ``limit`` (``side="left"``) or on or
        before it (``"right"``)."""
        months = np.clip(month_parts(limit)[0] - self.start_month[idx], 0, self.term[idx])
        due = self.due[self.offsets[idx] + np.maximum(months, 1) - 1]
        counted = due < limit if side == "left" else due <= limit
        return np.where((months > 0) & ~counted, months - 1, months)
