"""Abnormal payments in the book as ``payment_anomaly`` alerts: the rules of
:mod:`lienwatch.risk.payments` over the stored payments, one open alert per loan holding every
flagged payment as evidence. The follow-up engine picks the alert up like any other (the
``payment-anomaly`` ladder); the nightly job runs the scan after servicing (docs/risk.md).

The book stores no paying account, so the two payer rules (``PAYER_NOT_BORROWER``,
``SHARED_PAYER``) cannot fire here: every stored payment counts as the borrower's own. The
local hour is the hour lienwatch received the payment, in the loan's time zone."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.followup.model import TriggerKind
from lienwatch.risk.payments import PaymentFinding, PaymentLimits, Payments, payment_findings
from lienwatch.store.followup import OPEN_ALERT_STATUSES
from lienwatch.store.tables import Alert, Installment, Loan, Payment

#: The alert type, the same word as the follow-up trigger it raises.
PAYMENT_ANOMALY = TriggerKind.PAYMENT_ANOMALY.value
#: How far back a loan's habits (channels, hours) are read before the scanned days.
HISTORY_DAYS = 400
WHY = ("one or more of the abnormal-payment rules flagged the loan's payments: each payment "
       "lists the rules that fired (reason codes in docs/risk.md)")  # fmt: skip


def scan_payments(
    session: Session, *, since: date, through: date, at: datetime,
    limits: PaymentLimits | None = None,
) -> list[Alert]:  # fmt: skip
    """Run the rules over the payments paid from ``since`` to ``through`` (value dates, read
    against each loan's earlier payments) and record each loan's newly flagged payments: a new
    open ``payment_anomaly`` alert, or the loan's open one extended (``repeats`` + 1). A
    payment already in an alert's evidence is not raised again, so a rerun adds nothing.
    Returns the alerts raised or extended, in the caller's transaction."""
    limits = limits or PaymentLimits()
    if since > through:
        raise ValueError(f"since: {since} is after through {through}")
    # every rule reads one loan's payments (the payer is the borrower's own account here),
    # so only the loans paid in the scanned days are read, each with its history
    paid = select(Payment.loan_id).where(Payment.reversed_at.is_(None),
                                         Payment.paid_on.between(since, through))  # fmt: skip
    rows = session.execute(
        select(Payment, Loan)
        .join(Loan, Loan.id == Payment.loan_id)
        .where(Payment.reversed_at.is_(None), Payment.loan_id.in_(paid.scalar_subquery()),
               Payment.paid_on.between(since - timedelta(days=HISTORY_DAYS), through))
        .order_by(Payment.paid_on, Payment.received_at, Payment.id)
    ).all()  # fmt: skip
    fresh = {p.external_id for p, _ in rows if p.paid_on >= since}
    if not fresh:
        return []
    loans = {loan.id: loan for _, loan in rows}
    findings = [f for f in payment_findings(_table(session, rows), _own_accounts(loans), limits)
                if f.payment_id in fresh]  # fmt: skip
    by_id = {p.external_id: p for p, _ in rows}
    known = _alerted_payments(session, {by_id[f.payment_id].loan_id for f in findings})
    news: dict[int, list[PaymentFinding]] = defaultdict(list)
    for finding in findings:
        if finding.payment_id not in known:
            news[by_id[finding.payment_id].loan_id].append(finding)
    return [
        _record(session, loans[loan_id], [(by_id[f.payment_id], f) for f in found], at, limits)
        for loan_id, found in sorted(news.items())
    ]


def _table(session: Session, rows: list[Any]) -> Payments:
    """The stored payments as the rules read them (time order), each loan's regular
    installment from its schedule."""
    installment = _regular_installments(session, {loan.id for _, loan in rows})
    zones = {z: ZoneInfo(z) for z in {loan.time_zone for _, loan in rows}}
    hours = [p.received_at.astimezone(zones[loan.time_zone]).hour for p, loan in rows]
    day_s = np.array([p.paid_on.toordinal() * 86_400 for p, _ in rows], dtype=np.int64)
    return Payments(
        payment_id=[p.external_id for p, _ in rows],
        loan=[loan.ref for _, loan in rows],
        borrower=[str(loan.borrower_id) for _, loan in rows],
        payer_account=[_own_account(loan) for _, loan in rows],
        paid_at=day_s + np.array(hours, dtype=np.int64) * 3_600,
        local_hour=np.array(hours, dtype=np.int64),
        amount=np.array([p.amount for p, _ in rows], dtype=np.int64),
        channel=[p.channel for p, _ in rows],
        installment=np.array([installment.get(loan.id, 0) for _, loan in rows], dtype=np.int64),
    )  # fmt: skip


def _own_account(loan: Loan) -> str:
    return f"borrower:{loan.borrower_id}"


def _own_accounts(loans: dict[int, Loan]) -> dict[str, set[str]]:
    return {str(loan.borrower_id): {_own_account(loan)} for loan in loans.values()}


def _regular_installments(session: Session, loan_ids: set[int]) -> dict[int, int]:
    """Each loan's second installment (its first may cover a broken period), or its first."""
    found: dict[int, int] = {}
    for loan_id, amount in session.execute(
        select(Installment.loan_id, Installment.principal + Installment.interest + Installment.fee)
        .where(Installment.loan_id.in_(loan_ids), Installment.n <= 2)
        .order_by(Installment.loan_id, Installment.n)
    ):  # fmt: skip
        found[loan_id] = int(amount)
    return found


def _alerted_payments(session: Session, loan_ids: set[int]) -> set[str]:
    """The payments already in a ``payment_anomaly`` alert's evidence, open or not."""
    evidence = session.scalars(
        select(Alert.evidence).where(Alert.type == PAYMENT_ANOMALY, Alert.loan_id.in_(loan_ids))
    )
    return {p["payment"] for e in evidence for p in e.get("payments", ())}


def _payment_evidence(payment: Payment, finding: PaymentFinding) -> dict[str, Any]:
    return {"payment": payment.external_id, "paid_on": payment.paid_on.isoformat(),
            "amount_fen": payment.amount, "channel": payment.channel,
            "rules": list(finding.reasons), **({"details": finding.details}
                                               if finding.details else {})}  # fmt: skip


def _record(
    session: Session, loan: Loan, found: list[tuple[Payment, PaymentFinding]], at: datetime,
    limits: PaymentLimits,
) -> Alert:  # fmt: skip
    payments = [_payment_evidence(p, f) for p, f in found]
    alert = session.scalar(
        select(Alert).where(Alert.vehicle_id == loan.vehicle_id, Alert.type == PAYMENT_ANOMALY,
                            Alert.status.in_(OPEN_ALERT_STATUSES))
    )  # fmt: skip
    if alert is None:
        first = found[0][0]
        alert = Alert(
            key=f"{PAYMENT_ANOMALY}:{first.external_id}", type=PAYMENT_ANOMALY,
            severity="warning", status="open", vehicle_id=loan.vehicle_id, loan_id=loan.id,
            started_at=min(p.received_at for p, _ in found), raised_at=at, updated_at=at,
            evidence={"rule": PAYMENT_ANOMALY, "why": WHY, "thresholds": asdict(limits),
                      "rules": [], "payments": []},
        )  # fmt: skip
        session.add(alert)
    else:
        alert.repeats += 1
        alert.updated_at = at
    rules = sorted({*alert.evidence.get("rules", ()), *(r for p in payments for r in p["rules"])})
    alert.evidence = {**alert.evidence, "rules": rules,
                      "payments": [*alert.evidence.get("payments", ()), *payments]}  # fmt: skip
    session.flush()
    return alert
