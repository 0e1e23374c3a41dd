"""Small builders of valid rows for store tests."""

from __future__ import annotations

import zlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy.orm import Session

from lienwatch.domain.schedule import Method, build_schedule
from lienwatch.ledger.collateral import registered_data
from lienwatch.ledger.entries import EntryKind
from lienwatch.services.ledger import record
from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import make_engine
from lienwatch.store.repositories import LoanRepository
from lienwatch.store.tables import Borrower, Device, Installment, Loan, User, Vehicle
from tests.conftest import head_sqlite


def borrower(session: Session, ref: str = "B1", phone: str = "13800000001") -> Borrower:
    row = Borrower(
        ref=ref,
        kind="person",
        name="王伟",
        id_number="110101199003077578",
        phone=phone,
        address="北京市朝阳区建国路 88 号",
        city="Beijing",
        province_code="11",
        home_lat=39.91,
        home_lon=116.46,
    )
    session.add(row)
    session.flush()
    return row


def vehicle(session: Session, owner: Borrower, vin: str = "LSVAU2180N2183294") -> Vehicle:
    row = Vehicle(
        vin=vin,
        plate="京A12345",
        make="Volkswagen",
        model="Lavida",
        purchase_price=15_000_000,
        purchase_date=date(2026, 1, 10),
        borrower=owner,
    )
    session.add(row)
    session.flush()
    return row


def vin_of(ref: str) -> str:
    """The VIN of the car :func:`loan` finances for loan ``ref`` (the same in every process)."""
    return f"LSVAU2180N{zlib.crc32(ref.encode()) % 10**7:07d}"


def loan(
    session: Session, ref: str = "L1", principal: int = 10_000_000,
    disbursed_on: date = date(2026, 1, 15),
) -> Loan:  # fmt: skip
    owner = borrower(session, ref=f"B-{ref}")
    car = vehicle(session, owner, vin=vin_of(ref))
    rate = Decimal("0.0899")
    schedule = build_schedule(
        principal=principal,
        annual_rate=rate,
        term=12,
        method=Method.ANNUITY,
        start=disbursed_on,
    )
    row = Loan(
        ref=ref,
        borrower=owner,
        vehicle=car,
        product="new-car-36",
        principal=principal,
        annual_rate=rate,
        term_months=12,
        method=Method.ANNUITY.value,
        disbursed_on=disbursed_on,
        maturity_on=schedule[-1].due_date,
        booked_province="11",
    )
    installments = [
        Installment(n=i.n, due_date=i.due_date, principal=i.principal, interest=i.interest)
        for i in schedule
    ]
    return LoanRepository(session).add(row, installments)


def device(session: Session, ident: str, kind: str = "wired", protocol: str = "jt808") -> Device:
    row = Device(ident=ident, protocol=protocol, kind=kind, model="test")
    session.add(row)
    session.flush()
    return row


def loan_fallen_due(session: Session, ref: str, *, today: date) -> Loan:
    """A loan disbursed 35 days before ``today``: its first installment fell due 4 to 7
    days ago and, with no payment, is unpaid."""
    return loan(session, ref, disbursed_on=today - timedelta(days=35))


def pledge(session: Session, loan: Loan, on: date | None = None) -> None:
    """Record the mortgage registration of ``loan``'s car (抵押登记) on ``on`` (its
    disbursement day by default), as an imported book brings it."""
    on = on or loan.disbursed_on
    data = registered_data(loan=loan.ref, plate=loan.vehicle.plate, authority="北京市车辆管理所",
                           certificate=f"11{loan.id:010d}", registered_on=on)
    record(session, EntryKind.COLLATERAL_REGISTERED, subject=loan.vehicle.vin,
           at=datetime.combine(on, datetime.min.time(), tzinfo=UTC), by=None, data=data)


def past_due_book(path: Path, *users: User) -> str:
    """The URL of a new SQLite book at ``path``: the factory loan, past due after the nightly
    runs of 2026-02-15 and 16, and ``users``; for the commands' tests, which open it anew."""
    url = head_sqlite(path)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        loan(session)
        session.add_all(users)
        for day in (date(2026, 2, 15), date(2026, 2, 16)):
            run_nightly(session, ProductCatalogue(), as_of=day)
    engine.dispose()
    return url
