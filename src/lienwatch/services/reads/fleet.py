"""The fleet: devices with their status and last position, and a vehicle's positions in a
time range."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.access.principal import Viewer
from lienwatch.errors import NotFoundError
from lienwatch.services.reads.visibility import loan_condition
from lienwatch.store.repositories.positions import last_fixes
from lienwatch.store.tables import Device, Loan, Position, Vehicle

#: Longest range of one positions request.
MAX_RANGE = timedelta(days=31)


def devices(
    session: Session, *, limit: int, after: int | None = None, status: str | None = None,
    vin: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Devices by id with their vehicle, status and last position."""
    query = (select(Device, Vehicle.vin).outerjoin(Vehicle, Vehicle.id == Device.vehicle_id)
             .order_by(Device.id).limit(limit))  # fmt: skip
    if after is not None:
        query = query.where(Device.id > after)
    if status is not None:
        query = query.where(Device.status == status)
    if vin is not None:
        query = query.where(Vehicle.vin == vin)
    rows = session.execute(query).all()
    last = _last_positions(session, [device.id for device, _ in rows])
    return [{"ident": d.ident, "id": d.id, "protocol": d.protocol, "kind": d.kind,
             "model": d.model, "vin": vin_, "status": d.status, "last_fix_at": d.last_fix_at,
             "quarantined": d.quarantined, "last_position": last.get(d.id)}
            for d, vin_ in rows]  # fmt: skip


def _last_positions(session: Session, device_ids: list[int]) -> dict[int, dict[str, Any]]:
    return {device_id: _fix(p) for device_id, p in last_fixes(session, device_ids).items()}


def vehicle_positions(
    session: Session, viewer: Viewer, vin: str, *, since: datetime, until: datetime,
    limit: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """The fixes of every device of vehicle ``vin`` with ``since <= time < until``, in time
    order (at most ``limit``; a range over 31 days is refused)."""
    if until <= since:
        raise ValueError("until: must be after since")
    if until - since > MAX_RANGE:
        raise ValueError(f"until: at most {MAX_RANGE.days} days after since")
    vehicle_id = session.scalar(
        select(Vehicle.id).join(Loan, Loan.vehicle_id == Vehicle.id)
        .where(Vehicle.vin == vin, loan_condition(viewer)).limit(1))  # fmt: skip
    if vehicle_id is None:
        raise NotFoundError(f"vin: no vehicle {vin!r}")
    rows = session.execute(
        select(Position, Device.ident).join(Device, Device.id == Position.device_id)
        .where(Device.vehicle_id == vehicle_id, Position.fix_time >= since,
               Position.fix_time < until)
        .order_by(Position.fix_time, Position.id).limit(limit)
    ).all()  # fmt: skip
    return [{**_fix(p), "device": ident} for p, ident in rows]


def _fix(p: Position) -> dict[str, Any]:
    return {"time": p.fix_time, "lat": p.lat, "lon": p.lon, "speed_kmh": p.speed_kmh,
            "course": p.course, "valid": p.valid,
            "alarms": [a for a in p.alarms.split(";") if a]}  # fmt: skip
