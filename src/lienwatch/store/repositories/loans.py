"""Loans and their payments."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lienwatch.domain.delinquency import MANUAL_STATUSES, LoanStatus
from lienwatch.domain.schedule import regular_installment
from lienwatch.errors import ConflictError, NotFoundError
from lienwatch.store.db import chunks, savepoint
from lienwatch.store.tables import (
    Installment,
    Loan,
    Payment,
)


class LoanRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, loan: Loan, installments: Iterable[Installment]) -> Loan:
        """Add a loan with its schedule; an existing ``ref`` is a :class:`ConflictError`."""
        with self.session.no_autoflush:
            taken = self.session.scalar(select(Loan.id).where(Loan.ref == loan.ref))
        if taken is not None:
            raise ConflictError(f"loan {loan.ref!r} already exists")
        loan.installments = list(installments)
        self.session.add(loan)
        self.session.flush()
        return loan

    def get_by_ref(self, ref: str) -> Loan:
        loan = self.session.scalar(select(Loan).where(Loan.ref == ref))
        if loan is None:
            raise NotFoundError(f"loan {ref!r} does not exist")
        return loan

    def set_operator_status(self, loan: Loan, status: LoanStatus | str | None) -> None:
        """Record the terminal status an operator decided (repossessed, settled, written-off),
        which the nightly run keeps over the derived one; ``None`` hands the status back to
        the run. Raises :class:`ValueError` naming ``status`` for any other status."""
        if status is not None:
            if status not in MANUAL_STATUSES:
                allowed = ", ".join(sorted(MANUAL_STATUSES))
                raise ValueError(f"status: {status!r} cannot be set by hand; one of {allowed}")
            loan.status = LoanStatus(status).value
        loan.operator_status = None if status is None else LoanStatus(status).value
        self.session.flush()

    def count_by_status(self) -> dict[str, int]:
        rows = self.session.execute(select(Loan.status, func.count()).group_by(Loan.status))
        return {status: count for status, count in rows.all()}

    def due_between(self, start: date, end: date) -> list[Installment]:
        """Installments falling due in ``[start, end]``, in due-date order."""
        query = (
            select(Installment)
            .where(Installment.due_date.between(start, end))
            .order_by(Installment.due_date, Installment.loan_id, Installment.n)
        )
        return list(self.session.scalars(query))

    def regular_installments(self, loan_ids: Iterable[int] | None = None) -> dict[int, int]:
        """Each loan's regular installment in fen (:func:`regular_installment`: the second
        installment's principal, interest and fee, or the first); every loan when ``loan_ids``
        is None."""
        query = select(Installment.loan_id,
                       Installment.principal + Installment.interest + Installment.fee
                       ).where(Installment.n <= 2).order_by(Installment.loan_id, Installment.n)
        dues: dict[int, list[int]] = {}
        for chunk in ([None] if loan_ids is None else chunks(list(loan_ids))):
            rows = query if chunk is None else query.where(Installment.loan_id.in_(chunk))
            for loan_id, due in self.session.execute(rows):
                dues.setdefault(loan_id, []).append(int(due))
        return {loan_id: regular_installment(amounts) for loan_id, amounts in dues.items()}


class PaymentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self,
        *,
        loan: Loan,
        external_id: str,
        paid_on: date,
        amount: int,
        channel: str = "bank_debit",
        payer_account: str | None = None,
        payer_name: str | None = None,
        at: datetime | None = None,
    ) -> tuple[Payment, bool]:
        """Store a payment once per ``external_id``; return it and whether it is new.
        ``payer_account`` and ``payer_name`` say who paid when the bank reports it; ``at``,
        when it reached lienwatch (its ``received_at`` and ``paid_at``; default: the clock).

        The same id with the same loan and amount is a harmless retry. The same id with anything
        else is a :class:`ConflictError`: two different payments cannot share a bank reference.
        """
        if amount <= 0:
            raise ValueError(f"amount: must be positive, got {amount} fen")
        if paid_on < loan.disbursed_on:
            raise ValueError(f"paid_on: {paid_on} is before disbursement on {loan.disbursed_on}")
        with self.session.no_autoflush:
            existing = self.session.scalar(
                select(Payment).where(Payment.external_id == external_id)
            )
        if existing is None:
            payment = Payment(
                external_id=external_id,
                loan_id=loan.id,
                paid_on=paid_on,
                amount=amount,
                channel=channel,
                payer_account=payer_account or None,
                payer_name=payer_name or None,
                **({"received_at": at, "paid_at": at} if at is not None else {}),
            )
            try:
                with savepoint(self.session):
                    self.session.add(payment)
            except IntegrityError:  # a concurrent writer stored the same id first
                existing = self.session.scalar(
                    select(Payment).where(Payment.external_id == external_id)
                )
            else:
                return payment, True
        assert existing is not None
        if existing.loan_id != loan.id or existing.amount != amount or existing.paid_on != paid_on:
            raise ConflictError(
                f"payment {external_id!r} already recorded as {existing.amount} fen on "
                f"{existing.paid_on} for loan id {existing.loan_id}; refusing a different one"
            )
        return existing, False

    def reverse(self, *, external_id: str, reason: str, at: datetime) -> tuple[Payment, bool]:
        """Mark payment ``external_id`` reversed (a bounced payment) at ``at``; return it and
        whether this call reversed it.

        Idempotent: a payment already reversed is returned unchanged with ``False`` (the first
        reversal's time and reason stand). The nightly run ignores reversed payments, so its
        next run replays the loan as if the payment had never arrived. Raises
        :class:`NotFoundError` for an unknown id and :class:`ValueError` naming ``reason``
        (empty or over 200 characters) or ``at`` (without a time zone).
        """
        reason = reason.strip()
        if not reason or len(reason) > 200:
            raise ValueError(f"reason: must say why, in 1–200 characters, got {reason!r}")
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"at: must carry a time zone, got {at.isoformat()}")
        payment = self.session.scalar(
            select(Payment).where(Payment.external_id == external_id).with_for_update()
        )
        if payment is None:
            raise NotFoundError(f"payment {external_id!r} does not exist")
        if payment.reversed_at is not None:
            return payment, False
        payment.reversed_at = at
        payment.reversal_reason = reason
        self.session.flush()
        return payment, True

