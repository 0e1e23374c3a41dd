"""Abnormal-payment rules and the unsupervised score on a hand-made table."""

from __future__ import annotations

import numpy as np

from lienwatch.risk.payments import Payments, anomaly_scores, payment_findings

DAY = 86_400
INSTALLMENT = 345_678  # fen


def _table(rows):
    """rows: (id, loan, borrower, payer, day, hour, amount, channel)."""
    cols = list(zip(*rows, strict=True))
    return Payments(
        payment_id=list(cols[0]), loan=list(cols[1]), borrower=list(cols[2]),
        payer_account=list(cols[3]),
        paid_at=np.array([d * DAY + h * 3600 for d, h in zip(cols[4], cols[5], strict=True)]),
        local_hour=np.array(cols[5]), amount=np.array(cols[6]), channel=list(cols[7]),
        installment=np.full(len(rows), INSTALLMENT),
    )  # fmt: skip


def _history(loan, borrower, days=(0, 30, 60, 90)):
    return [(f"{loan}-{d}", loan, borrower, f"A-{borrower}", d, 10, INSTALLMENT, "bank_debit")
            for d in days]  # fmt: skip


ACCOUNTS = {b: {f"A-{b}"} for b in ("b1", "b2", "b3", "b4")}


def _reasons(rows):
    return {f.payment_id: f.reasons for f in payment_findings(_table(rows), ACCOUNTS)}


def test_ordinary_payments_raise_nothing():
    rows = [*_history("L1", "b1"), ("L1-t", "L1", "b1", "A-b1", 120, 11, INSTALLMENT, "transfer")]
    assert _reasons(rows) == {}


def test_each_rule_names_its_reason():
    rows = [
        *_history("L1", "b1"), *_history("L2", "b2"), *_history("L3", "b3"),
        ("x1", "L1", "b1", "A-stranger", 120, 10, INSTALLMENT, "bank_debit"),
        ("m1", "L2", "b2", "A-mule", 121, 10, INSTALLMENT, "bank_debit"),
        ("m2", "L3", "b3", "A-mule", 121, 10, INSTALLMENT, "bank_debit"),
        ("m3", "L1", "b1", "A-mule", 122, 10, INSTALLMENT, "bank_debit"),
        ("s1", "L3", "b3", "A-b3", 150, 10, 115_226, "bank_debit"),
        ("s2", "L3", "b3", "A-b3", 150, 11, 115_226, "bank_debit"),
        ("s3", "L3", "b3", "A-b3", 150, 12, 115_226, "bank_debit"),
        ("r1", "L2", "b2", "A-b2", 160, 10, 2_000_000, "bank_debit"),
        ("u1", "L2", "b2", "A-b2", 170, 10, 4_990_000, "bank_debit"),
        ("c1", "L1", "b1", "A-b1", 180, 10, INSTALLMENT, "cash"),
        ("h1", "L2", "b2", "A-b2", 190, 3, INSTALLMENT, "bank_debit"),
    ]  # fmt: skip
    found = _reasons(rows)
    assert found["x1"] == ("PAYER_NOT_BORROWER",)
    assert {found[m] for m in ("m1", "m2", "m3")} == {("PAYER_NOT_BORROWER", "SHARED_PAYER")}
    assert {found[s] for s in ("s1", "s2", "s3")} == {("SPLIT_PAYMENT",)}
    assert found["r1"] == ("ROUND_SUM",)
    assert found["u1"] == ("JUST_UNDER_THRESHOLD",)
    assert found["c1"] == ("CHANNEL_CHANGE",)
    assert found["h1"] == ("TIME_CHANGE",)
    assert set(found) == {"x1", "m1", "m2", "m3", "s1", "s2", "s3", "r1", "u1", "c1", "h1"}
    finding = payment_findings(_table(rows), ACCOUNTS)[0]
    assert finding.as_alert()["type"] == "payment_anomaly"


def test_the_unsupervised_score_puts_a_stranger_above_the_routine():
    rows = [*_history("L1", "b1", days=range(0, 600, 30)),
            *_history("L2", "b2", days=range(0, 600, 30)),
            ("odd", "L2", "b2", "A-mule", 700, 3, 4_990_000, "cash")]  # fmt: skip
    scores = anomaly_scores(_table(rows), ACCOUNTS)
    assert int(np.argmax(scores)) == len(rows) - 1
