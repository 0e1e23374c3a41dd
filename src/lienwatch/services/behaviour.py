"""The behaviour score on the book: monthly observations of every current or early-delinquent
loan gathered from the nightly snapshots, payments, promises and collateral alerts, then the
time-split backtest of :mod:`lienwatch.risk.behaviour` (docs/risk.md)."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lienwatch.errors import NotFoundError
from lienwatch.followup.kpi import compare, rate
from lienwatch.followup.model import PromiseStatus
from lienwatch.monitor.model import AlertType
from lienwatch.risk.behaviour import (
    ELIGIBLE_MAX_DPD,
    FEATURES,
    HORIZON_DAYS,
    ROLL_DPD,
    BehaviourError,
    BehaviourModel,
    Observations,
    backtest,
    fit_behaviour,
)
from lienwatch.services.auth import AuditAction
from lienwatch.store.db import chunks
from lienwatch.store.repositories import (
    AuditRepository,
    LoanRepository,
    insert_ignoring_duplicates,
)
from lienwatch.store.tables import Alert, BehaviourFit, Event, LoanSnapshot, Payment, Promise

HISTORY_MONTHS = 6
RECENT_DAYS = 90
_REMOVED = {AlertType.DEVICE_REMOVED.value, AlertType.POWER_CUT.value}


def month_ends(session: Session, *, through: date) -> list[date]:
    """The last nightly-run day of each month up to ``through``: the observation days."""
    days = session.scalars(
        select(LoanSnapshot.as_of).where(LoanSnapshot.as_of <= through).distinct()
    ).all()
    last: dict[tuple[int, int], date] = {}
    for day in sorted(days):
        last[(day.year, day.month)] = day
    return sorted(last.values())


def behaviour_observations(session: Session, *, through: date) -> Observations:
    """Every loan current or in M1 at a month end whose 60-day horizon the nightly runs up to
    ``through`` cover, with its features (:data:`FEATURES`) and whether it rolled to M2+
    within the horizon."""
    ends = month_ends(session, through=through)
    # an outcome is known once the snapshots reach the end of its horizon
    known = [d for d in ends if d + timedelta(days=HORIZON_DAYS) <= ends[-1]] if ends else []
    if not known:
        return Observations([], np.array([], dtype=str), np.zeros((0, len(FEATURES))),
                            np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))  # fmt: skip
    dpd_at = _dpd_at_month_ends(session, ends)
    deep = _deep_days(session, after=known[0], through=through)
    signals = _Signals(session, since=known[0] - timedelta(days=RECENT_DAYS), through=known[-1])
    loans, months, rows, exposure, rolled = [], [], [], [], []
    for day in known:
        history = [d for d in ends if d < day][-HISTORY_MONTHS:]
        horizon = day + timedelta(days=HORIZON_DAYS)
        for loan_id, dpd, ead in session.execute(
            select(LoanSnapshot.loan_id, LoanSnapshot.dpd, LoanSnapshot.ead)
            .where(LoanSnapshot.as_of == day, LoanSnapshot.dpd <= ELIGIBLE_MAX_DPD)
            .order_by(LoanSnapshot.loan_id)
        ):  # fmt: skip
            loans.append(str(loan_id))
            months.append(f"{day:%Y-%m}")
            rows.append(_row(loan_id, dpd, day, history, dpd_at, signals))
            exposure.append(ead)
            rolled.append(any(day < d <= horizon for d in deep.get(loan_id, ())))
    features = np.array(rows, dtype=float).reshape(-1, len(FEATURES))
    return Observations(loans, np.array(months), features, np.array(exposure, dtype=np.int64),
                        np.array(rolled, dtype=bool))  # fmt: skip


def behaviour_backtest(
    session: Session, *, through: date, test_months: int = 1, capacity: float = 0.2,
    obs: Observations | None = None,
) -> dict[str, Any]:
    """The behaviour score fitted on the earlier observation months and judged on the last
    ``test_months`` (AUC, KS, calibration), with the champion (exposure) and challenger
    (score × exposure) priorities compared at ``capacity``: the share of the loans that rolled
    which each reached, with Wilson intervals and Newcombe's interval of the difference (the
    two arms rank the same loans, so the interval is on the cautious side)."""
    obs = behaviour_observations(session, through=through) if obs is None else obs
    result = backtest(obs, test_months=test_months, capacity=capacity)
    reached = result.pop("reached")
    duel = compare(rate(reached["champion"], reached["rolls"]),
                   rate(reached["challenger"], reached["rolls"]))  # fmt: skip
    return {"through": through.isoformat(), "horizon_days": HORIZON_DAYS,
            "observations": len(obs), **result,
            "champion_challenger": duel.as_dict()}  # fmt: skip


def _row(loan_id: int, dpd: int, day: date, history: list[date],
         dpd_at: dict[date, dict[int, int]], signals: _Signals) -> list[float]:  # fmt: skip
    """A loan's features on ``day`` (:data:`FEATURES` order), ``history`` the month ends
    before it."""
    past = [dpd_at[d].get(loan_id, 0) for d in history]
    return [dpd, max(past, default=0), sum(p > 0 for p in past), *signals.of(loan_id, day)]


def fit_behaviour_score(session: Session, *, through: date, at: datetime, test_months: int = 1,
                        capacity: float = 0.2) -> BehaviourFit:  # fmt: skip
    """Fit the behaviour score on every observation whose 60-day outcome the nightly runs up
    to ``through`` know, and store it unpublished: it scores nothing until an analyst
    publishes it (:func:`publish_behaviour_fit`), so a refit never changes the score in force
    by itself. Its figures are the time-split backtest's, or why there is none (a single
    observation month fits but cannot be judged)."""
    obs = behaviour_observations(session, through=through)
    if not len(obs):
        raise BehaviourError(f"no loan has a known 60-day outcome by {through}: the nightly "
                             f"runs must cover more than {HORIZON_DAYS} days")  # fmt: skip
    model = fit_behaviour(obs)
    try:
        figures = behaviour_backtest(session, through=through, test_months=test_months,
                                     capacity=capacity, obs=obs)  # fmt: skip
        figures.pop("model", None)
    except BehaviourError as exc:
        figures = {"through": through.isoformat(), "unjudged": str(exc)}
    fit = BehaviourFit(fitted_through=through, model=model.as_json(),
                       figures={**figures, "observations": len(obs),
                                "months": sorted(set(obs.month.tolist()))},
                       fitted_at=at)  # fmt: skip
    session.add(fit)
    session.flush()
    return fit


def publish_behaviour_fit(session: Session, *, fit_id: int, by: str, at: datetime,
                          client: str = "") -> BehaviourFit:  # fmt: skip
    """Publish the stored fit ``fit_id`` (a risk analyst's act, written to the audit log with
    where from): from then on it is the fit in force for the cases opening after its
    ``fitted_through``. Publishing an older fit again puts it back in force (a rollback).
    A fit of another version's features is refused: this version cannot score with it."""
    fit = session.get(BehaviourFit, fit_id)
    if fit is None:
        raise NotFoundError(f"fit: no behaviour fit {fit_id}")
    BehaviourModel.from_json(fit.model)  # raises for another version's features
    fit.published_by, fit.published_at = by, at
    AuditRepository(session).add(
        at=at, actor=by, action=AuditAction.MODEL_PUBLISHED.value,
        subject=f"behaviour_fit:{fit.id}", client=client,
        details={"fitted_through": fit.fitted_through.isoformat(),
                 "months": fit.figures["months"]})  # fmt: skip
    session.flush()
    return fit


