"""The follow-up engine: users and teams, cases and their timelines, triggers, tasks,
promises, contact attempts, complaints.

Actions, triggers and tasks carry a unique key that the engine sets on every new row. That
key is their ``insert_sentinel``: a flush inserts many new rows in one statement and matches
each returned id to its row by the key. Without a sentinel SQLite cannot say which new row got
which id, so SQLAlchemy inserted one row per statement there: the demo's follow-up stage sent
51,000 statements, and sends 28,500 now."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

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
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lienwatch import clock
from lienwatch.followup.triggers import DELINQUENCY
from lienwatch.store.tables.base import Base, BigKey, PublishedVersion


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
    password_hash: Mapped[str | None] = mapped_column(String(200))  # argon2id, PHC string
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_failed_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Team(Base):
    """A team of agents and their supervisors (``users.team`` names it); strategies route
    agent steps to a team by name."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))


_OPEN_CASE = text("status <> 'closed'")


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
    # The behaviour score when the case opened: probability of rolling to M2+ in 60 days
    roll_score: Mapped[float | None] = mapped_column(Float)
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
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True, insert_sentinel=True)
    kind: Mapped[str] = mapped_column(String(24))  # sms|voice|call|visit|gps_check|status|note
    performed_at: Mapped[datetime]
    performed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: automation
    outcome: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    case: Mapped[Case] = relationship(back_populates="actions")


_OPEN_TRIGGER = text("resolved_at IS NULL")
#: The delinquency kinds as the coverage check's query names them, as literals, so that
#: PostgreSQL matches the partial index's predicate in a generic plan too (migration 0033 keeps
#: its own frozen copy).
DELINQUENCY_KINDS = tuple(sorted(kind.value for kind in DELINQUENCY))
_OPEN_DELINQUENCY = text(
    "resolved_at IS NULL AND kind IN (" + ", ".join(f"'{k}'" for k in DELINQUENCY_KINDS) + ")"
)


class Trigger(Base):
    """Something that needs following up on a case; ``source_key`` makes raising it idempotent.

    ``step`` is the next ladder step to perform, due at ``next_due_at`` and to be done by
    ``deadline_at`` (its SLA). ``first_deadline_at``/``first_action_at`` decide coverage.
    """

    __tablename__ = "triggers"
    __table_args__ = (
        Index("ix_triggers_open_deadline", "deadline_at", sqlite_where=_OPEN_TRIGGER,
              postgresql_where=_OPEN_TRIGGER),
        Index("ix_triggers_open_due", "next_due_at", sqlite_where=_OPEN_TRIGGER,
              postgresql_where=_OPEN_TRIGGER),
        # the coverage check at every tick: the open delinquency triggers' loans, in order
        Index("ix_triggers_open_delinquency", "loan_id", sqlite_where=_OPEN_DELINQUENCY,
              postgresql_where=_OPEN_DELINQUENCY),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(BigKey, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    source_key: Mapped[str] = mapped_column(String(160), unique=True, insert_sentinel=True)
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


_QUEUED = text("status = 'queued'")


class Task(Base):
    """An agent step waiting in a queue (calls, visits, reviews)."""

    __tablename__ = "tasks"
    __table_args__ = (
        # an agent's queue, most urgent first, read a page at a time (the API's /queue): the
        # index scanned backwards, ties by deadline sorted incrementally
        Index("ix_tasks_queue", "assignee_id", "priority", sqlite_where=_QUEUED,
              postgresql_where=_QUEUED),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(BigKey, primary_key=True)
    # trigger:step:due, queued once
    key: Mapped[str] = mapped_column(String(80), unique=True, insert_sentinel=True)
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



class Complaint(Base):
    """A complaint about how a loan is followed up, from its receipt to its resolution;
    receiving and resolving it are also actions on the case's timeline (and in the ledger)."""

    __tablename__ = "complaints"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    received_at: Mapped[datetime]
    received_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    category: Mapped[str] = mapped_column(String(16))  # ComplaintCategory
    channel: Mapped[str] = mapped_column(String(16))  # ComplaintChannel
    summary: Mapped[str] = mapped_column(Text)
    resolved_at: Mapped[datetime | None] = mapped_column(index=True)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution: Mapped[str | None] = mapped_column(Text)
    upheld: Mapped[bool | None] = mapped_column(Boolean)  # the complaint was found justified


class StrategyVersion(PublishedVersion, Base):
    """A strategy version an analyst published: the document (as a strategy file holds it,
    JSON), who and when. The newest version of the configured strategy's name, when newer
    than the configured file's, is the one in force."""

    __tablename__ = "strategy_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)


class IncentiveScheme(PublishedVersion, Base):
    """A reward/penalty scheme version published by an analyst or administrator: the document
    (as a scheme file holds it, JSON), who and when. A version scores the acts from the moment
    it was published until the next; the configured file's scores the acts before any."""

    __tablename__ = "incentive_schemes"
    __table_args__ = (UniqueConstraint("name", "version"),)


class BehaviourFit(Base):
    """A behaviour score fitted on the book (:mod:`lienwatch.risk.behaviour`): the model as a
    readable table, the observation months it saw (every horizon closed by
    ``fitted_through``) and its time-split figures. The follow-up engine scores a case opened
    on a day with the fit an analyst published last among those made through an earlier day;
    a fit nobody published (``published_at`` empty) scores nothing."""

    __tablename__ = "behaviour_fits"

    id: Mapped[int] = mapped_column(primary_key=True)
    fitted_through: Mapped[date] = mapped_column(Date, index=True)
    model: Mapped[dict[str, Any]]
    figures: Mapped[dict[str, Any]]
    fitted_at: Mapped[datetime]
    published_by: Mapped[str | None] = mapped_column(String(80))  # the analyst's username
    published_at: Mapped[datetime | None]
