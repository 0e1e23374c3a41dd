"""The servicing book on the store: read it as arrays for the nightly run, write what the run
found (snapshots, bucket history, events, statuses), and read the stored runs back.

Reading and writing are separate so the caller decides the transaction: the nightly run
(:mod:`lienwatch.services.servicing`) runs :func:`load_book`,
:func:`lienwatch.servicing.portfolio.run_portfolio` and :func:`record_run` in one transaction,
so snapshots, bucket history, events and loan statuses change together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
from sqlalchemy import String, and_, delete, func, insert, select, type_coerce, update
from sqlalchemy.orm import Session

from lienwatch.domain.collateral import VehicleClass
from lienwatch.domain.schedule import DayCount, Method
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.servicing.portfolio import (
    STATUS_CODES,
    VEHICLE_CODES,
    LoanBook,
    PaymentArrays,
    PortfolioResult,
    day_number,
    from_day_number,
)
from lienwatch.servicing.schedules import DAY_COUNT_CODES, METHOD_CODES, rate_arrays
from lienwatch.store.db import read_rows
from lienwatch.store.repositories import insert_ignoring_duplicates
from lienwatch.store.tables import BucketChange, Event, Loan, LoanSnapshot, Payment, Vehicle

_STATUS_INDEX = {status.value: i for i, status in enumerate(STATUS_CODES)}


@dataclass(frozen=True, slots=True)
class StoredBook:
    """The book as the vectorized run needs it, with the store's loan keys alongside."""

    book: LoanBook
    payments: PaymentArrays
    loan_key: np.ndarray  # int64 loans.id, aligned with the book
    status: np.ndarray  # object: loans.status before the run
    previous_bucket: np.ndarray  # int64 index into the product's buckets, -1 for none
    manual_status: np.ndarray  # int64 index into STATUS_CODES, -1 for none


@dataclass(frozen=True, slots=True)
class RunCounts:
    loans: int
    bucket_changes: int
    status_changes: int


def load_book(session: Session, catalogue: ProductCatalogue, *, as_of: date) -> StoredBook:
    """Every loan disbursed by ``as_of`` with its vehicle, payments (not reversed), the
    bucket of its last snapshot before ``as_of`` and its operator status, if any."""
    rows = read_rows(
        session,
        select(
            Loan.id, Loan.ref, Loan.principal, Loan.upfront_fee, Loan.fee_financed,
            Loan.annual_rate, Loan.term_months, Loan.method, Loan.day_count, Loan.disbursed_on,
            Loan.product, Loan.status, Loan.operator_status, Vehicle.purchase_price,
            Vehicle.purchase_date, Vehicle.energy, Vehicle.condition,
        )
        .join(Vehicle, Vehicle.id == Loan.vehicle_id)
        .where(Loan.disbursed_on <= as_of)
        .order_by(Loan.id),
    )  # fmt: skip
    codes = sorted({row.product for row in rows})
    products = tuple(catalogue.get(code) for code in codes)
    product_index = {code: i for i, code in enumerate(codes)}
    rate_num, rate_den = rate_arrays([Fraction(Decimal(row.annual_rate)) for row in rows])
    loan_key = np.array([row.id for row in rows], dtype=np.int64)
    book = LoanBook(
        loan_id=np.array([row.ref for row in rows], dtype=object),
        principal=np.array(
            [row.principal + (row.upfront_fee if row.fee_financed else 0) for row in rows],
            dtype=np.int64,
        ),
        rate_num=rate_num,
        rate_den=rate_den,
        term=np.array([row.term_months for row in rows], dtype=np.int64),
        method=np.array([METHOD_CODES.index(Method(row.method)) for row in rows], dtype=np.int8),
        start=np.array([day_number(row.disbursed_on) for row in rows], dtype=np.int64),
        day_count=np.array(
            [DAY_COUNT_CODES.index(DayCount(row.day_count)) for row in rows], dtype=np.int8
        ),
        product=np.array([product_index[row.product] for row in rows], dtype=np.int64),
        price=np.array([row.purchase_price for row in rows], dtype=np.int64),
        purchased_on=np.array([day_number(row.purchase_date) for row in rows], dtype=np.int64),
        vehicle_class=np.array(
            [VEHICLE_CODES.index(VehicleClass.of(row.energy, row.condition)) for row in rows],
            dtype=np.int8,
        ),
        products=products,
    )
    status = np.array([row.status for row in rows], dtype=object)
    manual = np.array(
        [-1 if row.operator_status is None else _STATUS_INDEX[row.operator_status]
         for row in rows], dtype=np.int64,
    )  # fmt: skip
    return StoredBook(
        book=book,
        payments=_payments(session, loan_key, as_of),
        loan_key=loan_key,
        status=status,
        previous_bucket=_previous_buckets(session, book, loan_key, as_of),
        manual_status=manual,
    )


