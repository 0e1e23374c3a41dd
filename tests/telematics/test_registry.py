"""The device registry over the real store: admission, auth codes, quarantine, status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from lienwatch.store.db import session_factory, transaction
from lienwatch.store.repositories import DeviceRepository
from lienwatch.store.tables import Device
from lienwatch.store.telematics import StoreDeviceDirectory
from lienwatch.telematics.registry import (
    DeviceRegistry,
    DeviceStatus,
    RegisterResult,
    device_status,
)
from tests import factories
from tests.telematics.support import add_devices, new_ident


def test_a_terminal_registers_once_unless_reset_or_in_its_own_session(engine):
    phone = add_devices(engine, "jt808", 1)[0]
    registry = DeviceRegistry(StoreDeviceDirectory(session_factory(engine)),
                              unknown_devices="reject")  # fmt: skip
    result, first = registry.register(phone)
    assert result == RegisterResult.OK and first is not None and len(first.auth_code or "") == 16
    assert registry.register(phone) == (RegisterResult.TERMINAL_REGISTERED, None)  # a takeover
    assert registry.authenticate(phone, first.auth_code or "") is not None  # still valid
    _, second = registry.register(phone, session_of=first.id)  # its own session
    assert second is not None and second.auth_code != first.auth_code
    assert registry.authenticate(phone, first.auth_code or "") is None  # superseded
    assert registry.authenticate(phone, second.auth_code or "") is not None
    assert registry.reset_auth(phone) is not None
    assert registry.authenticate(phone, second.auth_code or "") is None
    assert registry.register(phone)[0] == RegisterResult.OK  # after the operator's reset
    assert registry.authenticate(new_ident("jt808"), "anything") is None
    with transaction(session_factory(engine)) as session:
        stored = DeviceRepository(session).get_by_ident(phone).auth_code
    assert stored is not None and len(stored) == 64  # a digest, not the code


def test_admission_by_policy_and_protocol(engine):
    imei = add_devices(engine, "gt06", 1)[0]
    factory = session_factory(engine)
    strict = DeviceRegistry(StoreDeviceDirectory(factory), unknown_devices="reject")
    assert strict.admit(imei, "gt06") is not None
    assert strict.admit(imei, "jt808") is None  # registered for GT06
    stranger = new_ident("gt06")
    assert strict.admit(stranger, "gt06") is None
    assert strict.register(new_ident("jt808")) == (RegisterResult.TERMINAL_UNKNOWN, None)

    lenient = DeviceRegistry(StoreDeviceDirectory(factory), unknown_devices="quarantine")
    record = lenient.admit(stranger, "gt06")
    assert record is not None and record.quarantined and record.vehicle_id is None
    assert lenient.admit(stranger, "gt06") == record  # idempotent
    with pytest.raises(ValueError, match="unknown_devices"):
        DeviceRegistry(StoreDeviceDirectory(factory), unknown_devices="allow")  # type: ignore[arg-type]


def test_record_carries_vehicle_and_loan_and_session_status(engine):
    factory = session_factory(engine)
    ident = new_ident("jt808")
    with transaction(factory) as session:
        loan = factories.loan(session, ref=f"GW-{ident}")
        device = factories.device(session, ident)
        DeviceRepository(session).bind(device=device, vehicle=loan.vehicle)
        expected = (loan.vehicle_id, loan.id)
    registry = DeviceRegistry(StoreDeviceDirectory(factory), unknown_devices="reject")
    record = registry.admit(ident, "jt808")
    assert record is not None and (record.vehicle_id, record.loan_id) == expected
    registry.sessions_changed({record.id: DeviceStatus.ONLINE})
    with transaction(factory) as session:
        assert DeviceRepository(session).get_by_ident(ident).status == "online"
    registry.sessions_changed({record.id: DeviceStatus.OFFLINE})
    with transaction(factory) as session:
        assert DeviceRepository(session).get_by_ident(ident).status == "offline"


def test_device_status_from_session_and_last_fix():
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    status = lambda connected, last: device_status(  # noqa: E731
        connected=connected, last_fix_at=last, report_interval_s=600, now=now
    )
    assert status(True, None) == DeviceStatus.ONLINE
    assert status(False, None) == DeviceStatus.UNKNOWN
    assert status(False, now - timedelta(minutes=20)) == DeviceStatus.ONLINE
    assert status(False, now - timedelta(minutes=21)) == DeviceStatus.OFFLINE


def test_quarantine_is_bounded(engine):
    factory = session_factory(engine)
    with transaction(factory) as session:
        already = session.scalar(select(func.count()).where(Device.quarantined))
    registry = DeviceRegistry(StoreDeviceDirectory(factory), unknown_devices="quarantine",
                              max_quarantined=already + 1)  # fmt: skip
    assert registry.admit(new_ident("gt06"), "gt06") is not None
    assert registry.admit(new_ident("gt06"), "gt06") is None  # one quarantined row too many
