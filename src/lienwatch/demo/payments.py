"""Abnormal payments on the simulator's book, scored against its planted anomalies.

A top-layer module: it reads the simulator's labels, which :mod:`lienwatch.risk.payments`
never sees. Every payment is traced (:func:`lienwatch.sim.anomalies.trace_payments`: its payer,
the simulator's third-party payers labelled, and a share of the loans with one planted anomaly
each), then the rules flag payments and the isolation forest ranks them; precision and recall
are counted by payment, the forest's on its top k for k the number the rules flagged (the same
review effort).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from lienwatch.risk.payments import (
    PaymentLimits,
    Payments,
    anomaly_scores,
    payment_findings,
    top_k,
)
from lienwatch.sim.anomalies import TracedPayment, trace_payments
from lienwatch.sim.records import Portfolio


def as_table(traced: list[TracedPayment]) -> Payments:
    """Traced payments as the rules read them."""
    return Payments(
        payment_id=[t.payment_id for t in traced], loan=[t.loan_ref for t in traced],
        borrower=[t.borrower_ref for t in traced],
        payer_account=[t.payer_account for t in traced],
        paid_at=np.array([int(t.paid_at.timestamp()) for t in traced], dtype=np.int64),
        local_hour=np.array([t.local_hour for t in traced], dtype=np.int64),
        amount=np.array([t.amount for t in traced], dtype=np.int64),
        channel=[t.channel for t in traced],
        installment=np.array([t.installment for t in traced], dtype=np.int64),
    )  # fmt: skip


def score_payment_rules(portfolio: Portfolio, *, share: float = 0.05, seed: int = 0,
                        limits: PaymentLimits | None = None) -> dict[str, Any]:  # fmt: skip
    """The rules over every traced payment of ``portfolio``: precision and recall on the
    labelled ones, the planted and found count of each kind, and the reasons of the flags
    the truth does not label; beside them the isolation forest's (seeded with ``seed``) top
    k, k the number of payments the rules flagged, with a random ranking's precision (the
    labelled share) for scale."""
    traced, accounts = trace_payments(portfolio, share=share, seed=seed)
    truth = {t.payment_id: t.planted for t in traced if t.planted}
    table = as_table(traced)
    findings = payment_findings(table, accounts, limits or PaymentLimits())
    flagged = {f.payment_id for f in findings}
    hits = flagged & set(truth)
    top = {table.payment_id[k] for k in top_k(anomaly_scores(table, accounts, seed=seed),
                                              len(flagged))}  # fmt: skip
    planted = Counter(truth.values())
    found = Counter(truth[p] for p in hits)
    return {
        "payments": len(traced),
        "labelled": len(truth),
        "flagged": len(flagged),
        "precision": round(len(hits) / len(flagged), 4) if flagged else None,
        "recall": round(len(hits) / len(truth), 4) if truth else None,
        "by_kind": {kind: {"labelled": n, "found": found[kind]}
                    for kind, n in sorted(planted.items())},
        "unlabelled_flags": dict(Counter(r for f in findings if f.payment_id not in truth
                                         for r in f.reasons)),
        "unsupervised": {
            "top_k": len(top),
            "precision": round(len(top & set(truth)) / len(top), 4) if top else None,
            "recall": round(len(top & set(truth)) / len(truth), 4) if truth else None,
            "random_precision": round(len(truth) / len(traced), 4) if traced else None,
        },
    }
