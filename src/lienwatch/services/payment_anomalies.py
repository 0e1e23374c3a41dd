"""Abnormal payments in the book as ``payment_anomaly`` alerts: the rules of
:mod:`lienwatch.risk.payments` over the stored payments, one open alert per loan holding every
flagged payment as evidence. The follow-up engine picks the alert up like any other (the
``payment-anomaly`` ladder); the nightly job runs the scan after servicing (docs/risk.md).

Who paid is what the bank reported with the payment (``payer_account``, ``payer_name``: the
import file's columns, the API's fields, ``lienwatch payment post --payer-account``). A
borrower's registered accounts are those that paid for them under the borrower's own name (or
under no name): so ``PAYER_NOT_BORROWER`` fires on an account that paid under another
name, and ``SHARED_PAYER`` on an account paying for several borrowers whatever the name. A
payment with no account reported counts as the borrower's own. The local hour is the hour of
the payment's moment (``paid_at``: the file's, or when it was posted live), in the loan's time
zone; a payment imported with its value date only has none."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Row, select
from sqlalchemy.orm import Bundle, Session

from lienwatch.followup.model import TriggerKind
from lienwatch.risk.payments import (
    FEATURE_NAMES,
    PaymentFinding,
    PaymentLimits,
    Payments,
    anomaly_scores,
    features,
    payment_findings,
    top_k,
)
from lienwatch.store.db import among, chunks
from lienwatch.store.followup import OPEN_ALERT_STATUSES
from lienwatch.store.repositories import LoanRepository
from lienwatch.store.tables import Alert, Borrower, Loan, Payment

#: The alert type, the same word as the follow-up trigger it raises.
PAYMENT_ANOMALY = TriggerKind.PAYMENT_ANOMALY.value
#: How far back a loan's habits (channels, hours) are read before the scanned days.
HISTORY_DAYS = 400
#: What the rules and the alerts read of a payment and of its loan, as rows: a scan reads every
#: payment of the loans paid in its days, and ORM objects of them cost several times the rows.
_PAYMENT = Bundle("payment", Payment.id, Payment.external_id, Payment.loan_id, Payment.paid_on,
                  Payment.paid_at, Payment.amount, Payment.channel, Payment.payer_account,
                  Payment.payer_name)  # fmt: skip
_LOAN = Bundle("loan", Loan.id, Loan.ref, Loan.borrower_id, Loan.vehicle_id, Loan.time_zone)
PaymentRow = Row[Any]  # the columns of _PAYMENT
LoanRow = Row[Any]  # the columns of _LOAN
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
        select(_PAYMENT, _LOAN)
        .join(Loan, Loan.id == Payment.loan_id)
        .where(Payment.reversed_at.is_(None), Payment.loan_id.in_(paid.scalar_subquery()),
               Payment.paid_on.between(since - timedelta(days=HISTORY_DAYS), through))
        .order_by(Payment.paid_on, Payment.received_at, Payment.id)
    ).all()  # fmt: skip
    fresh = {p.external_id for p, _ in rows if p.paid_on >= since}
    if not fresh:
        return []
    names = _borrower_names(session, {loan.borrower_id for _, loan in rows})
    findings = [f for f in payment_findings(_table(session, rows), _own_accounts(rows, names),
                                            limits) if f.payment_id in fresh]  # fmt: skip
    loans = {loan.id: loan for _, loan in rows}
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


def payment_review(session: Session, *, as_of: date, days: int = 90, top: int = 20,
                   seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """The unsupervised score over the payments paid in the ``days`` up to ``as_of``: the
    ``top`` strangest for a person to review, each with the features the isolation forest
    read and whether a rule already raised it. For review and data quality only: it has no
    label behind it and decides nothing about a loan or a borrower."""
    if days < 1 or top < 1:
        raise ValueError(f"days ({days}) and top ({top}) must be at least 1")
    rows = session.execute(
        select(_PAYMENT, _LOAN)
        .join(Loan, Loan.id == Payment.loan_id)
        .where(Payment.reversed_at.is_(None),
               Payment.paid_on.between(as_of - timedelta(days=days - 1), as_of))
        .order_by(Payment.paid_on, Payment.received_at, Payment.id)
    ).all()  # fmt: skip
    found: dict[str, Any] = {"as_of": as_of.isoformat(), "days": days, "seed": seed,
                             "payments": len(rows), "features": list(FEATURE_NAMES),
                             "top": []}  # fmt: skip
    if not rows:
        return found
    table = _table(session, rows)
    accounts = _own_accounts(rows, _borrower_names(session, {loan.borrower_id for _, loan in rows}))
    x = features(table, accounts)
    scores = anomaly_scores(table, accounts, seed=seed, x=x)
    chosen = top_k(scores, top)
    alerted = _alerted_payments(session, {rows[int(k)][0].loan_id for k in chosen})
    for k in chosen:
        payment, loan = rows[int(k)]
        found["top"].append({
            "payment": payment.external_id, "loan": loan.ref,
            "paid_on": payment.paid_on.isoformat(), "amount_fen": payment.amount,
            "channel": payment.channel, "score": round(float(scores[k]), 4),
            "features": {name: round(float(v), 4)
                         for name, v in zip(FEATURE_NAMES, x[k], strict=True)},
            "alerted": payment.external_id in alerted,
        })  # fmt: skip
    return found


def _table(session: Session, rows: list[Any]) -> Payments:
    """The stored payments as the rules read them (time order), each loan's regular
    installment from its schedule."""
    installment = LoanRepository(session).regular_installments({loan.id for _, loan in rows})
    zones = {z: ZoneInfo(z) for z in {loan.time_zone for _, loan in rows}}
    hours = np.array([-1 if p.paid_at is None else p.paid_at.astimezone(zones[loan.time_zone]).hour
                      for p, loan in rows], dtype=np.int64)  # fmt: skip
    day_s = np.array([p.paid_on.toordinal() * 86_400 for p, _ in rows], dtype=np.int64)
    return Payments(
        payment_id=[p.external_id for p, _ in rows],
        loan=[loan.ref for _, loan in rows],
        borrower=[str(loan.borrower_id) for _, loan in rows],
        payer_account=[_payer(p, loan) for p, loan in rows],
        paid_at=day_s + np.maximum(hours, 0) * 3_600,  # no hour: the day's start
        local_hour=hours,
        amount=np.array([p.amount for p, _ in rows], dtype=np.int64),
        channel=[p.channel for p, _ in rows],
        installment=np.array([installment.get(loan.id, 0) for _, loan in rows], dtype=np.int64),
    )  # fmt: skip


def _moment(payment: PaymentRow, loan: LoanRow) -> datetime:
    """When the payment was made: its ``paid_at``, or its value date's start in the loan's
    time zone when only the date is known."""
    if payment.paid_at is not None:
        return payment.paid_at
    return datetime.combine(payment.paid_on, time(), ZoneInfo(loan.time_zone))


def _payer(payment: PaymentRow, loan: LoanRow) -> str:
    """The paying account; the borrower's own (a key of their own) when none was reported."""
    return payment.payer_account or f"borrower:{loan.borrower_id}"


