"""Payments as acts: each posting and reversal goes into the ledger with the change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from lienwatch.ledger.entries import EntryKind
from lienwatch.services.ledger import record
from lienwatch.store.repositories import PaymentRepository
from lienwatch.store.tables import Payment


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