def refit_if_due(session: Session, *, through: date, at: datetime) -> dict[str, Any] | None:
    """The nightly job's monthly refit: the first time a nightly run reaches a new month
    (claimed once per month across workers), fit the score through ``through`` and store it
    unpublished for an analyst to review and publish. None when this month's refit is done;
    else the fit's id and figures, or why the book could not be fitted yet."""
    month = f"{through:%Y-%m}"
    claimed = insert_ignoring_duplicates(session, Event.__table__, [{
        "kind": "behaviour_refit", "key": f"behaviour_refit:{month}", "occurred_at": at,
        "payload": {"through": through.isoformat()}}])  # fmt: skip
    if not claimed:
        return None
    try:
        fit = fit_behaviour_score(session, through=through, at=at)
    except BehaviourError as exc:
        return {"month": month, "unfitted": str(exc)}
    return {"month": month, "fit": fit.id, "fitted_through": through.isoformat(),
            "auc": fit.figures.get("auc"), "published": False}  # fmt: skip


def fit_in_force(session: Session, *, day: date) -> BehaviourFit | None:
    """The fit an analyst published last among those made through a day before ``day`` (data
    before that day); unpublished fits are never in force."""
    return session.scalar(select(BehaviourFit)
                          .where(BehaviourFit.fitted_through < day,
                                 BehaviourFit.published_at.is_not(None))
                          .order_by(BehaviourFit.published_at.desc(), BehaviourFit.id.desc())
                          .limit(1))  # fmt: skip


