"""Trackers: registration, partners, authentication codes, status."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lienwatch.errors import ConflictError, NotFoundError
from lienwatch.store.db import savepoint
from lienwatch.store.tables import (
    Device,
    Loan,
    Vehicle,
)


class DeviceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_by_ident(self, ident: str) -> Device:
        device = self.session.scalar(select(Device).where(Device.ident == ident))
        if device is None:
            raise NotFoundError(f"device {ident!r} is not registered")
        return device

    def find(self, ident: str) -> Device | None:
        return self.session.scalar(select(Device).where(Device.ident == ident))

    def add_quarantined(self, ident: str, protocol: str, partner: str | None = None) -> Device:
        """Record a device nobody registered, unbound and quarantined (tied to the HTTP
        ``partner`` that posted for it, if any); an existing ``ident`` (a concurrent
        connection got there first) is returned as it is."""
        device = Device(
            ident=ident, protocol=protocol, kind="wired", quarantined=True, partner=partner
        )
        try:
            with savepoint(self.session):
                self.session.add(device)
        except IntegrityError:
            return self.get_by_ident(ident)
        return device

    def set_partner(self, ident: str, partner: str | None) -> Device | None:
        """Tie the device to the HTTP ingest ``partner`` (None: any partner); None if there
        is no such device."""
        device = self.find(ident)
        if device is not None:
            device.partner = partner
        return device

    def find_with_loan(self, ident: str) -> tuple[Device, int | None] | None:
        """The device ``ident`` and the id of its vehicle's most recently disbursed loan
        (None: unbound, or no loan), in one query (a device connecting asks it), or None."""
        latest_loan = _latest_loan(Device.vehicle_id).scalar_subquery()
        row = self.session.execute(select(Device, latest_loan).where(Device.ident == ident))
        found = row.first()
        return None if found is None else (found[0], found[1])

    def loan_of(self, vehicle_id: int) -> int | None:
        """The id of the vehicle's most recently disbursed loan, or None."""
        return self.session.scalar(_latest_loan(vehicle_id))

    def set_auth_codes(self, digests: Mapping[int, str | None]) -> None:
        """Each device's auth-code digest (None: forget it)."""
        if digests:
            table = Device.__table__
            self.session.execute(
                update(table).where(table.c.id == bindparam("device")),
                [{"device": device, "auth_code": digest}  # in id order, as note_last_fixes
                 for device, digest in sorted(digests.items())],
            )

    def set_statuses(self, statuses: Mapping[int, str]) -> None:
        """Each device's status, one UPDATE a status."""
        by_status: dict[str, list[int]] = defaultdict(list)
        for device_id, status in statuses.items():
            by_status[status].append(device_id)
        for status, ids in by_status.items():
            self.session.execute(update(Device).where(Device.id.in_(ids)).values(status=status))

    def note_last_fixes(self, last_fix: Mapping[int, datetime]) -> None:
        """Move each device's ``last_fix_at`` forward to the given time (never backward)."""
        if not last_fix:
            return
        table = Device.__table__
        statement = (
            update(table)
            .where(table.c.id == bindparam("device"))
            .where(or_(table.c.last_fix_at.is_(None), table.c.last_fix_at < bindparam("at")))
            .values(last_fix_at=bindparam("at"))
        )
        # In id order: two writers at once (gateways, the store writer) then lock the rows
        # they share in the same order; in another order PostgreSQL found them deadlocked.
        rows = [{"device": device, "at": at} for device, at in sorted(last_fix.items())]
        self.session.connection().execute(statement, rows)

    def bind(self, *, device: Device, vehicle: Vehicle) -> None:
        """Fit ``device`` to ``vehicle``: one wired and one wireless tracker at most."""
        taken = self.session.scalar(
            select(Device.ident).where(
                Device.vehicle_id == vehicle.id, Device.kind == device.kind, Device.id != device.id
            )
        )
        if taken is not None:
            raise ConflictError(
                f"vehicle {vehicle.vin} already carries {device.kind} device {taken}; "
                f"unbind it before fitting {device.ident}"
            )
        device.vehicle = vehicle
        self.session.flush()


def _latest_loan(vehicle: Any) -> Select[tuple[int]]:
    """The id of the most recently disbursed loan of ``vehicle`` (an id, or a column for a
    correlated subquery)."""
    return (
        select(Loan.id)
        .where(Loan.vehicle_id == vehicle)
        .order_by(Loan.disbursed_on.desc(), Loan.id.desc())
        .limit(1)
    )
