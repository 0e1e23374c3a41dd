"""Repository behaviour, identical on SQLite and PostgreSQL (``db_session`` runs on both)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from lienwatch.domain.positions import PositionColumns
from lienwatch.errors import ConflictError, NotFoundError
from lienwatch.store.repositories import (
    DeviceRepository,
    LoanRepository,
    PaymentRepository,
    PositionRepository,
    load_positions,
    store_position_rows,
)
from lienwatch.store.tables import Alert, Case, Loan, Position
from tests import factories


def test_loan_round_trips_with_exact_rate_and_schedule(db_session):
    factories.loan(db_session, "L-100")
    db_session.expire_all()
    loan = LoanRepository(db_session).get_by_ref("L-100")
    assert loan.annual_rate == Decimal("0.0899")
    assert isinstance(loan.annual_rate, Decimal)
    assert [i.n for i in loan.installments] == list(range(1, 13))
    assert sum(i.principal for i in loan.installments) == loan.principal
    assert loan.installments[0].due_date == date(2026, 2, 15)


def test_duplicate_loan_ref_is_a_conflict(db_session):
    first = factories.loan(db_session, "L-dup")
    copy = Loan(
        **{c: getattr(first, c) for c in ("ref", "borrower_id", "vehicle_id", "product")},
        principal=1,
        annual_rate=Decimal("0.1"),
        term_months=1,
        method="annuity",
        disbursed_on=date(2026, 1, 1),
        maturity_on=date(2026, 2, 1),
        booked_province="11",
    )
    with pytest.raises(ConflictError, match="L-dup"):
        LoanRepository(db_session).add(copy, [])


def test_unknown_loan_is_named(db_session):
    with pytest.raises(NotFoundError, match="L-missing"):
        LoanRepository(db_session).get_by_ref("L-missing")


def test_payment_is_idempotent_by_external_id(db_session):
    loan = factories.loan(db_session, "L-pay")
    payments = PaymentRepository(db_session)
    first, created = payments.record(
        loan=loan, external_id="BANK-1", paid_on=date(2026, 2, 15), amount=874_532
    )
    again, created_again = payments.record(
        loan=loan, external_id="BANK-1", paid_on=date(2026, 2, 15), amount=874_532
    )
    assert created and not created_again
    assert again.id == first.id
    count = db_session.scalars(select(Loan).where(Loan.ref == "L-pay")).one().payments
    assert len(count) == 1


def test_same_external_id_with_other_amount_is_rejected(db_session):
    loan = factories.loan(db_session, "L-pay2")
    payments = PaymentRepository(db_session)
    payments.record(loan=loan, external_id="BANK-2", paid_on=date(2026, 2, 15), amount=100)
    with pytest.raises(ConflictError, match="BANK-2"):
        payments.record(loan=loan, external_id="BANK-2", paid_on=date(2026, 2, 15), amount=200)


@pytest.mark.parametrize(
    ("amount", "paid_on", "message"),
    [
        (0, date(2026, 2, 1), "amount"),
        (-5, date(2026, 2, 1), "amount"),
        (5, date(2025, 1, 1), "paid_on"),
    ],
)
def test_bad_payment_names_the_field(db_session, amount, paid_on, message):
    loan = factories.loan(db_session, "L-bad")
    with pytest.raises(ValueError, match=message):
        PaymentRepository(db_session).record(
            loan=loan, external_id="X", paid_on=paid_on, amount=amount
        )


def test_positions_deduplicate_on_device_and_fix_time(db_session):
    dev = factories.device(db_session, "013912345678")
    t0 = datetime(2026, 3, 1, 2, 13, tzinfo=UTC)
    rows = [
        {"device_id": dev.id, "fix_time": t0 + timedelta(minutes=i), "lat": 31.2, "lon": 121.4}
        for i in range(5)
    ]
    repo = PositionRepository(db_session)
    assert repo.add_many(rows) == 5
    # A retry of the same batch plus one new fix stores only the new one.
    assert repo.add_many([*rows, {**rows[0], "fix_time": t0 + timedelta(hours=1)}]) == 1
    track = repo.track(dev.id, t0, t0 + timedelta(days=1))
    assert len(track) == 6
    assert [p.fix_time for p in track] == sorted(p.fix_time for p in track)
    assert repo.last_fix(dev.id).fix_time == t0 + timedelta(hours=1)


def test_times_come_back_aware_utc(db_session):
    dev = factories.device(db_session, "013912345679")
    beijing = timezone(timedelta(hours=8))
    local = datetime(2026, 3, 1, 10, 13, 5, tzinfo=beijing)
    PositionRepository(db_session).add_many(
        [{"device_id": dev.id, "fix_time": local, "lat": 1.0, "lon": 2.0}]
    )
    db_session.expire_all()
    stored = db_session.scalars(select(Position)).one().fix_time
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert stored == local and stored.hour == 2


def test_naive_datetime_is_refused(db_session):
    dev = factories.device(db_session, "013912345670")
    with pytest.raises(Exception, match="naive datetime"):
        PositionRepository(db_session).add_many(
            [{"device_id": dev.id, "fix_time": datetime(2026, 3, 1), "lat": 1.0, "lon": 2.0}]
        )


def test_a_vehicle_carries_one_device_of_each_kind(db_session):
    owner = factories.borrower(db_session, "B-dev")
    car = factories.vehicle(db_session, owner)
    devices = DeviceRepository(db_session)
    wired = factories.device(db_session, "861234567890123", kind="wired", protocol="gt06")
    wireless = factories.device(db_session, "861234567890124", kind="wireless", protocol="gt06")
    spare = factories.device(db_session, "861234567890125", kind="wired", protocol="gt06")
    devices.bind(device=wired, vehicle=car)
    devices.bind(device=wireless, vehicle=car)
    with pytest.raises(ConflictError, match="861234567890123"):
        devices.bind(device=spare, vehicle=car)
    assert {d.ident for d in car.devices} == {"861234567890123", "861234567890124"}
    assert devices.get_by_ident("861234567890124").vehicle_id == car.id


def test_one_open_alert_per_vehicle_and_type(db_session):
    loan = factories.loan(db_session, "L-alert")
    start = datetime(2026, 3, 1, tzinfo=UTC)

    def alert(status: str) -> Alert:
        return Alert(
            type="power_cut",
            severity="critical",
            status=status,
            vehicle_id=loan.vehicle_id,
            loan_id=loan.id,
            started_at=start,
        )

    db_session.add_all([alert("resolved"), alert("resolved"), alert("open")])
    db_session.flush()
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.add(alert("acknowledged"))


def test_one_open_case_per_loan(db_session):
    loan = factories.loan(db_session, "L-case")
    db_session.add_all([Case(loan_id=loan.id, status="closed"), Case(loan_id=loan.id)])
    db_session.flush()
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.add(Case(loan_id=loan.id, status="escalated"))


def test_bulk_load_positions_drops_duplicates_and_keeps_utc(db_session):
    dev = factories.device(db_session, "013912345671")
    other = factories.device(db_session, "013912345672")
    t0 = int(datetime(2026, 3, 1, 2, 13, 7, tzinfo=UTC).timestamp())
    n = 6
    columns = PositionColumns(
        device_id=np.array([dev.id] * 3 + [other.id] * 3),
        time=np.array([t0, t0 + 60, t0 + 60, t0, t0 + 30, t0 + 90], dtype=np.int64),
        lat=np.linspace(31.0, 31.5, n),
        lon=np.linspace(121.0, 121.5, n),
        speed_kmh=np.zeros(n, dtype=np.float32),
        course=np.arange(n, dtype=np.int16),
        valid=np.array([True, True, True, False, True, True]),
        alarms=np.array(["power_cut", "", "", "", "removal;tamper", ""], dtype=object),
    )
    assert load_positions(db_session, columns, chunk=4) == 5  # one duplicate (dev, t0+60)
    assert load_positions(db_session, columns) == 0  # a retried batch adds nothing
    db_session.expire_all()
    track = PositionRepository(db_session).track(
        other.id, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)
    )
    assert [p.fix_time for p in track] == [
        datetime(2026, 3, 1, 2, 13, 7, tzinfo=UTC) + timedelta(seconds=s) for s in (0, 30, 90)
    ]
    assert [p.valid for p in track] == [False, True, True]
    assert track[1].alarms == "removal;tamper"
    assert track[2].lat == pytest.approx(31.5)


def test_bulk_load_of_many_rows_stores_each_exactly_once(db_session):
    """Past the multi-row INSERTs' size: every row stored as given, duplicates dropped."""
    dev = factories.device(db_session, "013912345681")
    other = factories.device(db_session, "013912345682")
    rng = np.random.default_rng(4)
    n = 1_000
    t0 = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
    time = t0 + np.sort(rng.choice(5_000, n, replace=False)) * 7
    time[500] = time[499]  # a duplicate of (device, time) inside one statement
    columns = PositionColumns(
        device_id=np.array([dev.id] * 600 + [other.id] * 400),
        time=time.astype(np.int64),
        lat=30 + rng.random(n),
        lon=120 + rng.random(n),
        speed_kmh=rng.random(n).astype(np.float32) * 100,
        course=rng.integers(0, 360, n).astype(np.int16),
        valid=rng.random(n) > 0.1,
        alarms=np.array([""] * (n - 1) + ["power_cut"], dtype=object),
    )
    assert load_positions(db_session, columns, chunk=700) == n - 1
    db_session.expire_all()
    stored = db_session.scalars(select(Position).order_by(Position.device_id, Position.fix_time))
    stored = list(stored)
    keep = np.r_[np.arange(500), np.arange(501, n)]
    assert [p.lat for p in stored] == columns.lat[keep].tolist()  # exactly, not approximately
    assert [p.lon for p in stored] == columns.lon[keep].tolist()
    assert [int(p.fix_time.timestamp()) for p in stored] == columns.time[keep].tolist()
    assert all(p.received_at == p.fix_time and not p.archived for p in stored)
    assert [p.valid for p in stored] == columns.valid[keep].tolist()
    assert [p.course for p in stored] == columns.course[keep].tolist()
    assert stored[-1].alarms == "power_cut" and stored[0].alarms == ""


def test_position_rows_from_any_zone_are_stored_in_utc(db_session):
    device = factories.device(db_session, "rows-zone-1")
    beijing = timezone(timedelta(hours=8))
    taken = datetime(2026, 11, 1, 8, 0, tzinfo=beijing)
    row = (device.id, taken, taken, 30.0, 120.0, 10.0, 90, True, "sos", True)
    assert store_position_rows(db_session, [row, row]) == 1
    stored = PositionRepository(db_session).last_fix(device.id)
    assert stored is not None and stored.fix_time == datetime(2026, 11, 1, tzinfo=UTC)
    assert (stored.alarms, stored.archived) == ("sos", True)


def test_last_fix_only_moves_forward(db_session):
    devices = DeviceRepository(db_session)
    device = factories.device(db_session, "last-fix-1")
    later, earlier = datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    devices.note_last_fixes({device.id: later})
    devices.note_last_fixes({device.id: earlier})  # a late fix arriving afterwards
    db_session.expire_all()
    assert devices.get_by_ident("last-fix-1").last_fix_at == later
