"""Load a simulated portfolio into the store, as a lender's book import would."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Table, insert, text
from sqlalchemy.orm import Session

from lienwatch.domain.schedule import Method, build_schedule
from lienwatch.sim.records import Portfolio
from lienwatch.store.repositories import PositionColumns, load_positions
from lienwatch.store.tables import Borrower, Device, Installment, Loan, Payment, Vehicle

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class LoadCounts:
    borrowers: int
    vehicles: int
    devices: int
    loans: int
    installments: int
    payments: int
    positions: int


def load_portfolio(
    session: Session, portfolio: Portfolio, *, progress: Progress | None = None
) -> LoadCounts:
    """Insert every record of ``portfolio`` in the caller's transaction; return the row counts.

    Surrogate keys are assigned here (1..n in record order) so that the bulk inserts need no
    round trip per row.
    """
    report = progress or (lambda _stage, _done, _total: None)
    borrower_id = {b.ref: i for i, b in enumerate(portfolio.borrowers, start=1)}
    vehicle_id = {v.vin: i for i, v in enumerate(portfolio.vehicles, start=1)}
    device_id = {d.device_id: i for i, d in enumerate(portfolio.devices, start=1)}
    loan_id = {loan.ref: i for i, loan in enumerate(portfolio.loans, start=1)}

    _insert(session, Borrower.__table__, [
        {
            "id": borrower_id[b.ref], "ref": b.ref, "kind": b.kind, "name": b.name,
            "id_number": b.id_number, "phone": b.phone, "address": b.address, "city": b.city,
            "province_code": b.province_code, "home_lat": b.home_lat, "home_lon": b.home_lon,
            "time_zone": b.time_zone,
        }
        for b in portfolio.borrowers
    ])  # fmt: skip
    _insert(session, Vehicle.__table__, [
        {
            "id": vehicle_id[v.vin], "vin": v.vin, "plate": v.plate, "make": v.make,
            "model": v.model, "energy": v.energy, "condition": v.condition,
            "purchase_price": v.purchase_price, "purchase_date": v.purchase_date,
            "borrower_id": borrower_id[v.borrower_ref],
        }
        for v in portfolio.vehicles
    ])  # fmt: skip
    _insert(session, Device.__table__, [
        {
            "id": device_id[d.device_id], "ident": d.device_id, "protocol": d.protocol,
            "kind": d.kind, "model": d.model, "vehicle_id": vehicle_id[d.vehicle_vin],
            "report_interval_s": d.report_interval_s,
        }
        for d in portfolio.devices
    ])  # fmt: skip
    report("load book", 1, 3)

    loans: list[dict[str, Any]] = []
    installments: list[dict[str, Any]] = []
    for loan in portfolio.loans:
        schedule = build_schedule(
            principal=loan.principal,
            annual_rate=loan.annual_rate,
            term=loan.term,
            method=Method(loan.method),
            start=loan.disbursed_on,
        )
        lid = loan_id[loan.ref]
        loans.append({
            "id": lid, "ref": loan.ref, "borrower_id": borrower_id[loan.borrower_ref],
            "vehicle_id": vehicle_id[loan.vehicle_vin], "product": loan.product,
            "principal": loan.principal, "annual_rate": loan.annual_rate,
            "term_months": loan.term, "method": loan.method, "upfront_fee": loan.upfront_fee,
            "disbursed_on": loan.disbursed_on, "maturity_on": schedule[-1].due_date,
            "time_zone": loan.time_zone, "booked_province": loan.booked_province,
        })  # fmt: skip
        installments.extend(
            {
                "loan_id": lid, "n": row.n, "due_date": row.due_date,
                "principal": row.principal, "interest": row.interest, "fee": 0,
            }
            for row in schedule
        )  # fmt: skip
    _insert(session, Loan.__table__, loans)
    _insert(session, Installment.__table__, installments)
    report("load book", 2, 3)
    _insert(session, Payment.__table__, [
        {
            "external_id": p.external_id, "loan_id": loan_id[p.loan_ref], "paid_on": p.paid_on,
            "amount": p.amount, "channel": p.channel,
        }
        for p in portfolio.payments
    ])  # fmt: skip
    report("load book", 3, 3)

    fixes = portfolio.positions
    ids = np.fromiter((device_id[d] for d in fixes.device_id), dtype=np.int64, count=len(fixes))
    stored = 0
    chunk = 250_000
    for start in range(0, len(fixes), chunk):
        part = slice(start, start + chunk)
        stored += load_positions(
            session,
            PositionColumns(
                device_id=ids[part],
                time=fixes.time[part],
                lat=fixes.lat[part],
                lon=fixes.lon[part],
                speed_kmh=fixes.speed_kmh[part],
                course=fixes.course[part],
                valid=fixes.valid[part],
                alarms=fixes.alarms[part],
            ),
        )
        report("load positions", min(start + chunk, len(fixes)), len(fixes))
    _advance_sequences(session, [Borrower, Vehicle, Device, Loan, Installment, Payment])
    return LoadCounts(
        borrowers=len(borrower_id),
        vehicles=len(vehicle_id),
        devices=len(device_id),
        loans=len(loans),
        installments=len(installments),
        payments=len(portfolio.payments),
        positions=stored,
    )


def _advance_sequences(session: Session, models: Sequence[type[Any]]) -> None:
    """After inserting explicit keys, move PostgreSQL's id sequences past them (SQLite needs
    nothing: it continues from the largest rowid)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for model in models:
        table = model.__tablename__
        session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )
        )


def _insert(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(table), list(rows))
