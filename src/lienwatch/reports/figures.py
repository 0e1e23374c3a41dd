"""The figures of the daily risk warning report (风险预警报告), computed from the store.

:func:`build_figures` returns one JSON-ready document: every figure the report prints, each
table as a list of rows (written as CSV too), and for each section what changed since the
previous report (the previous business day with a nightly run). Amounts are fen; shares are
fractions. Roll and cure rates follow :mod:`lienwatch.domain.rolls`; coverage, SLA and agent
KPIs are :mod:`lienwatch.services.followup.coverage`'s.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session

from lienwatch.data import china_provinces
from lienwatch.domain.delinquency import DEFAULT_BUCKETS
from lienwatch.errors import LienwatchError
from lienwatch.followup.strategy import Strategy
from lienwatch.ledger.heads import key_id, raw_public_key
from lienwatch.reports.credit_quality import roll_rates, vintage_curves
from lienwatch.reports.models import models_figures
from lienwatch.reports.workforce import workforce_figures
from lienwatch.services.followup.coverage import kpis
from lienwatch.services.ledger import LedgerService, latest_head, recorded_between
from lienwatch.services.reads.collateral import (
    alerts_raised_by,
    offline_trackers,
    open_alerts_at,
    open_clusters,
    top_exposure_alerts,
)
from lienwatch.services.reads.conduct import repossession_totals
from lienwatch.services.reads.portfolio import (
    bucket_balances,
    daily_totals,
    exposure_by_segment,
    month_end_snapshots,
    past_due_30,
    snapshot_buckets,
)
from lienwatch.services.servicing import last_run_day
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.workforce.incentives import Scheme
from lienwatch.workforce.rules import CapacityRules

CLOSED = ("resolved", "false_positive")
TOP_VEHICLES = 20
OFFLINE_SHOWN = 30  # trackers offline listed on the page, longest silent first (all in the CSV)
KPI_DAYS = 30  # the follow-up KPIs describe the last 30 days
TREND_DAYS = 60
VINTAGE_MONTHS = 13  # month-ends read for roll rates and vintages


@dataclass(frozen=True, slots=True)
class Period:
    """What a report describes: the business day ``day`` (its nightly snapshots) at ``at``
    (the end of the day after it, or now if earlier), and the previous report's."""

    day: date
    at: datetime
    previous_day: date | None
    previous_at: datetime | None


def report_period(
    session: Session, *, as_of: date | None, now: datetime, time_zone: str
) -> Period:
    """The business day of the report: ``as_of``, else the last day with a nightly run that
    has ended by ``now``. Raises :class:`LienwatchError` when no nightly run is stored."""
    zone = ZoneInfo(time_zone)
    through = as_of or (now.astimezone(zone).date() - timedelta(days=1))
    day = last_run_day(session, through=through)
    if day is None:
        raise LienwatchError(
            f"no nightly run stored on or before {through}: run `lienwatch servicing run` "
            "(or `lienwatch serve`) first"
        )
    if as_of is not None and day != as_of:
        raise LienwatchError(
            f"--as-of {as_of}: no nightly run stored for that day (the latest before it is {day})"
        )
    previous = last_run_day(session, through=day - timedelta(days=1))

    def moment(d: date) -> datetime:
        end = datetime.combine(d + timedelta(days=2), time(), tzinfo=zone).astimezone(UTC)
        return min(now, end)

    return Period(day, moment(day), previous, moment(previous) if previous else None)


