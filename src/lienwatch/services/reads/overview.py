"""The book at a glance (the demo's summary): counts and sums read from the store."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from lienwatch.domain.delinquency import DEFAULT_BUCKETS
from lienwatch.store.tables import (
    Alert,
    Borrower,
    Device,
    Loan,
    LoanSnapshot,
    Payment,
    Position,
    Vehicle,
)


@dataclass(frozen=True, slots=True)
class Delinquency:
    """The book by bucket from the nightly run's snapshots of one day; amounts in fen."""

    buckets: dict[str, dict[str, int]]  # bucket -> {"loans", "outstanding", "ead"}
    outstanding_principal: int
    ead: int
    unsecured: int
    over_ltv_cap: int  # loans above their product's LTV cap


@dataclass(frozen=True, slots=True)
class Overview:
    as_of: date
    borrowers: dict[str, int]  # by kind
    vehicles: int
    devices: dict[str, int]  # by "protocol/kind"
    loans: dict[str, int]  # by status
    principal_disbursed: int  # fen
    payments: int
    payments_amount: int  # fen
    positions: int
    devices_reporting_24h: int
    devices_silent_72h: int
    delinquency: Delinquency | None  # from the nightly run as of ``as_of``, if there was one
    alerts: dict[str, dict[str, int]]  # alert type -> status -> count

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_overview(session: Session, *, as_of: date) -> Overview:
    """Counts and sums of the book as of the start of ``as_of`` (UTC midnight)."""
    cutoff = datetime.combine(as_of, time(), tzinfo=UTC)
    # Each device's last fix, looked up in the (device, fix time) index device by device:
    # a GROUP BY would read every position's index entry.
    last_fix = (
        select(func.max(Position.fix_time))
        .where(Position.device_id == Device.id, Position.fix_time < cutoff)
        .scalar_subquery()
    )
    last_fixes = session.scalars(select(last_fix).select_from(Device)).all()  # None: no fix yet
    reporting = sum(1 for last in last_fixes if last is not None and cutoff - last <= timedelta(1))
    silent = sum(1 for last in last_fixes if last is None or cutoff - last > timedelta(hours=72))
    paid = session.execute(
        select(func.count(Payment.id), func.coalesce(func.sum(Payment.amount), 0)).where(
            Payment.reversed_at.is_(None)
        )
    ).one()
    return Overview(
        as_of=as_of,
        borrowers=_count_by(session, Borrower.kind),
        vehicles=session.scalar(select(func.count(Vehicle.id))) or 0,
        devices={
            f"{protocol}/{kind}": count
            for protocol, kind, count in session.execute(
                select(Device.protocol, Device.kind, func.count()).group_by(
                    Device.protocol, Device.kind
                )
            ).all()
        },
        loans=_count_by(session, Loan.status),
        principal_disbursed=session.scalar(select(func.coalesce(func.sum(Loan.principal), 0))),
        payments=paid[0],
        payments_amount=int(paid[1]),
        positions=session.scalar(select(func.count()).select_from(Position)) or 0,
        devices_reporting_24h=reporting,
        devices_silent_72h=silent,
        delinquency=build_delinquency(session, as_of=as_of),
        alerts=_alerts_by_type(session),
    )


def _alerts_by_type(session: Session) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    rows = session.execute(
        select(Alert.type, Alert.status, func.count()).group_by(Alert.type, Alert.status)
    ).all()
    for alert_type, status, count in sorted(rows):
        table.setdefault(alert_type, {})[status] = count
    return table


def build_delinquency(session: Session, *, as_of: date) -> Delinquency | None:
    """Bucket counts and balances from the snapshots of ``as_of`` (None without a run)."""
    rows = session.execute(
        select(
            LoanSnapshot.bucket,
            func.count(),
            func.sum(LoanSnapshot.outstanding_principal),
            func.sum(LoanSnapshot.ead),
            func.sum(LoanSnapshot.unsecured),
            func.sum(case((LoanSnapshot.over_ltv_cap, 1), else_=0)),
        )
        .where(LoanSnapshot.as_of == as_of)
        .group_by(LoanSnapshot.bucket)
    ).all()
    if not rows:
        return None
    order = {name: i for i, name in enumerate(DEFAULT_BUCKETS.names)}
    rows = sorted(rows, key=lambda row: (order.get(row[0], len(order)), row[0]))
    return Delinquency(
        buckets={
            bucket: {"loans": n, "outstanding": int(outstanding), "ead": int(ead)}
            for bucket, n, outstanding, ead, _, _ in rows
        },
        outstanding_principal=sum(int(row[2]) for row in rows),
        ead=sum(int(row[3]) for row in rows),
        unsecured=sum(int(row[4]) for row in rows),
        over_ltv_cap=sum(int(row[5]) for row in rows),
    )


def _count_by(session: Session, column: Any) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).group_by(column)).all()
    return {str(key): count for key, count in sorted(rows)}
