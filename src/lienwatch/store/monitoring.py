"""The live monitor on the store: the fleet it watches, the positions it warms up on, its alerts.

:class:`StoreFleetSource` and :class:`StoreAlertStore` implement the interfaces of
:mod:`lienwatch.monitor.live`. Each call is one transaction of its own: they sit where the
long-running monitor meets the database, like the gateway's adapters in
:mod:`lienwatch.store.telematics`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, Select, func, select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from lienwatch.domain.positions import PositionColumns
from lienwatch.domain.provinces import ProvinceIndex
from lienwatch.monitor.lifecycle import Decision
from lienwatch.monitor.live import Fleet, Saved
from lienwatch.monitor.model import Alert as MonitorAlert
from lienwatch.monitor.model import (
    AlertStatus,
    AlertType,
    DeviceSpec,
    MonitorInputError,
    VehicleSpec,
)
from lienwatch.store.db import transaction
from lienwatch.store.followup import LIVE_LOAN_STATUSES
from lienwatch.store.repositories import AlertRepository
from lienwatch.store.servicing import last_run_day, unsecured_exposures
from lienwatch.store.tables import Alert, Borrower, Device, Loan, Position, Vehicle

log = logging.getLogger(__name__)

_OPEN = tuple(str(s) for s in (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED))
_CHUNK = 500  # keys per IN list
_WARMUP_VEHICLES = 200  # vehicles per warm-up batch


def load_fleet(session: Session, *, provinces: ProvinceIndex) -> Fleet:
    """Every tracker bound to a vehicle whose latest live loan (active, delinquent,
    charged-off) is known, with that loan's figures: reference, borrower and home, product,
    booked province as the permitted region (the vehicle's ``permitted_area`` replacing it
    when set), time zone, and the unsecured exposure of the
    latest nightly snapshot (0 for a loan it does not cover).

    A tracker of an unknown kind, or a booked province that is not a GB/T 2260 code, is
    logged: the tracker is left out, the province replaced by the vehicle's first fix.
    """
    rows = session.execute(
        select(
            Device.id, Device.ident, Device.kind, Device.report_interval_s, Vehicle.vin,
            Vehicle.permitted_area, Loan.ref, Loan.product, Loan.booked_province, Loan.time_zone,
            Borrower.ref.label("borrower"), Borrower.home_lat, Borrower.home_lon,
        )
        .join(Vehicle, Vehicle.id == Device.vehicle_id)
        .join(Loan, Loan.vehicle_id == Vehicle.id)
        .join(Borrower, Borrower.id == Loan.borrower_id)
        .where(Device.quarantined.is_(False), Loan.status.in_(LIVE_LOAN_STATUSES))
        .order_by(Vehicle.id, Loan.disbursed_on.desc(), Loan.id.desc(), Device.id)
    ).all()  # fmt: skip
    as_of = last_run_day(session)
    exposures = unsecured_exposures(session, as_of=as_of) if as_of else {}
    vehicles: dict[str, VehicleSpec] = {}
    devices: dict[int, DeviceSpec] = {}
    for row in rows:
        vehicle = vehicles.get(row.vin)
        if vehicle is None:
            vehicle = vehicles[row.vin] = _vehicle(row, exposures, provinces)
        if row.ref != vehicle.loan_id:
            continue  # an older live loan of the same vehicle
        try:
            devices[row.id] = DeviceSpec(row.ident, row.vin, row.kind, row.report_interval_s)
        except MonitorInputError as exc:
            log.warning("monitor fleet: device %s left out: %s", row.ident, exc)
    return Fleet(devices, list(vehicles.values()), as_of)


def _vehicle(row: Row[Any], exposures: Mapping[str, int], provinces: ProvinceIndex) -> VehicleSpec:
    region: str | None = row.booked_province
    try:
        provinces.by_code(row.booked_province)
    except ValueError:
        log.warning("monitor fleet: loan %s: booked province %r unknown", row.ref, region)
        region = None
    home = None if row.home_lat is None or row.home_lon is None else (row.home_lat, row.home_lon)
    return VehicleSpec(
        row.vin,
        loan_id=row.ref,
        borrower_id=row.borrower,
        product=row.product,
        region=region,
        area=row.permitted_area,
        home=home,
        time_zone=row.time_zone,
        exposure=exposures.get(row.ref, 0),
    )


def recent_fixes(
    session: Session, devices: Mapping[int, str], *, since: datetime
) -> PositionColumns:
    """The stored fixes of ``devices`` (device key → ident) taken at ``since`` or later, and
    each device's last fix before ``since`` (so an offline clock or a stay that began earlier
    survives a restart), found through the (device, fix time) index."""
    columns = (
        Position.device_id, Position.fix_time, Position.lat, Position.lon, Position.speed_kmh,
        Position.course, Position.valid, Position.alarms,
    )  # fmt: skip
    keys = list(devices)
    before = (
        select(func.max(Position.fix_time))
        .where(Position.device_id == Device.id, Position.fix_time < since)
        .scalar_subquery()
    )
    last = [(key, at) for key, at in session.execute(
        select(Device.id, before).where(Device.id.in_(keys))) if at is not None]  # fmt: skip
    rows = list(
        session.execute(select(*columns).where(Position.device_id.in_(keys),
                                               Position.fix_time >= since))
    )  # fmt: skip
    if last:
        rows += session.execute(
            select(*columns).where(tuple_(Position.device_id, Position.fix_time).in_(last))
        ).all()
    return PositionColumns.of(
        [devices[row.device_id] for row in rows],
        [_epoch(row.fix_time) for row in rows],
        [row.lat for row in rows],
        [row.lon for row in rows],
        speed_kmh=[row.speed_kmh for row in rows],
        course=[row.course for row in rows],
        valid=[row.valid for row in rows],
        alarms=[row.alarms for row in rows],
    )


def open_monitor_alerts(
    session: Session, *, provinces: ProvinceIndex, vehicles: Collection[str] | None = None
) -> list[MonitorAlert]:
    """The open and acknowledged alerts the monitor stored (those with its key, of its types:
    the nightly run's ``payment_anomaly`` alerts are not the monitor's), of the ``vehicles``
    given by VIN only when given (a partition's: 500 VINs per query)."""
    query = _alert_query().where(Alert.status.in_(_OPEN), Alert.key.is_not(None),
                                 Alert.type.in_([kind.value for kind in AlertType]))  # fmt: skip
    if vehicles is None:
        return [_monitor_alert(*row, provinces) for row in session.execute(query).all()]
    vins = sorted(vehicles)
    return [
        _monitor_alert(*row, provinces)
        for start in range(0, len(vins), _CHUNK)
        for row in session.execute(query.where(Vehicle.vin.in_(vins[start : start + _CHUNK])))
    ]


def save_alerts(
    session: Session, alerts: Sequence[MonitorAlert], *, provinces: ProvinceIndex
) -> Saved:
    """Save ``alerts`` in the caller's transaction (see :meth:`AlertRepository.save_many`).

    An alert refused because another open alert of its vehicle and type is stored does not
    stop the others: it is reported with that stored alert (None without the monitor's key).
    """
    saved = Saved()
    for alert, row in zip(alerts, AlertRepository(session).save_many(alerts), strict=True):
        if row is None:
            saved.refused[alert.id] = _stored_open(session, alert, provinces)
        elif row.status != alert.status:
            saved.decisions.append(_decision(row))
    return saved


def alert_decisions(session: Session, alerts: Sequence[MonitorAlert]) -> list[Decision]:
    """The stored statuses of ``alerts`` (by key) that differ from theirs."""
    by_id = {alert.id: alert for alert in alerts}
    keys = list(by_id)
    found = []
    for start in range(0, len(keys), _CHUNK):
        rows = session.scalars(
            select(Alert).where(Alert.key.in_(keys[start : start + _CHUNK]), Alert.status != "open")
        )
        found += [_decision(row) for row in rows if row.status != by_id[row.key].status]
    return found


class StoreFleetSource:
    """:class:`~lienwatch.monitor.live.FleetSource` over the store."""

    def __init__(self, factory: sessionmaker[Session], provinces: ProvinceIndex) -> None:
        self.factory = factory
        self.provinces = provinces

    def load_fleet(self) -> Fleet:
        with transaction(self.factory) as session:
            return load_fleet(session, provinces=self.provinces)

    def recent_fixes(self, fleet: Fleet, *, since: int) -> Iterator[PositionColumns]:
        """Batches of about 200 whole vehicles, one transaction each."""
        by_vehicle: dict[str, dict[int, str]] = defaultdict(dict)
        for key, device in fleet.devices.items():
            by_vehicle[device.vehicle_id][key] = device.device_id
        groups = list(by_vehicle.values())
        moment = datetime.fromtimestamp(since, UTC)
        for start in range(0, len(groups), _WARMUP_VEHICLES):
            devices = {k: v for group in groups[start : start + _WARMUP_VEHICLES]
                       for k, v in group.items()}  # fmt: skip
            with transaction(self.factory) as session:
                batch = recent_fixes(session, devices, since=moment)
            yield batch


class StoreAlertStore:
    """:class:`~lienwatch.monitor.live.AlertStore` over the ``alerts`` table."""

    def __init__(self, factory: sessionmaker[Session], provinces: ProvinceIndex) -> None:
        self.factory = factory
        self.provinces = provinces

    def open_alerts(self, vehicles: Collection[str] | None = None) -> list[MonitorAlert]:
        """The monitor's open alerts, of ``vehicles`` (VINs) only when given."""
        with transaction(self.factory) as session:
            return open_monitor_alerts(session, provinces=self.provinces, vehicles=vehicles)

    def save(self, alerts: Sequence[MonitorAlert]) -> Saved:
        with transaction(self.factory) as session:
            return save_alerts(session, alerts, provinces=self.provinces)

    def decisions(self, alerts: Sequence[MonitorAlert]) -> list[Decision]:
        if not alerts:
            return []
        with transaction(self.factory) as session:
            return alert_decisions(session, alerts)


def _alert_query() -> Select[tuple[Alert, str, str | None, str | None]]:
    return (
        select(Alert, Vehicle.vin, Device.ident, Loan.ref)
        .join(Vehicle, Vehicle.id == Alert.vehicle_id)
        .outerjoin(Device, Device.id == Alert.device_id)
        .outerjoin(Loan, Loan.id == Alert.loan_id)
    )


def _stored_open(
    session: Session, alert: MonitorAlert, provinces: ProvinceIndex
) -> MonitorAlert | None:
    query = _alert_query().where(
        Vehicle.vin == alert.vehicle_id,
        Alert.type == str(alert.type),
        Alert.status.in_(_OPEN),
        Alert.key.is_not(None),
    )
    row = session.execute(query).first()
    return None if row is None else _monitor_alert(*row, provinces)


def _monitor_alert(
    row: Alert, vin: str, ident: str | None, loan: str | None, provinces: ProvinceIndex
) -> MonitorAlert:
    province = None if row.province_code is None else provinces.by_code(row.province_code)
    assert row.key is not None
    return MonitorAlert(
        id=row.key,
        type=AlertType(row.type),
        severity=row.severity,
        vehicle_id=vin,
        device_id=ident,
        loan_id=loan,
        start=_epoch(row.started_at),
        raised_at=_epoch(row.raised_at or row.started_at),
        lat=row.lat,
        lon=row.lon,
        province=row.province_code,
        province_zh=province.name_zh if province else None,
        province_en=province.name_en if province else None,
        evidence=dict(row.evidence),
        exposure=row.exposure,
        end=None if row.ended_at is None else _epoch(row.ended_at),
        status=AlertStatus(row.status),
        status_by=row.status_by,
        status_at=None if row.status_at is None else _epoch(row.status_at),
        repeats=row.repeats,
        updated_at=_epoch(row.updated_at or row.raised_at or row.started_at),
    )


def _decision(row: Alert) -> Decision:
    assert row.key is not None
    return Decision(
        alert_id=row.key,
        status=AlertStatus(row.status),
        by=row.status_by,
        at=None if row.status_at is None else _epoch(row.status_at),
        end=None if row.ended_at is None else _epoch(row.ended_at),
    )


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())
