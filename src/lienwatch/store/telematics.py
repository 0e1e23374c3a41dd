"""The store behind the tracker gateway: the device directory and the fix writer.

These adapters implement the interfaces ``lienwatch.telematics`` states
(:class:`~lienwatch.telematics.registry.DeviceDirectory`,
:class:`~lienwatch.telematics.fixes.FixWriter`). Each call is one business change and commits
its own transaction: they sit where a request from a device enters the system.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from lienwatch.monitor.model import OPEN_STATUSES
from lienwatch.store.db import transaction
from lienwatch.store.repositories import DeviceRepository, PositionRow, store_position_rows
from lienwatch.store.tables import (
    Alert,
    Device,
    LoanSnapshot,
    Position,
    PositionConflict,
    Vehicle,
)
from lienwatch.telematics.fixes import Fix, StoredPositions
from lienwatch.telematics.registry import (
    DEVICE_CLONED,
    DeviceRecord,
    DeviceStatus,
    device_status,
)

log = logging.getLogger(__name__)


class StoreDeviceDirectory:
    """:class:`~lienwatch.telematics.registry.DeviceDirectory` over the ``devices`` table."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def find(self, ident: str) -> DeviceRecord | None:
        with transaction(self.factory) as session:
            found = DeviceRepository(session).find_with_loan(ident)
            return None if found is None else _record(*found)

    def add_quarantined(
        self, ident: str, protocol: str, partner: str | None = None
    ) -> DeviceRecord:
        with transaction(self.factory) as session:
            return _record(DeviceRepository(session).add_quarantined(ident, protocol, partner))

    def count_quarantined(self) -> int:
        with transaction(self.factory) as session:
            return session.scalar(select(func.count()).where(Device.quarantined)) or 0

    def set_auth_codes(self, digests: Mapping[int, str | None]) -> None:
        with transaction(self.factory) as session:
            DeviceRepository(session).set_auth_codes(digests)

    def set_statuses(self, statuses: Mapping[int, DeviceStatus]) -> None:
        with transaction(self.factory) as session:
            DeviceRepository(session).set_statuses(
                {device: status.value for device, status in statuses.items()}
            )

    def refresh_statuses(self, *, now: datetime, connected: Collection[int]) -> Counter[str]:
        with transaction(self.factory) as session:
            return refresh_device_statuses(session, now=now, connected=connected)

    def record_clone(self, device_id: int, *, at: datetime, addresses: Collection[str]) -> bool:
        with transaction(self.factory) as session:
            return raise_clone_alert(session, device_id, at=at, addresses=addresses) is not None


def vehicle_keys(factory: sessionmaker[Session]) -> Callable[[Collection[int]], dict[int, str]]:
    """What the JetStream bus partitions by: the VIN of the vehicle each device key is fitted
    to (devices fitted to none left out), in a transaction of its own."""

    def find(devices: Collection[int]) -> dict[int, str]:
        query = (
            select(Device.id, Vehicle.vin)
            .join(Vehicle, Vehicle.id == Device.vehicle_id)
            .where(Device.id.in_(list(devices)))
        )
        with transaction(factory) as session:
            return {device: vin for device, vin in session.execute(query)}

    return find


def set_fitted_on(session: Session, ident: str, day: date | None) -> Device | None:
    """Record the day device ``ident`` was fitted (None: unknown); None if there is no such
    device. Its fixes dated before that day are refused from then on."""
    device = DeviceRepository(session).find(ident)
    if device is not None:
        device.fitted_on = day
    return device


#: Why a device is taken for cloned: the evidence's ``reasons``.
SECOND_SESSION = "second_session"  # a second live session was refused
CONFLICTING_FIX = "conflicting_fix"  # a fix contradicting the stored one of its time


def raise_clone_alert(
    session: Session,
    device_id: int,
    *,
    at: datetime,
    addresses: Collection[str] = (),
    reason: str = SECOND_SESSION,
) -> Alert | None:
    """Open a ``device_cloned`` alert on the device's vehicle, or, while one is open (or
    acknowledged), repeat it: ``repeats`` + 1, the new addresses and ``reason`` added to its
    evidence. The alert carries the vehicle's latest loan and that loan's latest unsecured
    exposure, and the device's last stored position, so the follow-up engine's collateral
    ladders take it up. None when the device is fitted to no vehicle.

    Such alerts have no monitor key: the monitor neither loads nor resolves them; a person
    closes them.
    """
    device = session.get(Device, device_id)
    if device is None or device.vehicle_id is None:
        return None
    for _ in range(2):  # a concurrent writer may open it between our look and our insert
        alert = _open_clone_alert(session, device.vehicle_id)
        if alert is not None:
            evidence = dict(alert.evidence)
            evidence["addresses"] = sorted({*evidence.get("addresses", ()), *addresses})
            evidence["reasons"] = sorted({*evidence.get("reasons", ()), reason})
            evidence["last_at"] = at.isoformat()
            alert.evidence, alert.repeats, alert.updated_at = evidence, alert.repeats + 1, at
            return alert
        try:
            with session.begin_nested():
                return _new_clone_alert(session, device, at=at, addresses=addresses,
                                        reason=reason)  # fmt: skip
        except IntegrityError:
            continue
    return None


def _open_clone_alert(session: Session, vehicle_id: int) -> Alert | None:
    return session.scalar(
        select(Alert).where(
            Alert.vehicle_id == vehicle_id,
            Alert.type == DEVICE_CLONED,
            Alert.status.in_([str(status) for status in OPEN_STATUSES]),
        )
    )