def behaviour_fits(session: Session, *, limit: int = 24) -> list[BehaviourFit]:
    """The stored fits, newest first, published or not."""
    return list(session.scalars(select(BehaviourFit).order_by(BehaviourFit.id.desc())
                                .limit(limit)))  # fmt: skip


def opening_scores(session: Session, loan_ids: list[int], *, day: date) -> dict[int, float]:
    """The behaviour score of each loan for a case opening on ``day``: the fit in force
    (:func:`fit_in_force`) on the features as of the last nightly snapshot before ``day``.
    Empty when there is no fit or no snapshot yet (such cases keep the champion's order)."""
    fit = fit_in_force(session, day=day)
    as_of = session.scalar(select(func.max(LoanSnapshot.as_of)).where(LoanSnapshot.as_of < day))
    if fit is None or as_of is None or not loan_ids:
        return {}
    history = month_ends(session, through=as_of)
    history = [d for d in history if d < as_of][-HISTORY_MONTHS:]
    dpd_at = _dpd_at_month_ends(session, history)
    signals = _Signals(session, since=as_of - timedelta(days=RECENT_DAYS), through=as_of,
                       loans=loan_ids)  # fmt: skip
    ids, rows = [], []
    for chunk in chunks(loan_ids):
        for loan_id, dpd in session.execute(
            select(LoanSnapshot.loan_id, LoanSnapshot.dpd)
            .where(LoanSnapshot.as_of == as_of, LoanSnapshot.loan_id.in_(chunk))
        ):  # fmt: skip
            ids.append(loan_id)
            rows.append(_row(loan_id, dpd, as_of, history, dpd_at, signals))
    if not ids:
        return {}
    model = BehaviourModel.from_json(fit.model)
    found = model.probability(np.array(rows, dtype=float).reshape(-1, len(FEATURES)))
    return {loan_id: round(float(p), 6) for loan_id, p in zip(ids, found, strict=True)}


def _dpd_at_month_ends(session: Session, ends: list[date]) -> dict[date, dict[int, int]]:
    found: dict[date, dict[int, int]] = defaultdict(dict)
    for day, loan_id, dpd in session.execute(
        select(LoanSnapshot.as_of, LoanSnapshot.loan_id, LoanSnapshot.dpd)
        .where(LoanSnapshot.as_of.in_(ends), LoanSnapshot.dpd > 0)
    ):  # fmt: skip
        found[day][loan_id] = dpd
    return found


def _deep_days(session: Session, *, after: date, through: date) -> dict[int, list[date]]:
    """The days each loan was more than 30 days past due (M2 or worse)."""
    found: dict[int, list[date]] = defaultdict(list)
    for loan_id, day in session.execute(
        select(LoanSnapshot.loan_id, LoanSnapshot.as_of)
        .where(LoanSnapshot.as_of > after, LoanSnapshot.as_of <= through,
               LoanSnapshot.dpd > ROLL_DPD)
    ):  # fmt: skip
        found[loan_id].append(day)
    return found


