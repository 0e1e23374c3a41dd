"""Benchmark: the vectorized nightly portfolio run over 1,000,000 synthetic loans.

Target: under 15 s on a 2-core machine. The timed run is a nightly one: it compares
with the previous night's snapshot (computed first, not timed) and emits bucket changes.
The baseline is the exact per-loan path (``loan_state``) run on a random sample of the
same loans in the same process and extrapolated to the whole book (said so in the
output); the sample's figures are also checked to be identical to the vectorized ones.

A share of the loans (``--prepay-share``, default 5 %) is on products that turn overpayments
into principal prepayments (reduce-term, reduce-installment), and one borrower in twenty makes
an extra lump payment: those on prepaying products leave the vectorized model and are run
through the exact path inside the timed run; the others run ahead or pay off early.

    python bench/servicing_portfolio.py [--loans 1000000] [--sample 2000] [--prepay-share 0.05]
                                        [--repeat 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import time
from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from lienwatch.servicing.engine import loan_state
from lienwatch.servicing.portfolio import (
    LoanBook,
    PaymentArrays,
    day_number,
    from_day_number,
    run_portfolio,
)
from lienwatch.servicing.product import LoanTerms, Overpayment, Payment, Product
from lienwatch.servicing.schedules import METHOD_CODES, build_schedules

AS_OF = date(2026, 6, 30)
TARGET_SECONDS = 15.0


PRODUCTS = (
    Product(late_fee=5_000, grace_days=3),
    Product(name="shorten", late_fee=5_000, grace_days=3, overpayment=Overpayment.REDUCE_TERM),
    Product(name="lower", late_fee=5_000, grace_days=3,
            overpayment=Overpayment.REDUCE_INSTALLMENT),
)


def synthetic_book(loans: int, rng: np.random.Generator, prepay_share: float) -> LoanBook:
    """Loans disbursed over the three years before AS_OF, at rates with 4 decimals;
    ``prepay_share`` of them on the two prepaying products."""
    rate_bp = rng.integers(300, 2400, loans)  # 3.00 %–24.00 %
    principal = rng.integers(3_000_000, 30_000_000, loans)  # 30k–300k CNY
    start = day_number(AS_OF) - rng.integers(1, 3 * 365, loans)
    return LoanBook(
        loan_id=np.char.add("L", np.arange(loans).astype(str)).astype(object),
        principal=principal, rate_num=rate_bp, rate_den=np.full(loans, 10_000),
        term=rng.choice(np.array([12, 24, 36, 48, 60]), loans),
        method=rng.choice(np.array([0, 0, 0, 1, 2], dtype=np.int8), loans),
        start=start, day_count=rng.integers(0, 2, loans).astype(np.int8),
        product=np.where(rng.random(loans) < prepay_share, rng.integers(1, 3, loans), 0),
        price=principal * 5 // 4, purchased_on=start,
        vehicle_class=rng.integers(0, 3, loans).astype(np.int8),
        products=PRODUCTS,
    )


def synthetic_payments(book: LoanBook, rng: np.random.Generator) -> PaymentArrays:
    """Most borrowers pay every installment on time or a few days early; one in ten pays
    late (1–59 days), and one in ten stops paying at a random point of its loan. One in
    twenty also pays an extra 5–40 % of its principal on a random day of its loan."""
    parts = []
    for lo in range(0, len(book), 200_000):
        sl = slice(lo, lo + 200_000)
        s = build_schedules(principal=book.principal[sl], rate_num=book.rate_num[sl],
                            rate_den=book.rate_den[sl], term=book.term[sl],
                            method=book.method[sl], start=book.start[sl],
                            day_count=book.day_count[sl])
        loan = s.loan_of_row + lo
        rows = len(s.due)
        profile = rng.random(len(s.offsets) - 1)[loan - lo]
        stops_at = rng.integers(1, 61, len(s.offsets) - 1)[loan - lo]
        number = np.arange(rows) - s.offsets[loan - lo]
        paid = (s.due <= day_number(AS_OF)) & ((profile < 0.9) | (number < stops_at))
        delay = np.where((profile > 0.8) & (profile < 0.9), rng.integers(1, 60, rows),
                         rng.integers(-5, 1, rows))
        amount = s.principal + s.interest
        parts.append((loan[paid], np.maximum(s.due + delay, book.start[loan])[paid],
                      np.maximum(amount, 1)[paid]))
    lump = np.flatnonzero(rng.random(len(book)) < 0.05)
    lump_day = book.start[lump] + (rng.random(len(lump)) * (day_number(AS_OF) - book.start[lump]))
    parts.append((lump, lump_day.astype(np.int64),
                  book.principal[lump] * rng.integers(5, 41, len(lump)) // 100))
    return PaymentArrays(*(np.concatenate(col) for col in zip(*parts, strict=True)))


def exact_sample(book: LoanBook, payments: PaymentArrays, sample: np.ndarray):
    by_loan: dict[int, list[Payment]] = {int(i): [] for i in sample}
    for k in np.flatnonzero(np.isin(payments.loan, sample)):
        by_loan[int(payments.loan[k])].append(Payment(
            f"p{k}", from_day_number(payments.day[k]), int(payments.amount[k])))
    started = time.perf_counter()
    states = []
    for i in sample:
        terms = LoanTerms(
            str(book.loan_id[i]), int(book.principal[i]),
            Decimal(int(book.rate_num[i])) / int(book.rate_den[i]), int(book.term[i]),
            METHOD_CODES[book.method[i]], from_day_number(book.start[i]),
            day_count=("30/360", "act/365")[book.day_count[i]])
        states.append(loan_state(terms, book.products[book.product[i]], by_loan[int(i)], AS_OF))
    return states, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=2_000)
    parser.add_argument("--prepay-share", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=2, help="timed runs; the best is kept")
    parser.add_argument("--workers", type=int, default=2, help="processes of the run")
    args = parser.parse_args()
    rng = np.random.default_rng(20260630)
    book = synthetic_book(args.loans, rng, args.prepay_share)
    payments = synthetic_payments(book, rng)
    print(f"{len(book):,} loans ({int(np.count_nonzero(book.product)):,} on prepaying "
          f"products), {len(payments.loan):,} payments, as of {AS_OF}")

    yesterday = run_portfolio(book, payments, AS_OF - timedelta(days=1))
    vectorized = float("inf")
    for _ in range(args.repeat):  # the machine is shared: keep the best timing
        started = time.perf_counter()
        result = run_portfolio(book, payments, AS_OF, previous_bucket=yesterday.bucket,
                               workers=args.workers)
        vectorized = min(vectorized, time.perf_counter() - started)

    sample = np.sort(rng.choice(len(book), size=min(args.sample, len(book)), replace=False))
    states, exact = exact_sample(book, payments, sample)
    mismatches = sum(state != result.state(book, int(i)) for state, i in zip(states, sample,
                                                                               strict=True))
    exact_total = exact / len(sample) * len(book)
    print(f"vectorized run:         {vectorized:8.2f} s  best of {args.repeat}, "
          f"{args.workers} processes "
          f"(target < {TARGET_SECONDS:.0f} s: "
          f"{'met' if vectorized < TARGET_SECONDS else 'MISSED'})")
    print(f"exact per-loan path:    {exact_total:8.2f} s  (measured on {len(sample):,} loans, "
          f"{exact:.2f} s, extrapolated)")
    print(f"ratio exact / vectorized: {exact_total / vectorized:.1f}x")
    print(f"loans that prepaid principal, run through the exact path: {len(result.exact_loans):,}")
    on_prepaying = int(np.count_nonzero(book.product))
    print(f"running all {on_prepaying:,} loans of prepaying products on the exact path instead "
          f"would add about {exact / len(sample) * on_prepaying:.1f} s (extrapolated)")
    print(f"sample loans differing from the exact path: {mismatches}")
    print(f"bucket_changed events against the run of the day before: {len(result.events):,}")
    buckets = np.bincount(result.bucket, minlength=8)
    print("bucket counts:", dict(zip(book.products[0].buckets.names, buckets.tolist(),
                                     strict=True)))


if __name__ == "__main__":
    main()
