"""Collateral alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from lienwatch.store.tables.base import Base, PublishedVersion

_OPEN_ALERT = text("status IN ('open', 'acknowledged')")


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



class AlertRuleVersion(PublishedVersion, Base):
    """An alert-rule set an analyst published: the monitor's thresholds, per product
    overrides and enabled alert types (the document as its TOML file holds it, JSON), who and
    when. A version is in force from the moment it was published until the next; the
    ``[monitor]`` configuration before any."""

    __tablename__ = "alert_rule_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)