def build_figures(
    session: Session,
    period: Period,
    *,
    strategy: Strategy,
    catalogue: ProductCatalogue | None = None,
    time_zone: str = "Asia/Shanghai",
    ledger_key: Ed25519PublicKey | None = None,
    rules: CapacityRules | None = None,
    scheme: Scheme | None = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every figure of the report for ``period`` as one JSON-ready document; ``strategy`` is
    the follow-up strategy in force (its routine checks are obligations of coverage),
    ``ledger_key`` the public key the ledger's heads are checked with (None: not checked),
    ``rules`` and ``scheme`` the capacity rules and incentive scheme in force (None: the
    shipped ones), ``previous`` the figures of the report written for the previous day when
    there is one (the models' changes read them)."""
    day, previous_day = period.day, period.previous_day
    buckets = _bucket_order(session, day)
    portfolio = _portfolio(session, day)
    delinquency = _delinquency(session, day, buckets)
    collateral = _collateral(session, period)
    followup = _followup(session, period, strategy, catalogue, time_zone)
    followup["workforce"] = workforce_figures(
        session, day=day, at=period.at, previous_at=period.previous_at, strategy=strategy,
        catalogue=catalogue, time_zone=time_zone, rules=rules, scheme=scheme)  # fmt: skip
    if previous_day is not None:
        before = _portfolio(session, previous_day)
        portfolio["changes"] = _changes(portfolio["totals"], before["totals"])
        was = _delinquency(session, previous_day, buckets)
        delinquency["changes"] = {
            **_changes(delinquency["totals"], was["totals"]),
            "buckets": {
                row["bucket"]: _changes(row, _row(was["buckets"], "bucket", row["bucket"]))
                for row in delinquency["buckets"]
            },
        }
        assert period.previous_at is not None
        collateral["changes"] = _changes(
            collateral["totals"], _collateral_totals(session, period.previous_at)
        )
        followup["changes"] = _changes(
            followup["totals"],
            _followup_totals(
                kpis(session, since=period.previous_at - timedelta(days=KPI_DAYS),
                     as_of=period.previous_at, strategy=strategy, catalogue=catalogue,
                     time_zone=time_zone)
            ),
        )  # fmt: skip
    return {
        "as_of": day.isoformat(),
        "at": period.at.isoformat(),
        "previous": previous_day.isoformat() if previous_day else None,
        "time_zone": time_zone,
        "portfolio": portfolio,
        "delinquency": delinquency,
        "collateral": collateral,
        "followup": followup,
        "models": models_figures(session, day=day, since=period.previous_at, at=period.at,
                                 previous_day=previous_day,
                                 previous=(previous or {}).get("models")),
        "ledger": _ledger(session, period, ledger_key),
        "trend": _trend(session, day),
    }


def _bucket_order(session: Session, day: date) -> list[str]:
    seen = snapshot_buckets(session)
    names = list(DEFAULT_BUCKETS.names)
    return names + sorted(seen - set(names))


def _changes(now: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """The difference of every number in ``now`` with the same key in ``before`` (0 when the
    previous report did not have it)."""
    return {
        key: value - (before.get(key) or 0)
        for key, value in now.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def _row(rows: list[dict[str, Any]], key: str, value: Any) -> dict[str, Any]:
    return next((row for row in rows if row[key] == value), {})


# -- 1. portfolio ---------------------------------------------------------------------------


def _province_names() -> dict[str, tuple[str, str]]:
    return {
        f["properties"]["gb2260"]: (f["properties"]["name_en"], f["properties"]["name_zh"])
        for f in china_provinces()["features"]
    }


def _portfolio(session: Session, day: date) -> dict[str, Any]:
    """Loans, outstanding principal, EAD and unsecured exposure of the snapshots of ``day``,
    in total, by product, by origination grade ("" for loans without one) and by booking
    province."""
    rows = exposure_by_segment(session, day)
    by_product: dict[str, Counter[str]] = defaultdict(Counter)
    by_province: dict[str, Counter[str]] = defaultdict(Counter)
    by_grade: dict[str, Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    for product, province, grade, loans, outstanding, ead, unsecured in rows:
        figures = {"loans": loans, "outstanding": int(outstanding), "ead": int(ead),
                   "unsecured": int(unsecured)}  # fmt: skip
        for table, key in ((by_product, product), (by_province, province),
                           (by_grade, grade or "")):  # fmt: skip
            table[key].update(figures)
        totals.update(figures)
    names = _province_names()
    return {
        "totals": {k: totals[k] for k in ("loans", "outstanding", "ead", "unsecured")},
        "by_product": [{"product": p, **by_product[p]} for p in sorted(by_product)],
        "by_grade": [{"grade": g, **by_grade[g]}
                     for g in sorted(by_grade, key=lambda g: (g == "", g))],  # ungraded last
        "by_province": [
            {"province": code, "name_en": names.get(code, (code, code))[0],
             "name_zh": names.get(code, (code, code))[1], **by_province[code]}
            for code in sorted(by_province, key=lambda c: -by_province[c]["outstanding"])
        ],
    }


# -- 2. delinquency -------------------------------------------------------------------------


def _delinquency(session: Session, day: date, buckets: list[str]) -> dict[str, Any]:
    found = bucket_balances(session, day)
    table = [
        {"bucket": b, "loans": found.get(b, (0, 0))[0], "outstanding": found.get(b, (0, 0))[1]}
        for b in buckets
        if b in found or b in DEFAULT_BUCKETS.names
    ]
    total = sum(r["outstanding"] for r in table)
    dpd30 = past_due_30(session, day)
    month_ends = month_end_snapshots(session, start=_months_back(day, VINTAGE_MONTHS), end=day)
    rates = roll_rates(month_ends, buckets)
    last_month = max((r.month for r in rates), default=None)
    matrix = [
        {"month": r.month.isoformat(), "bucket": r.bucket, "loans": r.loans, "balance": r.balance,
         "roll_rate": r.roll_rate, "cure_rate": r.cure_rate,
         "to": {b: (r.to.get(b, 0) / r.balance if r.balance else None) for b in buckets}}
        for r in rates
        if r.month == last_month
    ]  # fmt: skip
    return {
        "totals": {
            "loans": sum(r["loans"] for r in table),
            "outstanding": total,
            "dpd30_loans": dpd30[0],
            "dpd30_balance": dpd30[1],
            "dpd30_share": dpd30[1] / total if total else None,
        },
        "buckets": table,
        "roll_matrix": matrix,
        "roll_rates": [
            {"month": r.month.isoformat(), "bucket": r.bucket, "loans": r.loans,
             "balance": r.balance, "rolled": r.rolled, "cured": r.cured,
             "roll_rate": r.roll_rate, "cure_rate": r.cure_rate}
            for r in rates if r.loans
        ],
        "vintages": [
            {"vintage": p.vintage.isoformat()[:7], "months_on_book": p.months_on_book,
             "loans": p.loans, "disbursed": p.disbursed, "dpd30_balance": p.dpd30_balance,
             "dpd90_balance": p.dpd90_balance, "dpd30_share": p.dpd30_share,
             "dpd90_share": p.dpd90_share}
            for p in vintage_curves(month_ends)
        ],
    }


def _months_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def _trend(session: Session, day: date) -> list[dict[str, Any]]:
    """Loans, outstanding principal and the 30+ share of each nightly run of the last
    :data:`TREND_DAYS` days."""
    return daily_totals(session, day=day, days=TREND_DAYS)


# -- 3. collateral --------------------------------------------------------------------------


def _collateral_totals(session: Session, at: datetime) -> dict[str, int]:
    return {"open_alerts": open_alerts_at(session, at),
            "offline_trackers": len(offline_trackers(session, at))}


def _collateral(session: Session, period: Period) -> dict[str, Any]:
    at, since = period.at, period.previous_at
    rows = alerts_raised_by(session, at)
    table: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for kind, severity, status, raised, status_at in rows:
        counts = table[kind, severity]
        closed = status in CLOSED and status_at is not None and status_at <= at
        counts["open"] += not closed
        counts["new"] += since is None or raised > since
        if closed:
            counts["resolved" if status == "resolved" else "false_positive"] += 1
            counts["closed_since"] += since is None or status_at > since
    by_type = [
        {"type": kind, "severity": severity,
         **{k: table[kind, severity][k] for k in ("open", "new", "closed_since", "resolved",
                                                   "false_positive")}}
        for kind, severity in sorted(table)
    ]  # fmt: skip
    confirmed = sum(r["resolved"] for r in by_type)
    judged = confirmed + sum(r["false_positive"] for r in by_type)
    # longest silent first: a tracker that never reported, then the oldest last fix
    offline = sorted(offline_trackers(session, at), key=lambda r: r["last_fix"] or "")
    return {
        "totals": {
            "open_alerts": sum(r["open"] for r in by_type),
            "new_alerts": sum(r["new"] for r in by_type),
            "closed_alerts": sum(r["closed_since"] for r in by_type),
            "offline_trackers": len(offline),
            "precision": confirmed / judged if judged else None,
        },
        "precision": {"confirmed": confirmed, "judged": judged},
        "by_type": by_type,
        "top": top_exposure_alerts(session, day=period.day, at=at, limit=TOP_VEHICLES),
        "offline": offline,
        "clusters": open_clusters(session, at),
    }


# -- 4. follow-up ---------------------------------------------------------------------------


def _followup_totals(figures: dict[str, Any]) -> dict[str, Any]:
    cover = figures["coverage"]
    return {
        "coverage": cover["coverage"],
        "obligations": cover["obligations"],
        "breaches": len(cover["breaches"]),
        "uncovered": len(cover["uncovered"]),
        "open_triggers": cover["open_triggers"],
    }


def _followup(
    session: Session, period: Period, strategy: Strategy, catalogue: ProductCatalogue | None,
    time_zone: str,
) -> dict[str, Any]:
    figures = kpis(session, since=period.at - timedelta(days=KPI_DAYS), as_of=period.at,
                   strategy=strategy, catalogue=catalogue, time_zone=time_zone)  # fmt: skip
    return {
        "totals": _followup_totals(figures),
        "kpi_days": KPI_DAYS,
        "kpis": figures,
        "repossessions": repossession_totals(session, period.at),
    }


# -- 6. ledger ------------------------------------------------------------------------------


def _ledger(session: Session, period: Period, key: Ed25519PublicKey | None) -> dict[str, Any]:
    """The latest signed head, the public key and the verification of the whole log as they
    are when the report is made, and the entries recorded and heads signed between the
    previous report's moment and this one's."""
    head = latest_head(session)

    return {
        "installed": True,
        "tree_size": head.tree_size if head else 0,
        "head": None if head is None else {
            "tree_size": head.tree_size, "root": head.root.hex(),
            "signed_at": head.signed_at.isoformat(), "key_id": head.key_id,
        },
        "public_key": raw_public_key(key).hex() if key else None,
        "key_id": key_id(key) if key else None,
        "verification": LedgerService(session, public_key=key).verify().as_dict(),
        "signatures_checked": key is not None,
        "changes": recorded_between(session, period.previous_at, period.at),
    }  # fmt: skip