def book_as_of(session: Session, stored: StoredBook, as_of: date) -> StoredBook:
    """``stored`` (read by :func:`load_book` as of a day not before ``as_of``, its loans,
    payments and operator statuses unchanged since) as :func:`load_book` reads it as of
    ``as_of``: the loans disbursed by then, their payments up to then, and their statuses and
    the buckets of their last snapshots before ``as_of`` read afresh (a run in between may
    have changed them)."""
    kept = np.flatnonzero(stored.book.start <= day_number(as_of))
    position = np.full(len(stored.loan_key), -1, dtype=np.int64)
    position[kept] = np.arange(len(kept))
    payments = stored.payments
    paid = (payments.day <= day_number(as_of)) & (position[payments.loan] >= 0)
    book = LoanBook(**{name: getattr(stored.book, name)[kept] for name in _BOOK_ARRAYS},
                    products=stored.book.products)  # fmt: skip
    loan_key = stored.loan_key[kept]
    payments = PaymentArrays(position[payments.loan[paid]], payments.day[paid],
                             payments.amount[paid])
    status = dict(read_rows(session, select(Loan.id, Loan.status)))
    return StoredBook(
        book=book,
        payments=payments,
        loan_key=loan_key,
        status=np.array([status[key] for key in loan_key.tolist()], dtype=object),
        previous_bucket=_previous_buckets(session, book, loan_key, as_of),
        manual_status=stored.manual_status[kept],
    )


_BOOK_ARRAYS = tuple(name for name in LoanBook.__slots__ if name != "products")


def _payments(session: Session, loan_key: np.ndarray, as_of: date) -> PaymentArrays:
    """The payments of the loans ``loan_key`` (increasing) up to ``as_of``, as arrays. The
    days are read as the driver gives them (ISO text on SQLite, dates on PostgreSQL) and
    converted by NumPy at once: a nightly run reads every payment of the book."""
    rows = read_rows(session, select(
        Payment.loan_id, type_coerce(Payment.paid_on, String), Payment.amount)
        .where(Payment.reversed_at.is_(None), Payment.paid_on <= as_of)
        .order_by(Payment.loan_id, Payment.paid_on))  # fmt: skip
    loans, days, amounts = zip(*rows, strict=True) if rows else ((), (), ())
    loan = np.array(loans, dtype=np.int64)
    position = np.searchsorted(loan_key, loan)
    kept = position < len(loan_key)
    kept[kept] = loan_key[position[kept]] == loan[kept]  # loans disbursed by as_of
    return PaymentArrays(
        loan=position[kept],
        day=np.array(days, dtype="datetime64[D]")[kept].astype(np.int64),
        amount=np.array(amounts, dtype=np.int64)[kept],
    )


def _previous_buckets(
    session: Session, book: LoanBook, loan_key: np.ndarray, as_of: date
) -> np.ndarray:
    latest = (
        select(LoanSnapshot.loan_id, func.max(LoanSnapshot.as_of).label("as_of"))
        .where(LoanSnapshot.as_of < as_of)
        .group_by(LoanSnapshot.loan_id)
        .subquery()
    )
    rows = read_rows(
        session,
        select(LoanSnapshot.loan_id, LoanSnapshot.bucket).join(
            latest,
            and_(LoanSnapshot.loan_id == latest.c.loan_id, LoanSnapshot.as_of == latest.c.as_of),
        ),
    )
    last = {row.loan_id: row.bucket for row in rows}
    previous = np.full(len(loan_key), -1, dtype=np.int64)
    for i, key in enumerate(loan_key.tolist()):
        if key in last:
            names = book.products[int(book.product[i])].buckets.names
            previous[i] = names.index(last[key]) if last[key] in names else -1
    return previous


