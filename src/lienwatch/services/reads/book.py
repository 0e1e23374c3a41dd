"""The book as the API reads it: loans (terms, schedule, state as of a date, payments),
vehicles; each through the viewer's scope."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from lienwatch.access.masking import mask_payer
from lienwatch.access.principal import Viewer
from lienwatch.domain.delinquency import LoanStatus
from lienwatch.domain.schedule import DayCount, Method
from lienwatch.errors import NotFoundError
from lienwatch.services.reads.figures import latest_snapshots, snapshot_figures
from lienwatch.services.reads.people import disclosed
from lienwatch.services.reads.visibility import loan_condition, loan_id_of
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.servicing.engine import loan_state
from lienwatch.servicing.product import LoanTerms
from lienwatch.servicing.product import Payment as Received
from lienwatch.store.tables import Borrower, Installment, Loan, Payment, Vehicle


def loans(
    session: Session, viewer: Viewer, *, limit: int, after: str | None = None,
    status: str | None = None, borrower: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The loans the viewer reaches by reference, after ``after``, with their latest figures."""
    query = (select(Loan, Borrower.ref).join(Borrower, Borrower.id == Loan.borrower_id)
             .where(loan_condition(viewer)).order_by(Loan.ref).limit(limit))  # fmt: skip
    if after is not None:
        query = query.where(Loan.ref > after)
    if status is not None:
        query = query.where(Loan.status == status)
    if borrower is not None:
        query = query.where(Borrower.ref == borrower)
    rows = session.execute(query).all()
    snapshots = latest_snapshots(session, [loan.id for loan, _ in rows])
    return [{**loan_summary(loan), "borrower": ref, **snapshot_figures(snapshots.get(loan.id))}
            for loan, ref in rows]  # fmt: skip


def loan_terms(session: Session, viewer: Viewer, ref: str) -> dict[str, Any]:
    """The loan's contract and its borrower and vehicle by reference."""
    loan = session.get_one(Loan, loan_id_of(session, viewer, ref))
    vehicle = session.get_one(Vehicle, loan.vehicle_id)
    borrower = session.get_one(Borrower, loan.borrower_id)
    return {**loan_summary(loan), "borrower": borrower.ref, "vin": vehicle.vin,
            "annual_rate": str(loan.annual_rate), "method": loan.method,
            "day_count": loan.day_count, "upfront_fee_fen": loan.upfront_fee,
            "fee_financed": loan.fee_financed, "maturity_on": loan.maturity_on,
            "booked_province": loan.booked_province}  # fmt: skip


def schedule(session: Session, viewer: Viewer, ref: str) -> list[dict[str, Any]]:
    """The contractual installments."""
    loan_id = loan_id_of(session, viewer, ref)
    rows = session.scalars(select(Installment).where(Installment.loan_id == loan_id)
                           .order_by(Installment.n))  # fmt: skip
    return [{"n": i.n, "due_date": i.due_date, "principal_fen": i.principal,
             "interest_fen": i.interest, "fee_fen": i.fee} for i in rows]  # fmt: skip


def payments(
    session: Session, viewer: Viewer, ref: str, *, at: datetime, limit: int | None = None,
    after: tuple[date, str] | None = None, reveal: bool = False, client: str = "",
    why: str = "",
) -> list[dict[str, Any]]:  # fmt: skip
    """Every payment received, reversed ones included, by value date (then reference):
    ``limit`` of them after the payment keyed (value date, reference) ``after``; who paid
    masked, in clear with ``reveal`` as a borrower's numbers are (:func:`disclosed`)."""
    loan_id = loan_id_of(session, viewer, ref)
    clear = disclosed(session, viewer, reveal=reveal, subject=f"loan:{ref}:payments",
                      fields=["payer_account", "payer_name"], at=at, client=client, why=why)
    query = (select(Payment).where(Payment.loan_id == loan_id)
             .order_by(Payment.paid_on, Payment.external_id).limit(limit))  # fmt: skip
    if after is not None:
        query = query.where(or_(Payment.paid_on > after[0], and_(
            Payment.paid_on == after[0], Payment.external_id > after[1])))  # fmt: skip
    return [payment_view(p, clear=clear) for p in session.scalars(query)]


