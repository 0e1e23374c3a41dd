"""Trackers and the positions they report."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
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
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lienwatch import clock
from lienwatch.store.tables.base import Base, BigKey

if TYPE_CHECKING:
    from lienwatch.store.tables.book import Vehicle


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

