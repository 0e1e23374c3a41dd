"""The pre-loan decision as the book keeps it: the scorecards that scored applications (with
the reference distribution of their fit) and each application's score, grade and attributes,
so that the report can watch the scorecard's stability (docs/risk.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from lienwatch.store.tables.base import Base


class ScorecardRecord(Base):
    """A scorecard that scored applications: its document (``lienwatch risk fit``'s table,
    whose attributes carry the fit's counts) and the fit's score bands, keyed by the digest
    of the document so that the same scorecard is stored once."""

    __tablename__ = "scorecards"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    document: Mapped[dict[str, Any]]
    #: {"edges": [...], "counts": [...]}: the fit's training scores by band
    reference: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class ApplicationRecord(Base):
    """One scored application: when it was decided, by which scorecard, its score, grade and
    decision (None for a book imported with its characteristics: scored, not decided here),
    the attribute (bin label) it fell in on each characteristic, and the loan it became."""

    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(80), unique=True)
    scorecard_id: Mapped[int] = mapped_column(ForeignKey("scorecards.id"))
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"), unique=True)
    decided_on: Mapped[date] = mapped_column(Date, index=True)
    decided_at: Mapped[datetime]
    score: Mapped[int] = mapped_column(Integer)
    grade: Mapped[str] = mapped_column(String(2))
    decision: Mapped[str | None] = mapped_column(String(10))
    attributes: Mapped[dict[str, Any]]
