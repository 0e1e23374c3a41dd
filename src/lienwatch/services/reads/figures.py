"""The figures a queue row or a case shows beside a loan: its latest nightly snapshot (DPD,
bucket, overdue, unsecured exposure) and its open alerts, for a page of loans at once."""

from __future__ import annotations

from collections.abc import Collection
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session, aliased

from lienwatch.monitor.model import AlertStatus
from lienwatch.store.tables import Alert, LoanSnapshot

OPEN_ALERTS = (AlertStatus.OPEN.value, AlertStatus.ACKNOWLEDGED.value)


def latest_snapshots(session: Session, loan_ids: Collection[int]) -> dict[int, LoanSnapshot]:
    """Each loan's latest nightly snapshot (loans never run are absent)."""
    if not loan_ids:
        return {}
    latest = (
        select(LoanSnapshot.loan_id, func.max(LoanSnapshot.as_of).label("as_of"))
        .where(LoanSnapshot.loan_id.in_(loan_ids))
        .group_by(LoanSnapshot.loan_id)
        .subquery()
    )
    rows = session.scalars(select(LoanSnapshot).join(latest, and_(
        LoanSnapshot.loan_id == latest.c.loan_id, LoanSnapshot.as_of == latest.c.as_of)))
    return {row.loan_id: row for row in rows}


def open_alert_counts(session: Session, loan_ids: Collection[int]) -> dict[int, int]:
    if not loan_ids:
        return {}
    rows = session.execute(
        select(Alert.loan_id, func.count())
        .where(Alert.loan_id.in_(loan_ids), Alert.status.in_(OPEN_ALERTS))
        .group_by(Alert.loan_id)
    ).all()
    return {loan_id: count for loan_id, count in rows}


#: The figures of :func:`snapshot_figures` as labelled columns of a row's own query, joined
#: to the row's latest snapshot by :func:`latest_snapshot_of` (all NULL: never run).
FIGURE_COLUMNS = (
    LoanSnapshot.as_of.label("as_of"), LoanSnapshot.dpd.label("dpd"),
    LoanSnapshot.bucket.label("bucket"),
    (LoanSnapshot.overdue_principal + LoanSnapshot.overdue_interest
     + LoanSnapshot.penalty_accrued + LoanSnapshot.fees_due).label("overdue_fen"),
    LoanSnapshot.unsecured.label("unsecured_fen"),
    LoanSnapshot.outstanding_principal.label("outstanding_principal_fen"),
)  # fmt: skip


@cache  # building the aliased subquery costs more than the query it is part of
def latest_snapshot_of(loan_id: ColumnElement[int]) -> ColumnElement[bool]:
    """The condition joining a row's loan (``loan_id``) to its latest snapshot, for an outer
    join in the row's own query: one round trip for a page with its figures."""
    newer = aliased(LoanSnapshot)
    latest = select(func.max(newer.as_of)).where(newer.loan_id == loan_id).scalar_subquery()
    return and_(LoanSnapshot.loan_id == loan_id, LoanSnapshot.as_of == latest)


@cache
def open_alerts_of(loan_id: ColumnElement[int]) -> ColumnElement[int]:
    """The number of open alerts of a row's loan, as a column of the row's query."""
    return (select(func.count()).where(Alert.loan_id == loan_id, Alert.status.in_(OPEN_ALERTS))
            .scalar_subquery())  # fmt: skip


def snapshot_figures(snapshot: LoanSnapshot | None) -> dict[str, Any]:
    """DPD, bucket, amount overdue and unsecured exposure (fen) of a snapshot (None: not run)."""
    if snapshot is None:
        return {"as_of": None, "dpd": None, "bucket": None, "overdue_fen": None,
                "unsecured_fen": None, "outstanding_principal_fen": None}  # fmt: skip
    overdue = (snapshot.overdue_principal + snapshot.overdue_interest
               + snapshot.penalty_accrued + snapshot.fees_due)  # fmt: skip
    return {"as_of": snapshot.as_of, "dpd": snapshot.dpd, "bucket": snapshot.bucket,
            "overdue_fen": overdue, "unsecured_fen": snapshot.unsecured,
            "outstanding_principal_fen": snapshot.outstanding_principal}  # fmt: skip
