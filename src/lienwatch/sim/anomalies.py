"""Payment traces with planted anomalies: the ground truth the abnormal-payment rules and score
(``lienwatch.risk.payments``) are measured on.

The simulator's payments say what was paid, when, how and from which account (mostly the
borrower's own, registered card; its third-party payers are labelled ``third_party_payer`` or,
when one account pays for several borrowers, ``shared_payer``); a trace adds the local time of
day (each loan has its habitual hour). Then a share of the loans gets one planted anomaly
each, labelled with its kind: a third party pays, one mule account pays for several
borrowers, an installment is split into three same-day parts, a round cash sum, an amount
just under the 50,000-yuan reporting threshold, a new channel, a payment at an hour the
borrower never pays.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from lienwatch.sim.payments import bank_account
from lienwatch.sim.records import Portfolio

KINDS = ("third_party_payer", "shared_payer", "split", "round_sum", "just_under_threshold",
         "channel_change", "time_change")  # fmt: skip


@dataclass(frozen=True, slots=True)
class TracedPayment:
    """A payment with its payer, its local time, the loan's regular installment and, when
    planted, the kind of anomaly it is."""

    payment_id: str
    loan_ref: str
    borrower_ref: str
    payer_account: str
    paid_at: datetime  # UTC
    local_hour: int
    amount: int  # fen
    channel: str
    installment: int  # fen
    planted: str | None = None


def _account(borrower_ref: str) -> str:
    """The borrower's own registered account: the card the simulator's payments come from."""
    return bank_account(borrower_ref)


def trace_payments(
    portfolio: Portfolio, *, share: float = 0.05, seed: int = 0
) -> tuple[list[TracedPayment], dict[str, set[str]]]:
    """Every payment traced, a ``share`` of the loans (with three or more payments) carrying
    one planted anomaly; and each borrower's registered accounts."""
    rng = np.random.default_rng(seed)
    borrower = {loan.ref: loan.borrower_ref for loan in portfolio.loans}
    zone = {loan.ref: ZoneInfo(loan.time_zone) for loan in portfolio.loans}
    by_loan: dict[str, list] = defaultdict(list)
    for payment in portfolio.payments:
        by_loan[payment.loan_ref].append(payment)
    traced: list[TracedPayment] = []
    loans = sorted(by_loan)
    habit = dict(zip(loans, rng.integers(8, 21, len(loans)).tolist(), strict=True))
    payers: dict[str, set[str]] = defaultdict(set)  # the simulator's own payers
    for payment in portfolio.payments:
        payers[payment.payer_account or _account(borrower[payment.loan_ref])].add(
            borrower[payment.loan_ref])
    for ref in loans:
        rows = sorted(by_loan[ref], key=lambda p: p.paid_on)
        installment = int(np.median([p.amount for p in rows]))
        for p in rows:
            hour = min(max(habit[ref] + int(rng.integers(-1, 2)), 0), 23)  # scalar: no np.clip
            local = datetime.combine(p.paid_on, time(hour, int(rng.integers(0, 60))), zone[ref])
            payer = p.payer_account or _account(borrower[ref])
            # the simulator's third-party payers (sim.payments.with_payers) are truth too
            kind = None if payer == _account(borrower[ref]) else (
                "shared_payer" if len(payers[payer]) > 1 else "third_party_payer")
            traced.append(TracedPayment(p.external_id, ref, borrower[ref], payer,
                                        local.astimezone(ZoneInfo("UTC")), hour, p.amount,
                                        p.channel, installment, kind))  # fmt: skip
    eligible = [ref for ref in loans if len(by_loan[ref]) >= 4]
    chosen = rng.permutation(eligible)[: int(share * len(eligible))]
    planted = _plant(rng, traced, [str(r) for r in chosen])
    accounts = {b.ref: {_account(b.ref)} for b in portfolio.borrowers}
    return sorted(planted, key=lambda t: t.paid_at), accounts


def _plant(rng: np.random.Generator, traced: list[TracedPayment],
           chosen: list[str]) -> list[TracedPayment]:  # fmt: skip
    """One anomaly on the last payment of each chosen loan, the kinds in turn; the shared
    payer needs several loans, so four loans share one mule account."""
    last = {t.loan_ref: k for k, t in enumerate(traced)}
    out = list(traced)
    mule = "ACCT-MULE-0001"
    for n, ref in enumerate(chosen):
        kind = KINDS[n % len(KINDS)]
        k = last[ref]
        t = out[k]
        if kind == "third_party_payer":
            out[k] = replace(t, payer_account=f"ACCT-X{n:05d}", planted=kind)
        elif kind == "shared_payer":
            out[k] = replace(t, payer_account=mule if n % 4 else f"ACCT-MULE-{n:04d}",
                             planted=kind)  # fmt: skip
            mule = out[k].payer_account
        elif kind == "split":
            third = t.installment // 3
            parts = [third, third, t.installment - 2 * third]
            out[k] = replace(t, amount=parts[0], planted=kind)
            out += [replace(t, payment_id=f"{t.payment_id}-S{i}", amount=a, planted=kind)
                    for i, a in enumerate(parts[1:], start=1)]  # fmt: skip
        elif kind == "round_sum":
            amount = int(rng.integers(2, 20)) * 1_000_000  # 20,000-190,000 yuan
            out.append(replace(t, payment_id=f"{t.payment_id}-R", amount=amount, channel="cash",
                               planted=kind))  # fmt: skip
        elif kind == "just_under_threshold":
            amount = 5_000_000 - int(rng.integers(1, 200)) * 1_000
            out.append(replace(t, payment_id=f"{t.payment_id}-U", amount=amount, planted=kind))
        elif kind == "channel_change":
            used = {x.channel for x in traced if x.loan_ref == ref}
            new = next(c for c in ("cash", "third_party_app", "counter") if c not in used)
            out[k] = replace(t, channel=new, planted=kind)
        else:  # time_change: 3 a.m. local
            hour = 3 if abs(t.local_hour - 3) >= 6 else 15
            shifted = t.paid_at + timedelta(hours=hour - t.local_hour)
            out[k] = replace(t, paid_at=shifted, local_hour=hour, planted=kind)
    return out
