"""Abnormal payments on the simulator's book: precision and recall of the rules and of the
unsupervised score against planted anomalies (lienwatch.sim.anomalies), and the rules' speed.

Baseline for the score, same run: a random ranking (its top-k precision is the planted share).

    python bench/payments.py [--loans 1000] [--share 0.05] [--seed 5]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np

from lienwatch.demo.payments import as_table
from lienwatch.risk.payments import anomaly_scores, payment_findings
from lienwatch.sim import SimConfig, generate
from lienwatch.sim.anomalies import trace_payments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=1000)
    parser.add_argument("--share", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    portfolio = generate(SimConfig(loans=args.loans, days=14, seed=args.seed))
    traced, accounts = trace_payments(portfolio, share=args.share, seed=args.seed)
    table = as_table(traced)
    truth = {t.payment_id: t.planted for t in traced if t.planted}
    started = time.perf_counter()
    findings = payment_findings(table, accounts)
    rules_s = time.perf_counter() - started
    flagged = {f.payment_id for f in findings}
    hits = flagged & set(truth)
    print(f"{len(traced):,} payments, {len(truth)} planted anomalies on "
          f"{len(set(t.loan_ref for t in traced if t.planted))} loans")
    print(f"rules: {rules_s:.2f} s, flagged {len(flagged)}, precision "
          f"{len(hits) / len(flagged):.3f}, recall {len(hits) / len(truth):.3f}")
    missed = Counter(truth[p] for p in set(truth) - flagged)
    false = Counter(r for f in findings if f.payment_id not in truth for r in f.reasons)
    print(f"  missed by kind: {dict(missed) or 'none'}; reasons of false flags: {dict(false)}")
    scores = anomaly_scores(table, accounts, seed=args.seed)
    top = set(np.array(table.payment_id)[np.argsort(-scores)[: len(truth)]])
    precision = len(top & set(truth)) / len(truth)
    base = len(truth) / len(traced)
    print(f"isolation forest: top-{len(truth)} precision (= recall) {precision:.3f}; random "
          f"ranking {base:.3f}; ratio x{precision / base:.1f}")


if __name__ == "__main__":
    main()
