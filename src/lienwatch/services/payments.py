"""Payments as acts: each posting and reversal goes into the ledger with the change."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from lienwatch.ledger.entries import EntryKind
from lienwatch.services.ledger import record
from lienwatch.store.repositories import PaymentRepository
from lienwatch.store.tables import Loan, Payment


def post_payment(
    session: Session, *, loan: Loan, external_id: str, paid_on: date, amount: int,
    channel: str, by: str | None, at: datetime, payer_account: str | None = None,
    payer_name: str | None = None,
) -> tuple[Payment, bool]:  # fmt: skip
    """Post a payment once per ``external_id`` (a retry with the same loan and amount is
    harmless) and record the posting in the ledger; returns the payment and whether it is
    new (a retry records nothing); ``at`` is when it was received, its moment (the
    abnormal-payment rules read its hour). ``payer_account`` and ``payer_name``, who paid as
    the bank reports it, are stored with the payment (the abnormal-payment rules read them)
    but kept out of the ledger: a name in an append-only log could never be erased."""
    payment, new = PaymentRepository(session).record(
        loan=loan, external_id=external_id, paid_on=paid_on, amount=amount, channel=channel,
        payer_account=payer_account, payer_name=payer_name, at=at,
    )  # fmt: skip
    if new:
        record(session, EntryKind.PAYMENT_POSTED, subject=loan.ref, at=at, by=by,
               data=posted_entry(external_id=external_id, amount=amount, paid_on=paid_on,
                                 channel=channel))  # fmt: skip
    return payment, new


def posted_entry(*, external_id: str, amount: int, paid_on: date, channel: str) -> dict[str, Any]:
    """The ledger facts of a payment posted."""
    return {"payment": external_id, "amount_fen": amount, "paid_on": paid_on.isoformat(),
            "channel": channel}  # fmt: skip


def reverse_payment(
    session: Session, *, external_id: str, reason: str, by: str | None, at: datetime
) -> tuple[Payment, bool]:
    """Reverse payment ``external_id`` (it bounced) and record the reversal in the ledger;
    returns the payment and whether this call reversed it (a second call changes nothing
    and records nothing)."""
    payment, reversed_now = PaymentRepository(session).reverse(
        external_id=external_id, reason=reason, at=at
    )
    if reversed_now:
        record(session, EntryKind.PAYMENT_REVERSED, subject=payment.loan.ref, at=at, by=by,
               data={"payment": external_id, "amount_fen": payment.amount,
                     "paid_on": payment.paid_on.isoformat(), "reason": reason.strip()})  # fmt: skip
    return payment, reversed_now