def _borrower_names(session: Session, ids: set[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for chunk in chunks(sorted(ids)):
        rows = session.execute(select(Borrower.id, Borrower.name).where(Borrower.id.in_(chunk)))
        found.update({borrower_id: name for borrower_id, name in rows})
    return found


def _same_name(one: str, other: str) -> bool:
    return "".join(one.split()).casefold() == "".join(other.split()).casefold()


def _own_accounts(rows: list[Any], names: dict[int, str]) -> dict[str, set[str]]:
    """Each borrower's registered accounts: those that paid for them under their own name or
    under no name (and the key of payments with no account)."""
    own: dict[str, set[str]] = defaultdict(set)
    for payment, loan in rows:
        name = payment.payer_name
        if name is None or _same_name(name, names.get(loan.borrower_id, "")):
            own[str(loan.borrower_id)].add(_payer(payment, loan))
    return own


def _alerted_payments(session: Session, loan_ids: set[int]) -> set[str]:
    """The payments already in a ``payment_anomaly`` alert's evidence, open or not."""
    query = select(Alert.evidence).where(Alert.type == PAYMENT_ANOMALY)
    return {p["payment"] for condition in among(session, Alert.loan_id, loan_ids)
            for e in session.scalars(query.where(condition)) for p in e.get("payments", ())}


def _payment_evidence(payment: PaymentRow, finding: PaymentFinding) -> dict[str, Any]:
    return {"payment": payment.external_id, "paid_on": payment.paid_on.isoformat(),
            "amount_fen": payment.amount, "channel": payment.channel,
            **({"payer_account": payment.payer_account, "payer_name": payment.payer_name}
               if payment.payer_account or payment.payer_name else {}),
            "rules": list(finding.reasons), **({"details": finding.details}
                                               if finding.details else {})}  # fmt: skip


def _record(
    session: Session, loan: LoanRow, found: list[tuple[PaymentRow, PaymentFinding]], at: datetime,
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
            started_at=min(_moment(p, loan) for p, _ in found), raised_at=at, updated_at=at,
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