def _new_clone_alert(
    session: Session, device: Device, *, at: datetime, addresses: Collection[str], reason: str
) -> Alert:
    assert device.vehicle_id is not None
    loan_id = DeviceRepository(session).loan_of(device.vehicle_id)
    exposure = None if loan_id is None else session.scalar(
        select(LoanSnapshot.unsecured).where(LoanSnapshot.loan_id == loan_id)
        .order_by(LoanSnapshot.as_of.desc()).limit(1)
    )  # fmt: skip
    last = session.execute(
        select(Position.lat, Position.lon)
        .where(Position.device_id == device.id, Position.valid)
        .order_by(Position.fix_time.desc()).limit(1)
    ).first()  # fmt: skip
    alert = Alert(
        type=DEVICE_CLONED, severity="critical", status="open", vehicle_id=device.vehicle_id,
        device_id=device.id, loan_id=loan_id, started_at=at, raised_at=at, updated_at=at,
        lat=None if last is None else last.lat, lon=None if last is None else last.lon,
        exposure=int(exposure or 0), repeats=0,
        evidence={"device": device.ident, "protocol": device.protocol,
                  "addresses": sorted(set(addresses)), "reasons": [reason],
                  "first_at": at.isoformat(), "last_at": at.isoformat()},
    )  # fmt: skip
    session.add(alert)
    session.flush()
    return alert


def refresh_device_statuses(
    session: Session, *, now: datetime, connected: Collection[int] = ()
) -> Counter[str]:
    """Set every device's status (online, offline, unknown) from its session and last fix;
    return the devices per status.

    Devices without a session (HTTP devices, trackers that stopped calling) are the reason
    this exists: only a look at their last fix can tell that they went offline. The last fix
    is ``last_fix_at``, which every write of positions moves forward (no read of positions).
    """
    devices = session.execute(
        select(Device.id, Device.status, Device.last_fix_at, Device.report_interval_s)
    ).all()
    counts: Counter[str] = Counter()
    changes = []
    for device_id, status, last_fix_at, interval in devices:
        new_status = device_status(
            connected=device_id in connected,
            last_fix_at=last_fix_at,
            report_interval_s=interval,
            now=now,
        ).value
        counts[new_status] += 1
        if new_status != status:
            changes.append({"id": device_id, "status": new_status})
    if changes:
        session.execute(update(Device), changes)  # ORM bulk UPDATE by primary key
    return counts


def _record(device: Device, loan_id: int | None = None) -> DeviceRecord:
    return DeviceRecord(
        id=device.id,
        ident=device.ident,
        protocol=device.protocol,
        kind=device.kind,
        vehicle_id=device.vehicle_id,
        loan_id=loan_id,
        auth_code=device.auth_code,
        quarantined=device.quarantined,
        report_interval_s=device.report_interval_s,
        model=device.model,
        partner=device.partner,
        fitted_on=device.fitted_on,
    )


class StoreFixWriter:
    """:class:`~lienwatch.telematics.fixes.FixWriter` and
    :class:`~lienwatch.telematics.fixes.FixHistory`: fixes into ``positions`` (duplicates of
    (device, fix time) skipped, those reporting another position kept in
    ``position_conflicts``) and each device's ``last_fix_at`` moved forward, in one
    transaction."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory

    def write(self, fixes: Sequence[Fix]) -> int:
        if not fixes:
            return 0
        rows: list[PositionRow] = []
        for fix in fixes:
            rows.append(
                (
                    fix.device_id,
                    fix.time,
                    fix.received_at,
                    fix.lat,
                    fix.lon,
                    fix.speed_kmh,
                    fix.course,
                    fix.valid,
                    fix.alarms,
                    fix.archived,
                )
            )
        with transaction(self.factory) as session:
            new = store_position_rows(session, rows)
            if new < len(rows):  # some were already stored: keep those that contradict it
                _keep_conflicts(session, fixes)
        return new

    def positions_at(self, keys: Collection[tuple[int, datetime]]) -> StoredPositions:
        with transaction(self.factory) as session:
            return stored_positions(session, keys)


def stored_positions(session: Session, keys: Collection[tuple[int, datetime]]) -> StoredPositions:
    """The stored (lat, lon) of each (device id, fix time) in ``keys`` that has one."""
    if not keys:
        return {}
    wanted = set(keys)
    times = [time for _, time in wanted]
    query = select(Position.device_id, Position.fix_time, Position.lat, Position.lon).where(
        Position.device_id.in_({device for device, _ in wanted}),
        Position.fix_time.between(min(times), max(times)),
    )
    found = {(device, time): (lat, lon) for device, time, lat, lon in session.execute(query)}
    return {key: position for key, position in found.items() if key in wanted}


def _keep_conflicts(session: Session, fixes: Sequence[Fix]) -> None:
    stored = stored_positions(session, [(fix.device_id, fix.time) for fix in fixes])
    conflicts = [
        PositionConflict(
            device_id=fix.device_id, fix_time=fix.time, received_at=fix.received_at,
            lat=fix.lat, lon=fix.lon, speed_kmh=fix.speed_kmh, course=fix.course,
            valid=fix.valid, alarms=fix.alarms, stored_lat=stored[key][0],
            stored_lon=stored[key][1],
        )
        for fix in fixes
        if (key := (fix.device_id, fix.time)) in stored and stored[key] != (fix.lat, fix.lon)
    ]  # fmt: skip
    for conflict in conflicts:
        log.warning("fix of device %d at %s conflicts with the stored one: kept as evidence",
                    conflict.device_id, conflict.fix_time.isoformat())  # fmt: skip
    session.add_all(conflicts)
    # Two sources report for one device: a clone, as much as a second session is.
    for device_id, received in {c.device_id: c.received_at for c in conflicts}.items():
        raise_clone_alert(session, device_id, at=received, reason=CONFLICTING_FIX)