def record_run(session: Session, stored: StoredBook, result: PortfolioResult) -> RunCounts:
    """Store a run: the day's snapshots (replacing a previous run of the same day), the
    bucket changes (append-only) with their ``bucket_changed`` events, and loan statuses."""
    book, keys = stored.book, stored.loan_key
    session.execute(
        delete(LoanSnapshot).where(LoanSnapshot.as_of == result.as_of, LoanSnapshot.loan_id.in_(
            keys.tolist()))
    )  # fmt: skip
    if len(keys):
        session.execute(insert(LoanSnapshot.__table__), _snapshot_rows(stored, result))  # Core
    key_of = dict(zip(book.loan_id.tolist(), keys.tolist(), strict=True))
    changes = [
        {
            "loan_id": key_of[e.loan], "changed_on": e.on, "from_bucket": e.from_bucket,
            "to_bucket": e.to_bucket, "dpd": e.dpd,
        }
        for e in result.events
    ]  # fmt: skip
    stored_changes = insert_ignoring_duplicates(session, BucketChange.__table__, changes)
    occurred = datetime.combine(result.as_of, time(), tzinfo=UTC)
    insert_ignoring_duplicates(
        session,
        Event.__table__,
        [
            {
                "kind": "bucket_changed", "key": f"bucket_changed:{e.loan}:{e.on.isoformat()}",
                "loan_id": key_of[e.loan], "occurred_at": occurred, "payload": e.as_dict(),
            }
            for e in result.events
        ],
    )  # fmt: skip
    new_status = np.array([STATUS_CODES[i].value for i in result.status], dtype=object)
    moved = np.flatnonzero(new_status != stored.status)
    if moved.size:
        session.execute(  # ORM bulk UPDATE by primary key
            update(Loan), [{"id": int(keys[i]), "status": new_status[i]} for i in moved]
        )
    return RunCounts(loans=len(keys), bucket_changes=stored_changes, status_changes=int(moved.size))


def _snapshot_rows(stored: StoredBook, result: PortfolioResult) -> list[dict[str, Any]]:
    book = stored.book
    bucket_names = [
        product.buckets.names[b]
        for product, b in zip(
            (book.products[p] for p in book.product.tolist()), result.bucket.tolist(), strict=True
        )
    ]
    columns = {
        name: getattr(result, name).tolist()
        for name in (
            "dpd", "outstanding_principal", "overdue_principal", "overdue_interest",
            "penalty_accrued", "fees_due", "payoff", "credit", "collateral_value", "ead",
            "recoverable", "unsecured", "ltv_bps",
        )
    }  # fmt: skip
    next_due = [None if d < 0 else from_day_number(d) for d in result.next_due.tolist()]
    over_cap = [bool(v) for v in result.over_cap.tolist()]
    status = [STATUS_CODES[i].value for i in result.status.tolist()]
    return [
        {
            "loan_id": key, "as_of": result.as_of, "bucket": bucket_names[i],
            "status": status[i], "next_due_on": next_due[i], "over_ltv_cap": over_cap[i],
            **{name: values[i] for name, values in columns.items()},
        }
        for i, key in enumerate(stored.loan_key.tolist())
    ]  # fmt: skip


def last_run_day(session: Session, *, through: date | None = None) -> date | None:
    """The latest business day whose nightly run is stored (up to ``through`` when given)."""
    query = select(func.max(LoanSnapshot.as_of))
    if through is not None:
        query = query.where(LoanSnapshot.as_of <= through)
    return session.scalar(query)


def unsecured_exposures(session: Session, *, as_of: date) -> dict[str, int]:
    """Loan ref -> unsecured exposure in fen from the snapshots of ``as_of``."""
    rows = session.execute(
        select(Loan.ref, LoanSnapshot.unsecured)
        .join(LoanSnapshot, LoanSnapshot.loan_id == Loan.id)
        .where(LoanSnapshot.as_of == as_of)
    ).all()
    return {ref: int(unsecured) for ref, unsecured in rows}
