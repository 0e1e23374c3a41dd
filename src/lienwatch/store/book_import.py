"""The storage side of a book import: what the store already holds that rows may refer to,
which rows are new, unchanged or contradict a stored one, and inserting the new ones (loans
with their schedules). The use case is :mod:`lienwatch.services.book_import`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from lienwatch.domain.calendar import add_months
from lienwatch.domain.schedule import DayCount, Method
from lienwatch.servicing.book_import import (
    KINDS,
    Known,
    Row,
    RowError,
)
from lienwatch.servicing.product import LoanTerms
from lienwatch.store.db import among
from lienwatch.store.tables import Borrower, Device, Installment, Loan, Payment, Vehicle

_TABLES = {
    "borrowers": (Borrower, Borrower.ref),
    "vehicles": (Vehicle, Vehicle.vin),
    "devices": (Device, Device.ident),
    "loans": (Loan, Loan.ref),
    "payments": (Payment, Payment.external_id),
}


@dataclass(slots=True)
class ImportPlan:
    """What an import will do: rows to insert per kind, rows already stored, conflicts."""

    new: dict[str, list[Row]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    unchanged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    errors: list[RowError] = field(default_factory=list)


def known_references(session: Session) -> Known:
    """The keys rows may refer to that the store already holds."""
    return Known(
        borrowers=set(session.scalars(select(Borrower.ref))),
        vehicles=set(session.scalars(select(Vehicle.vin))),
        loans=dict(session.execute(select(Loan.ref, Loan.disbursed_on)).all()),
        trackers={
            (vin, kind): ident
            for vin, kind, ident in session.execute(
                select(Vehicle.vin, Device.kind, Device.ident).join(
                    Device, Device.vehicle_id == Vehicle.id
                )
            )
        },
    )


#: Columns a file that leaves them empty says nothing about: a payment posted live has its
#: moment, and the same payment in a file of value dates is no conflict.
_UNSAID_IF_EMPTY = frozenset({"paid_at"})


def plan_import(session: Session, rows: Mapping[str, list[Row]]) -> ImportPlan:
    """Split rows into new, unchanged and conflicting (same key, different values)."""
    plan = ImportPlan()
    ids = _Ids(session)
    for kind in KINDS:
        model, key_column = _TABLES[kind]
        keys = [row.key for row in rows.get(kind, [])]
        stored = {
            getattr(obj, key_column.key): obj
            for condition in among(session, key_column, keys)
            for obj in session.scalars(select(model).where(condition))
        }  # fmt: skip
        for row in rows.get(kind, []):
            existing = stored.get(row.key)
            if existing is None:
                plan.new[kind].append(row)
                continue
            differing = [
                column
                for column, value in _stored_values(kind, row, ids).items()
                if getattr(existing, column) != value and (value is not None or column not in
                                                           _UNSAID_IF_EMPTY)
            ]
            if differing:
                plan.errors.append(
                    RowError(row.file, row.line, differing[0],
                             f"{row.key!r} is already stored with a different {differing[0]}",
                             row.raw)
                )  # fmt: skip
            else:
                plan.unchanged[kind] += 1
    return plan


#: The column of each kind that says when lienwatch took the row in: the import's moment.
_TAKEN_IN = {"borrowers": "created_at", "loans": "created_at", "payments": "received_at"}


def apply_import(session: Session, plan: ImportPlan, *, at: datetime) -> dict[str, int]:
    """Insert the plan's new rows (loans with their schedules), taken in ``at``; return counts
    per kind."""
    ids = _Ids(session)
    for kind in KINDS:
        model, _ = _TABLES[kind]
        rows = plan.new[kind]
        if not rows:
            continue
        stamp = {_TAKEN_IN[kind]: at} if kind in _TAKEN_IN else {}
        values = [_stored_values(kind, row, ids) | stamp for row in rows]
        session.execute(insert(model.__table__), values)  # Core: the ORM's bulk path costs more
        ids.forget(kind)
        if kind == "loans":
            _insert_schedules(session, rows, ids)
    return {kind: len(plan.new[kind]) for kind in KINDS}


def _insert_schedules(session: Session, rows: list[Row], ids: _Ids) -> None:
    installments: list[dict[str, Any]] = []
    for row in rows:
        loan_id = ids.of("loans", row.key)
        installments.extend(
            {
                "loan_id": loan_id, "n": i.n, "due_date": i.due_date,
                "principal": i.principal, "interest": i.interest, "fee": 0,
            }
            for i in _terms(row).schedule()
        )  # fmt: skip
    session.execute(insert(Installment.__table__), installments)


def _terms(row: Row) -> LoanTerms:
    v = row.values
    return LoanTerms(
        row.key, v["principal"], v["annual_rate"], v["term"], Method(v["method"]),
        v["disbursed_on"], day_count=DayCount(v["day_count"]), upfront_fee=v["upfront_fee"],
        fee_financed=v["fee_financed"],
    )  # fmt: skip


def _stored_values(kind: str, row: Row, ids: _Ids) -> dict[str, Any]:
    """The row as table column values (references resolved to surrogate keys)."""
    v = row.values
    if kind == "borrowers":
        return dict(v)
    if kind == "vehicles":
        return {**{k: v[k] for k in v if k != "borrower_ref"},
                "borrower_id": ids.of("borrowers", v["borrower_ref"])}  # fmt: skip
    if kind == "devices":
        vehicle = v["vehicle_vin"]
        return {
            "ident": v["device_id"], "protocol": v["protocol"], "kind": v["kind"],
            "model": v["model"] or "", "report_interval_s": v["report_interval_s"],
            "vehicle_id": ids.of("vehicles", vehicle) if vehicle else None,
            "fitted_on": v["fitted_on"],
        }  # fmt: skip
    if kind == "loans":
        return {
            "ref": v["ref"], "product": v["product"], "principal": v["principal"],
            "annual_rate": v["annual_rate"], "term_months": v["term"], "method": v["method"],
            "day_count": v["day_count"], "upfront_fee": v["upfront_fee"],
            "fee_financed": v["fee_financed"], "disbursed_on": v["disbursed_on"],
            "maturity_on": add_months(v["disbursed_on"], v["term"]), "time_zone": v["time_zone"],
            "booked_province": v["booked_province"], "currency": v["currency"],
            "borrower_id": ids.of("borrowers", v["borrower_ref"]),
            "vehicle_id": ids.of("vehicles", v["vehicle_vin"]),
        }  # fmt: skip
    return {
        "external_id": v["id"], "loan_id": ids.of("loans", v["loan_ref"]), "paid_on": v["date"],
        "amount": v["amount"], "channel": v["channel"], "currency": v["currency"],
        "payer_account": v.get("payer_account"), "payer_name": v.get("payer_name"),
        "paid_at": v.get("paid_at"),
    }  # fmt: skip


class _Ids:
    """Business key -> surrogate key, read from the store once per kind."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._maps: dict[str, dict[str, int]] = {}

    def of(self, kind: str, key: str) -> int | None:
        if kind not in self._maps:
            model, key_column = _TABLES[kind]
            self._maps[kind] = dict(self.session.execute(select(key_column, model.id)).all())
        return self._maps[kind].get(key)

    def forget(self, kind: str) -> None:
        self._maps.pop(kind, None)
