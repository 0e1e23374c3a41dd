"""Loans, their borrowers and cars, schedules, payments and the nightly run's records."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lienwatch import clock
from lienwatch.store.tables.base import Base, BigKey

if TYPE_CHECKING:
    from lienwatch.store.tables.telematics import Device


class Borrower(Base):
    """A person or a company; a fleet borrower holds many vehicles and loans."""

    __tablename__ = "borrowers"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # person | company
    name: Mapped[str] = mapped_column(String(200))
    id_number: Mapped[str] = mapped_column(String(40))  # PII: resident id or credit code
    phone: Mapped[str] = mapped_column(String(32), index=True)  # PII; indexed for ring search
    email: Mapped[str | None] = mapped_column(String(200))  # PII
    address: Mapped[str] = mapped_column(String(400))  # PII
    city: Mapped[str] = mapped_column(String(80))
    province_code: Mapped[str] = mapped_column(String(2))  # GB/T 2260
    home_lat: Mapped[float | None] = mapped_column(Float)
    home_lon: Mapped[float | None] = mapped_column(Float)
    time_zone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    vehicles: Mapped[list[Vehicle]] = relationship(back_populates="borrower")
    loans: Mapped[list[Loan]] = relationship(back_populates="borrower")


class Vehicle(Base):
    __tablename__ = "vehicles"

    id: Mapped[int] = mapped_column(primary_key=True)
    vin: Mapped[str] = mapped_column(String(17), unique=True)
    plate: Mapped[str] = mapped_column(String(16), index=True)
    make: Mapped[str] = mapped_column(String(60))
    model: Mapped[str] = mapped_column(String(60))
    energy: Mapped[str] = mapped_column(String(8), default="ice")  # ice | nev
    condition: Mapped[str] = mapped_column(String(8), default="new")  # new | used
    purchase_price: Mapped[int] = mapped_column(BigInteger)  # fen
    purchase_date: Mapped[date] = mapped_column(Date)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    # the lender-defined permitted region (a name of [monitor] regions_file) the monitor's
    # left_region judges the vehicle by; None: the loan's booked province
    permitted_area: Mapped[str | None] = mapped_column(String(80), default=None)

    borrower: Mapped[Borrower] = relationship(back_populates="vehicles")
    devices: Mapped[list[Device]] = relationship(back_populates="vehicle")


_OPERATOR_SET = text("operator_status IS NOT NULL")
_PAST_DUE = text("dpd > 0")


class Loan(Base):
    __tablename__ = "loans"
    __table_args__ = (
        # the loans an operator closed by hand: the follow-up tick resolves their triggers
        Index("ix_loans_operator_set", "id", sqlite_where=_OPERATOR_SET,
              postgresql_where=_OPERATOR_SET),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(40), unique=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrowers.id"), index=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"), index=True)
    product: Mapped[str] = mapped_column(String(40))
    principal: Mapped[int] = mapped_column(BigInteger)  # fen
    annual_rate: Mapped[Decimal]
    term_months: Mapped[int] = mapped_column(SmallInteger)
    method: Mapped[str] = mapped_column(String(20))  # annuity | equal-principal | interest-only
    day_count: Mapped[str] = mapped_column(String(8), default="30/360")
    upfront_fee: Mapped[int] = mapped_column(BigInteger, default=0)  # fen
    fee_financed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    disbursed_on: Mapped[date] = mapped_column(Date)
    maturity_on: Mapped[date] = mapped_column(Date)
    time_zone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    booked_province: Mapped[str] = mapped_column(String(2))  # GB/T 2260
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    # derived by the nightly run, or the operator's status when one is set
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    # repossessed | settled | written-off, set by an operator: the run keeps it
    operator_status: Mapped[str | None] = mapped_column(String(16))
    # the pre-loan decision's scorecard points and grade (A-E), when the book knows them
    score: Mapped[int | None] = mapped_column(Integer)
    grade: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    borrower: Mapped[Borrower] = relationship(back_populates="loans")
    vehicle: Mapped[Vehicle] = relationship()
    installments: Mapped[list[Installment]] = relationship(
        back_populates="loan", order_by="Installment.n", cascade="all, delete-orphan"
    )
    payments: Mapped[list[Payment]] = relationship(
        back_populates="loan", order_by="Payment.paid_on"
    )


class LoanSnapshot(Base):
    """A loan's servicing figures at the end of one business day (from the nightly run).

    Derived data: re-running a day replaces its snapshots. Roll rates and vintage curves are
    computed from them.
    """

    __tablename__ = "loan_snapshots"
    __table_args__ = (
        UniqueConstraint("loan_id", "as_of"),
        # the coverage check at every tick: the day's past-due loans, in order
        Index("ix_loan_snapshots_past_due", "as_of", "loan_id", sqlite_where=_PAST_DUE,
              postgresql_where=_PAST_DUE),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(BigKey, primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    as_of: Mapped[date] = mapped_column(Date, index=True)
    dpd: Mapped[int] = mapped_column(Integer)
    bucket: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    outstanding_principal: Mapped[int] = mapped_column(BigInteger)
    overdue_principal: Mapped[int] = mapped_column(BigInteger)
    overdue_interest: Mapped[int] = mapped_column(BigInteger)
    penalty_accrued: Mapped[int] = mapped_column(BigInteger)
    fees_due: Mapped[int] = mapped_column(BigInteger)
    payoff: Mapped[int] = mapped_column(BigInteger)
    credit: Mapped[int] = mapped_column(BigInteger)
    next_due_on: Mapped[date | None] = mapped_column(Date)
    collateral_value: Mapped[int] = mapped_column(BigInteger)
    ead: Mapped[int] = mapped_column(BigInteger)
    recoverable: Mapped[int] = mapped_column(BigInteger)
    unsecured: Mapped[int] = mapped_column(BigInteger)
    ltv_bps: Mapped[int] = mapped_column(Integer)
    over_ltv_cap: Mapped[bool] = mapped_column(Boolean)


class BucketChange(Base):
    """Append-only delinquency history: the day a loan entered a bucket."""

    __tablename__ = "bucket_history"
    __table_args__ = (UniqueConstraint("loan_id", "changed_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    changed_on: Mapped[date] = mapped_column(Date)
    from_bucket: Mapped[str | None] = mapped_column(String(8))  # None: first observation
    to_bucket: Mapped[str] = mapped_column(String(8))
    dpd: Mapped[int] = mapped_column(Integer)


class Event(Base):
    """Outbox of business events (``bucket_changed`` …) for the follow-up engine to consume.

    ``key`` is the idempotency key: producing the same event twice stores it once.
    """

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigKey, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"), index=True)
    occurred_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    consumed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Installment(Base):
    """One scheduled installment: the contract. What was paid is derived from payments."""

    __tablename__ = "installments"
    __table_args__ = (UniqueConstraint("loan_id", "n"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    n: Mapped[int] = mapped_column(SmallInteger)
    due_date: Mapped[date] = mapped_column(Date, index=True)
    principal: Mapped[int] = mapped_column(BigInteger)
    interest: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger, default=0)

    loan: Mapped[Loan] = relationship(back_populates="installments")


class Payment(Base):
    """A payment received; ``external_id`` is the idempotency key from the bank or channel."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(80), unique=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    paid_on: Mapped[date] = mapped_column(Date)  # value date, loan-local
    amount: Mapped[int] = mapped_column(BigInteger)  # fen
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    channel: Mapped[str] = mapped_column(String(20), default="bank_debit")
    # Who paid, as the bank or channel reports it (None: not reported, read as the borrower)
    payer_account: Mapped[str | None] = mapped_column(String(64), index=True)
    payer_name: Mapped[str | None] = mapped_column(String(200))  # PII
    reversed_at: Mapped[datetime | None]
    reversal_reason: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(default=clock.now)
    # The moment it was paid: as the file gives it, or when it reached lienwatch (posted
    # live); None for an imported payment of which only the value date is known (the hour
    # rules of the abnormal-payment scan leave it out: its hour is not the borrower's).
    paid_at: Mapped[datetime | None] = mapped_column(default=clock.now)

    loan: Mapped[Loan] = relationship(back_populates="payments")

