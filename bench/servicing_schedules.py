"""Benchmark: exact schedules for 1,000,000 loans, vectorized, against a per-loan loop.

The baseline is the plain approach: for every loan, numpy-financial's ``pmt``/``ipmt``/
``ppmt`` over its periods, rounded to the fen. It is timed on a random sample and
extrapolated to the whole book (said so in the output). The vectorized schedules are built
in chunks of 100,000 loans (to bound memory) and every chunk's row count and principal sum
are checked. Target: at least 100× faster. The machine is shared, so each side is timed
three times in this run and its best time is kept (the same treatment for both).

    python bench/servicing_schedules.py [--loans 1000000] [--sample 2000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import numpy_financial as npf

from lienwatch.servicing.schedules import build_schedules

TARGET_RATIO = 100.0
CHUNK = 100_000
REPEATS = 3


def synthetic_terms(loans: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Annuity loans (the method numpy-financial computes) at rates with 4 decimals."""
    return {
        "principal": rng.integers(3_000_000, 30_000_000, loans),
        "rate_num": rng.integers(300, 2400, loans),
        "rate_den": np.full(loans, 10_000),
        "term": rng.choice(np.array([12, 24, 36, 48, 60]), loans),
        "method": np.zeros(loans, dtype=np.int8),
        "start": rng.integers(20_000, 21_000, loans),
        "day_count": np.zeros(loans, dtype=np.int8),
    }


def per_loan_loop(terms: dict[str, np.ndarray], sample: np.ndarray) -> float:
    """Seconds for the numpy-financial loop over the sampled loans."""
    schedules = []
    started = time.perf_counter()
    for i in sample:
        rate = terms["rate_num"][i] / terms["rate_den"][i] / 12
        term, principal = int(terms["term"][i]), int(terms["principal"][i])
        periods = np.arange(1, term + 1)
        payment = round(float(npf.pmt(rate, term, -principal)))
        interest = np.round(npf.ipmt(rate, periods, term, -principal)).astype(np.int64)
        principal_part = np.round(npf.ppmt(rate, periods, term, -principal)).astype(np.int64)
        principal_part[-1] = principal - principal_part[:-1].sum()
        schedules.append((payment, interest, principal_part))
    elapsed = time.perf_counter() - started
    if len(schedules) != len(sample):
        raise SystemExit("baseline lost loans")
    return elapsed


def vectorized_run(terms: dict[str, np.ndarray], loans: int) -> tuple[float, int]:
    """Seconds to build every schedule in chunks, and the number of installments."""
    started = time.perf_counter()
    rows = 0
    for lo in range(0, loans, CHUNK):
        chunk = {key: value[lo:lo + CHUNK] for key, value in terms.items()}
        schedules = build_schedules(**chunk)
        rows += len(schedules.due)
        sums = np.add.reduceat(schedules.principal, schedules.offsets[:-1])
        if not np.array_equal(sums, chunk["principal"]):
            raise SystemExit("principal parts do not add up to the principal")
    return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=2_000)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    terms = synthetic_terms(args.loans, rng)

    vectorized, rows = min(vectorized_run(terms, args.loans) for _ in range(REPEATS))
    sample = rng.choice(args.loans, size=min(args.sample, args.loans), replace=False)
    loop = min(per_loan_loop(terms, sample) for _ in range(REPEATS))
    loop_total = loop / len(sample) * args.loans
    ratio = loop_total / vectorized
    print(f"{args.loans:,} annuity loans, {rows:,} installments")
    print(f"vectorized build_schedules:  {vectorized:8.2f} s  (best of {REPEATS})")
    print(f"per-loan numpy-financial:    {loop_total:8.2f} s  (measured on {len(sample):,} "
          f"loans, {loop:.2f} s best of {REPEATS}, extrapolated)")
    print(f"ratio: {ratio:.0f}x  (target >= {TARGET_RATIO:.0f}x: "
          f"{'met' if ratio >= TARGET_RATIO else 'MISSED'})")


if __name__ == "__main__":
    main()
