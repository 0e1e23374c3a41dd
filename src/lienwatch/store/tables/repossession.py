"""Repossession and disposal."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lienwatch.store.tables.base import Base


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