def _end_of(day: date) -> datetime:
    """The end of a business day, as UTC midnight after it (a day's alerts, within hours)."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


class _Signals:
    """Payments, promises and alerts of the observation period, counted per loan and day. An
    alert counts from when the monitor raised it (it could not be known before), so no
    feature on a day reads what was learnt after it."""

    def __init__(self, session: Session, *, since: date, through: date,
                 loans: list[int] | None = None) -> None:  # fmt: skip
        installment = LoanRepository(session).regular_installments(loans)
        only = (lambda column: column.in_(loans)) if loans is not None else (
            lambda column: column.is_not(None))  # fmt: skip
        self.payments: dict[int, list[tuple[date, bool, bool]]] = defaultdict(list)
        channel: dict[int, str] = {}
        for loan_id, paid_on, amount, via in session.execute(
            select(Payment.loan_id, Payment.paid_on, Payment.amount, Payment.channel)
            .where(Payment.reversed_at.is_(None), Payment.paid_on <= through,
                   only(Payment.loan_id))
            .order_by(Payment.loan_id, Payment.paid_on, Payment.id)
        ):  # fmt: skip
            changed = loan_id in channel and channel[loan_id] != via
            channel[loan_id] = via
            if paid_on > since:
                partial = amount < installment.get(loan_id, 0)
                self.payments[loan_id].append((paid_on, partial, changed))
        self.broken: dict[int, list[date]] = defaultdict(list)
        for loan_id, promised_on in session.execute(
            select(Promise.loan_id, Promise.promised_on)
            .where(Promise.status == PromiseStatus.BROKEN, Promise.promised_on > since,
                   only(Promise.loan_id))
        ):  # fmt: skip
            self.broken[loan_id].append(promised_on)
        raised = func.coalesce(Alert.raised_at, Alert.started_at)
        self.alerts: dict[int, list[tuple[str, datetime, datetime | None]]] = defaultdict(list)
        offline: list[tuple[int, datetime, datetime, datetime | None]] = []
        for loan_id, kind, started, known, ended in session.execute(
            select(Alert.loan_id, Alert.type, Alert.started_at, raised, Alert.ended_at)
            .where(only(Alert.loan_id), raised < _end_of(through))
        ):  # fmt: skip
            self.alerts[loan_id].append((kind, known, ended))
            if kind == AlertType.DEVICE_OFFLINE.value:
                offline.append((loan_id, started, known, ended))
        self.offline = _Intervals(offline)
        self._offline_on: dict[date, dict[int, float]] = {}

    def of(self, loan_id: int, day: date) -> list[float]:
        """The counts after DPD history, in :data:`FEATURES` order."""
        since, end = day - timedelta(days=RECENT_DAYS), _end_of(day)
        recent = [(partial, changed) for paid_on, partial, changed in self.payments[loan_id]
                  if since < paid_on <= day]  # fmt: skip
        broken = sum(since < d <= day for d in self.broken[loan_id])
        open_kinds = [kind for kind, known, ended in self.alerts[loan_id]
                      if known < end and (ended is None or ended >= end)]  # fmt: skip
        if day not in self._offline_on:
            self._offline_on[day] = self.offline.hours(since=_end_of(since), until=end)
        return [sum(p for p, _ in recent), broken, sum(c for _, c in recent), len(open_kinds),
                int(AlertType.NIGHT_RELOCATION.value in open_kinds),
                int(AlertType.DEVICE_OFFLINE.value in open_kinds),
                int(bool(_REMOVED & set(open_kinds))),
                math.log1p(self._offline_on[day].get(loan_id, 0.0))]  # fmt: skip


class _Intervals:
    """The ``device_offline`` alerts as columns, to count each loan's offline hours in a
    window at once for every loan."""

    def __init__(self, rows: list[tuple[int, datetime, datetime, datetime | None]]) -> None:
        def seconds(values: list[datetime | None]) -> np.ndarray:
            return np.array([np.inf if v is None else v.timestamp() for v in values])

        self.loan = np.array([r[0] for r in rows], dtype=np.int64)
        self.start = seconds([r[1] for r in rows])
        self.known = seconds([r[2] for r in rows])
        self.end = seconds([r[3] for r in rows])

    def hours(self, *, since: datetime, until: datetime) -> dict[int, float]:
        """Each loan's hours offline between ``since`` and ``until``, as known at ``until``:
        an alert raised later does not count, and one still open then counts up to it."""
        low, high = since.timestamp(), until.timestamp()
        overlap = np.minimum(self.end, high) - np.maximum(self.start, low)
        seconds = np.where(self.known < high, np.clip(overlap, 0, None), 0.0)
        loans, slot = np.unique(self.loan, return_inverse=True)
        total = np.bincount(slot, weights=seconds, minlength=loans.size) / 3_600
        return {int(loan): round(float(h), 2) for loan, h in zip(loans, total, strict=True) if h}