def payment_view(p: Payment, *, clear: bool = False) -> dict[str, Any]:
    """A payment: who paid (a third party's name and account, often) masked unless
    ``clear`` (a reveal :func:`payments` audited)."""
    account, name = ((p.payer_account, p.payer_name) if clear
                     else mask_payer(p.payer_account, p.payer_name))  # fmt: skip
    return {"external_id": p.external_id, "paid_on": p.paid_on, "amount_fen": p.amount,
            "channel": p.channel, "payer_account": account, "payer_name": name,
            "received_at": p.received_at,
            "reversed_at": p.reversed_at, "reversal_reason": p.reversal_reason}  # fmt: skip


def state(
    session: Session, viewer: Viewer, ref: str, *, as_of: date, catalogue: ProductCatalogue
) -> dict[str, Any]:
    """The loan's state as of ``as_of`` replayed exactly from its terms and the payments
    not reversed (the servicing engine's ``loan_state``)."""
    loan = session.get_one(Loan, loan_id_of(session, viewer, ref))
    if as_of < loan.disbursed_on:
        raise ValueError(f"as_of: {as_of} is before the loan's disbursement on "
                         f"{loan.disbursed_on}")  # fmt: skip
    terms = LoanTerms(loan.ref, loan.principal, loan.annual_rate, loan.term_months,
                      Method(loan.method), loan.disbursed_on, day_count=DayCount(loan.day_count),
                      upfront_fee=loan.upfront_fee, fee_financed=loan.fee_financed)  # fmt: skip
    received = [Received(p.external_id, p.paid_on, p.amount) for p in session.scalars(
        select(Payment).where(Payment.loan_id == loan.id, Payment.reversed_at.is_(None)))]
    manual = LoanStatus(loan.operator_status) if loan.operator_status else None
    figures = loan_state(terms, catalogue.get(loan.product), received, as_of,
                         manual_status=manual)  # fmt: skip
    return {"loan": loan.ref, "as_of": as_of, "dpd": figures.dpd, "bucket": figures.bucket,
            "status": figures.status.value,
            "outstanding_principal_fen": figures.outstanding_principal,
            "overdue_principal_fen": figures.overdue_principal,
            "overdue_interest_fen": figures.overdue_interest,
            "penalty_accrued_fen": figures.penalty_accrued, "fees_due_fen": figures.fees_due,
            "next_due_date": figures.next_due_date, "payoff_fen": figures.payoff_amount,
            "credit_fen": figures.credit}  # fmt: skip


def loan_of_viewer(session: Session, viewer: Viewer, ref: str) -> Loan:
    """Loan ``ref`` as a row, if the viewer reaches it (for the write verbs)."""
    return session.get_one(Loan, loan_id_of(session, viewer, ref))


def vehicle_view(session: Session, viewer: Viewer, vin: str) -> dict[str, Any]:
    """A vehicle the viewer reaches (through a loan on it) and its latest loan's figures."""
    vehicle = session.scalar(select(Vehicle).where(Vehicle.vin == vin))
    loan = None if vehicle is None else session.scalar(
        select(Loan).where(Loan.vehicle_id == vehicle.id, loan_condition(viewer))
        .order_by(Loan.disbursed_on.desc()).limit(1))  # fmt: skip
    if vehicle is None or loan is None:
        raise NotFoundError(f"vin: no vehicle {vin!r}")
    return {"vin": vehicle.vin, "plate": vehicle.plate, "make": vehicle.make,
            "model": vehicle.model, "energy": vehicle.energy, "condition": vehicle.condition,
            "purchase_price_fen": vehicle.purchase_price, "purchase_date": vehicle.purchase_date,
            "loan": loan.ref,
            **snapshot_figures(latest_snapshots(session, [loan.id]).get(loan.id))}  # fmt: skip


def loan_summary(loan: Loan) -> dict[str, Any]:
    """A loan's terms as the read verbs show them."""
    return {"ref": loan.ref, "product": loan.product, "principal_fen": loan.principal,
            "term_months": loan.term_months, "status": loan.status,
            "disbursed_on": loan.disbursed_on, "time_zone": loan.time_zone}  # fmt: skip
