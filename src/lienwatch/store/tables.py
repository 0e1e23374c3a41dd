"""The tables of lienwatch (SQLAlchemy 2 typed declarative models).

Conventions: money columns are ``BigInteger`` fen; times are :class:`UTCDateTime`; due dates
are local calendar ``Date``s; business identifiers (loan ``ref``, ``vin``, device ``ident``)
are unique text next to an integer surrogate key that foreign keys use.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from lienwatch import clock
from lienwatch.store.types import ExactDecimal, UTCDateTime

# Explicit constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# A 64-bit key that is still SQLite's rowid alias (SQLite autoincrements only INTEGER keys).
BigKey = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        Decimal: ExactDecimal,
        dict[str, Any]: JSON,
    }


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

    borrower: Mapped[Borrower] = relationship(back_populates="vehicles")
    devices: Mapped[list[Device]] = relationship(back_populates="vehicle")


class Device(Base):
    """A GPS tracker. A vehicle carries at most one wired and one wireless device."""

    __tablename__ = "devices"
    __table_args__ = (
        # At most one bound device of each kind per vehicle (so at most two per vehicle).
        Index("uq_devices_vehicle_kind", "vehicle_id", "kind", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ident: Mapped[str] = mapped_column(String(20), unique=True)  # IMEI or terminal phone
    protocol: Mapped[str] = mapped_column(String(12))  # jt808 | gt06 | osmand
    kind: Mapped[str] = mapped_column(String(10))  # wired | wireless
    model: Mapped[str] = mapped_column(String(60), default="")
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("vehicles.id"))
    report_interval_s: Mapped[int] = mapped_column(Integer, default=3600)
    status: Mapped[str] = mapped_column(String(10), default="unknown")  # online|offline|unknown
    last_fix_at: Mapped[datetime | None]
    # JT/T 808 authentication code issued at registration (0x8100), checked on 0x0102.
    auth_code: Mapped[str | None] = mapped_column(String(64))
    # Connected without being known: positions are kept, nothing trusts them until bound.
    quarantined: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The HTTP ingest partner that alone may post for this device (None: any partner).
    partner: Mapped[str | None] = mapped_column(String(60))
    # The day the tracker was fitted: fixes dated before it are refused (None: unknown).
    fitted_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    vehicle: Mapped[Vehicle | None] = relationship(back_populates="devices")


class Loan(Base):
    __tablename__ = "loans"

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
    __table_args__ = (UniqueConstraint("loan_id", "as_of"),)

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
    reversed_at: Mapped[datetime | None]
    reversal_reason: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(default=clock.now)

    loan: Mapped[Loan] = relationship(back_populates="payments")


class Position(Base):
    """A GPS fix, unique per (device, fix time); ``archived`` marks a late, re-uploaded fix."""

    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("device_id", "fix_time"),)

    id: Mapped[int] = mapped_column(BigKey, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    fix_time: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=clock.now)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    speed_kmh: Mapped[float] = mapped_column(Float, default=0.0)
    course: Mapped[int] = mapped_column(SmallInteger, default=0)
    valid: Mapped[bool] = mapped_column(Boolean, default=True)
    alarms: Mapped[str] = mapped_column(String(200), default="")  # canonical names, ";"-joined
    archived: Mapped[bool] = mapped_column(Boolean, default=False)


class PositionConflict(Base):
    """A fix whose (device, fix time) was already stored with another position: kept as
    evidence (two sources reporting for one device), never silently dropped."""

    __tablename__ = "position_conflicts"

    id: Mapped[int] = mapped_column(BigKey, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    fix_time: Mapped[datetime]
    received_at: Mapped[datetime]
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    speed_kmh: Mapped[float] = mapped_column(Float)
    course: Mapped[int] = mapped_column(SmallInteger)
    valid: Mapped[bool] = mapped_column(Boolean)
    alarms: Mapped[str] = mapped_column(String(200))
    stored_lat: Mapped[float] = mapped_column(Float)  # the position stored first
    stored_lon: Mapped[float] = mapped_column(Float)


_OPEN_ALERT = text("status IN ('open', 'acknowledged')")
_OPEN_CASE = text("status <> 'closed'")


class Alert(Base):
    """A collateral alert; at most one open alert per vehicle and type."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "uq_alerts_open_vehicle_type",
            "vehicle_id",
            "type",
            unique=True,
            sqlite_where=_OPEN_ALERT,
            postgresql_where=_OPEN_ALERT,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(10))  # info | warning | critical
    status: Mapped[str] = mapped_column(String(16), default="open")
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"), index=True)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    province_code: Mapped[str | None] = mapped_column(String(2))
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    exposure: Mapped[int] = mapped_column(BigInteger, default=0)  # unsecured fen at risk
    status_by: Mapped[str | None] = mapped_column(String(80))
    status_at: Mapped[datetime | None]
    key: Mapped[str | None] = mapped_column(String(120), unique=True)  # the monitor's alert id
    raised_at: Mapped[datetime | None]  # when the monitor could first know
    updated_at: Mapped[datetime | None]
    repeats: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class Team(Base):
    """A team of agents and their supervisors (``users.team`` names it); strategies route
    agent steps to a team by name."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))


class User(Base):
    """Someone who signs in: an agent, supervisor, analyst, auditor or administrator."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # agent|supervisor|analyst|auditor|admin
    team: Mapped[str | None] = mapped_column(String(80))
    skills: Mapped[dict[str, Any]] = mapped_column(default=dict)  # languages, regions, field
    daily_capacity: Mapped[int] = mapped_column(Integer, default=60)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Case(Base):
    """A loan's follow-up case; at most one open case per loan."""

    __tablename__ = "cases"
    __table_args__ = (
        Index(
            "uq_cases_open_loan",
            "loan_id",
            unique=True,
            sqlite_where=_OPEN_CASE,
            postgresql_where=_OPEN_CASE,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    status: Mapped[str] = mapped_column(String(16), default="new")
    priority: Mapped[int] = mapped_column(BigInteger, default=0)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    opened_at: Mapped[datetime] = mapped_column(default=clock.now)
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(String(200))
    strategy: Mapped[str | None] = mapped_column(String(80))  # name@version
    arm: Mapped[str | None] = mapped_column(String(12))  # champion | challenger
    stratum: Mapped[str | None] = mapped_column(String(8), index=True)  # bucket when opened
    status_at: Mapped[datetime | None]
    hold: Mapped[str | None] = mapped_column(String(16))  # dispute | do_not_contact

    actions: Mapped[list[Action]] = relationship(
        back_populates="case", order_by="Action.performed_at"
    )


class Action(Base):
    """Something done on a case (a contact, a check, a status change), exactly once."""

    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(24))  # sms|voice|call|visit|gps_check|status|note
    performed_at: Mapped[datetime]
    performed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: automation
    outcome: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    case: Mapped[Case] = relationship(back_populates="actions")


_OPEN_TRIGGER = text("resolved_at IS NULL")


class Trigger(Base):
    """Something that needs following up on a case; ``source_key`` makes raising it idempotent.

    ``step`` is the next ladder step to perform, due at ``next_due_at`` and to be done by
    ``deadline_at`` (its SLA). ``first_deadline_at``/``first_action_at`` decide coverage.
    """

    __tablename__ = "triggers"
    __table_args__ = (
        Index("ix_triggers_open_deadline", "deadline_at", sqlite_where=_OPEN_TRIGGER,
              postgresql_where=_OPEN_TRIGGER),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(BigKey, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    source_key: Mapped[str] = mapped_column(String(160), unique=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    ladder: Mapped[str] = mapped_column(String(80))
    anchor_at: Mapped[datetime]
    opened_at: Mapped[datetime]
    step: Mapped[int] = mapped_column(SmallInteger, default=0)
    next_due_at: Mapped[datetime]
    deadline_at: Mapped[datetime]
    first_deadline_at: Mapped[datetime]
    first_action_at: Mapped[datetime | None]
    warned_at: Mapped[datetime | None]  # the watchdog escalated before the deadline
    breached_at: Mapped[datetime | None]
    breach_team: Mapped[str | None] = mapped_column(String(80))
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(String(80))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Task(Base):
    """An agent step waiting in a queue (calls, visits, reviews)."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(BigKey, primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)  # trigger:step:due, queued once
    trigger_id: Mapped[int] = mapped_column(ForeignKey("triggers.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    step: Mapped[int] = mapped_column(SmallInteger)
    channel: Mapped[str] = mapped_column(String(20))
    skill: Mapped[str] = mapped_column(String(8))  # phone | field
    team: Mapped[str | None] = mapped_column(String(80))  # None: any team
    due_at: Mapped[datetime]
    deadline_at: Mapped[datetime]
    priority: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(12), default="queued", index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    assigned_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]


class Promise(Base):
    """A promise to pay; kept or broken is decided from payments on its date."""

    __tablename__ = "promises"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id"))
    made_on: Mapped[date] = mapped_column(Date)
    promised_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(BigInteger)  # fen
    status: Mapped[str] = mapped_column(String(8), default="open", index=True)
    decided_at: Mapped[datetime | None]


class ContactAttempt(Base):
    """Every outbound contact the compliance guard decided: allowed or refused, and why."""

    __tablename__ = "contact_attempts"

    id: Mapped[int] = mapped_column(BigKey, primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime]
    recipient: Mapped[str] = mapped_column(String(20), default="debtor")
    agency: Mapped[str] = mapped_column(String(80), default="lender")  # who made it
    allowed: Mapped[bool] = mapped_column(Boolean)
    rule: Mapped[str] = mapped_column(String(48))
    next_allowed_at: Mapped[datetime | None]
    connected: Mapped[bool] = mapped_column(Boolean, default=False)
    conversation: Mapped[bool] = mapped_column(Boolean, default=False)
    consented: Mapped[bool] = mapped_column(Boolean, default=False)
    action_id: Mapped[int | None] = mapped_column(ForeignKey("actions.id"))


class Repossession(Base):
    """A repossession order on a case and its disposal: one per case (收车与处置).

    The steps are logged on the case's timeline (``actions`` of kind ``repossession``) and
    each step it waits for is a :class:`RepossessionStep` under its SLA; this row holds the
    current state, the recovery's assignee and the figures.
    """

    __tablename__ = "repossessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    jurisdiction: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(24))  # court_order | security_enforcement | …
    legal_ref: Mapped[str] = mapped_column(String(120))  # ruling or signed agreement
    status: Mapped[str] = mapped_column(String(12), default="ordered", index=True)
    dpd_at_order: Mapped[int] = mapped_column(Integer)
    snapshot_on: Mapped[date] = mapped_column(Date)  # the nightly snapshot that proved the DPD
    ordered_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    ordered_at: Mapped[datetime]
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None]
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recovered_on: Mapped[date | None] = mapped_column(Date)
    recovered_place: Mapped[str | None] = mapped_column(String(200))
    condition: Mapped[str | None] = mapped_column(String(200))
    property_returned: Mapped[bool | None] = mapped_column(Boolean)  # borrower's belongings
    appraised_value: Mapped[int | None] = mapped_column(BigInteger)  # fen
    sold_on: Mapped[date | None] = mapped_column(Date)
    sale_price: Mapped[int | None] = mapped_column(BigInteger)  # fen
    buyer: Mapped[str | None] = mapped_column(String(200))
    costs_recovered: Mapped[int | None] = mapped_column(BigInteger)  # fen
    paid_to_loan: Mapped[int | None] = mapped_column(BigInteger)  # fen, a payment
    surplus: Mapped[int | None] = mapped_column(BigInteger)  # fen, owed back to the borrower
    surplus_ref: Mapped[str | None] = mapped_column(String(120))  # the transfer that returned it
    deficiency: Mapped[int | None] = mapped_column(BigInteger)  # fen, kept as a balance
    closed_at: Mapped[datetime | None]


class RepossessionCost(Base):
    """A cost of a repossession (recovery, storage, …), recovered first from the proceeds."""

    __tablename__ = "repossession_costs"

    id: Mapped[int] = mapped_column(primary_key=True)
    repossession_id: Mapped[int] = mapped_column(ForeignKey("repossessions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)  # fen
    incurred_on: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(String(200))


_OPEN_STEP = text("done_at IS NULL")


class RepossessionStep(Base):
    """A step a repossession waits for (approve, recover, appraise, sell, post, write_off,
    return_surplus), under its SLA like any follow-up: opened when the step before it was
    taken (the order opens ``approve``), done when it is taken, each in the same transaction.

    ``started_at`` is when its SLA clock started and ``deadline_at`` when it ends (never moved:
    a breached step stays overdue until done); ``warned_at``/``breached_at`` are the
    watchdog's escalation and breach, ``breach_team`` who held the step then.
    """

    __tablename__ = "repossession_steps"
    __table_args__ = (
        UniqueConstraint("repossession_id", "step"),  # each step is taken once
        Index("ix_repossession_steps_open_deadline", "deadline_at", sqlite_where=_OPEN_STEP,
              postgresql_where=_OPEN_STEP),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    repossession_id: Mapped[int] = mapped_column(ForeignKey("repossessions.id"))
    step: Mapped[str] = mapped_column(String(16))
    # the recovery's assignee; None for a step any supervisor may take (approve, write off)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime]
    deadline_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    warned_at: Mapped[datetime | None]
    breached_at: Mapped[datetime | None]
    breach_team: Mapped[str | None] = mapped_column(String(80))

    repossession: Mapped[Repossession] = relationship()


class LedgerEntry(Base):
    """An act in the tamper-evident ledger: its canonical JSON ``body``, written in the
    transaction of the act. ``leaf_index`` is given when a tree head takes the entry in
    (numbered from 0 in that order, never changed); until then the entry is pending."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigKey, primary_key=True)
    leaf_index: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(80), index=True)  # a loan ref, a VIN
    body: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(default=clock.now)


class LedgerNode(Base):
    """The hash of a perfect subtree of the ledger's Merkle tree: ``2**level`` leaves from
    leaf ``node_index * 2**level`` (level 0: the leaf hashes). Proofs are read from these."""

    __tablename__ = "ledger_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    node_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerHead(Base):
    """A signed tree head: the ledger's size and root at ``signed_at``, Ed25519-signed with
    the key ``key_id`` (kept outside the database)."""

    __tablename__ = "ledger_heads"

    id: Mapped[int] = mapped_column(primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger, unique=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    signed_at: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
