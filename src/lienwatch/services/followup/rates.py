"""The follow-up KPIs' roll and cure rates, with the one definition of
:mod:`lienwatch.domain.rolls` (shared with the daily report's month-over-month rates)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lienwatch.domain.rolls import Move, flows
from lienwatch.followup.kpi import Rate, compare, rate
from lienwatch.followup.model import TriggerKind
from lienwatch.followup.strategy import Strategy
from lienwatch.services.behaviour import fit_in_force
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import chunks
from lienwatch.store.tables import Case, Loan, LoanSnapshot, Trigger

DELINQUENCY_KINDS = tuple(
    k.value
    for k in (TriggerKind.MISSED_INSTALLMENT, TriggerKind.BUCKET_CHANGE, TriggerKind.BROKEN_PROMISE)
)


def cure_rates(session: Session, since: datetime, as_of: datetime,
               catalogue: ProductCatalogue | None = None) -> dict[str, Any]:  # fmt: skip
    """Cure rates of the delinquency cases opened in the period, counted by case with the one
    definition of :mod:`lienwatch.domain.rolls`: a case starts in the bucket its loan was in
    when it opened and ends current when its delinquency triggers ended with the loan current
    by ``as_of``; by bucket, overall and by arm (champion/challenger compared, on cure rate
    and on roll rate: :func:`arm_rolls`)."""
    rows = session.execute(
        select(Case.id, Case.stratum, Case.arm, Trigger.resolution, Trigger.resolved_at)
        .join(Trigger, Trigger.case_id == Case.id)
        .where(Case.opened_at.between(since, as_of), Trigger.kind.in_(DELINQUENCY_KINDS))
    ).all()
    cured: dict[int, bool] = {}
    stratum: dict[int, tuple[str, str]] = {}
    for case_id, bucket, arm, resolution, resolved_at in rows:
        done = resolution == "loan current" and resolved_at is not None and resolved_at <= as_of
        cured[case_id] = cured.get(case_id, False) or done
        stratum[case_id] = (bucket or "?", arm or "champion")
    # A case opened delinquent: its end is "current" (a bucket before any it opened in) or
    # the bucket it opened in.
    current = "current"
    names = [current, *sorted({bucket for bucket, _ in stratum.values()} - {current})]

    def cure(arm: str | None = None) -> Any:
        moves = [Move(stratum[c][0], current if ok else stratum[c][0])
                 for c, ok in cured.items() if arm is None or stratum[c][1] == arm]  # fmt: skip
        return {f.bucket: rate(f.cured, f.weight) for f in flows(moves, names) if f.weight}

    by_bucket = cure()
    arms = {arm: _pooled(cure(arm).values()) for arm in ("champion", "challenger")}
    return {
        "cure_rate": _pooled(by_bucket.values()).as_dict(),
        "cure_rate_by_bucket": {b: r.as_dict() for b, r in sorted(by_bucket.items())},
        "champion_challenger": compare(arms["champion"], arms["challenger"]).as_dict(),
        "champion_challenger_roll": arm_rolls(session, set(cured), as_of, catalogue),
    }


def challenger_setup(session: Session, strategy: Strategy, since: datetime,
                     as_of: datetime) -> dict[str, Any] | None:  # fmt: skip
    """What the challenger arm tries (its name, split, ladders replaced, queue priority) and,
    when it orders by the behaviour score, how many cases of each arm opened in the period
    carry a score and the fit in force at the end (data up to ``fitted_through``)."""
    challenger = strategy.challenger
    if challenger is None:
        return None
    setup: dict[str, Any] = {"name": challenger.name, "split": challenger.split,
                             "ladders": [ladder.name for ladder in challenger.ladders],
                             "priority": challenger.priority, "scored_cases": None,
                             "fitted_through": None}  # fmt: skip
    if strategy.scores_cases:
        scored = session.execute(
            select(Case.arm, func.count(Case.id), func.count(Case.roll_score))
            .where(Case.opened_at.between(since, as_of)).group_by(Case.arm)
        ).all()  # fmt: skip
        setup["scored_cases"] = {arm or "champion": {"cases": n, "scored": k}
                                 for arm, n, k in scored}  # fmt: skip
        fit = fit_in_force(session, day=as_of.date())
        setup["fitted_through"] = fit.fitted_through.isoformat() if fit else None
    return setup


def arm_rolls(session: Session, case_ids: set[int], as_of: datetime,
              catalogue: ProductCatalogue | None = None) -> dict[str, Any]:  # fmt: skip
    """Roll rates of ``case_ids`` by arm, compared (the one definition of
    :mod:`lienwatch.domain.rolls`, counted by case): a case starts in the bucket it opened in
    and ends in its loan's bucket at the last nightly snapshot on or before ``as_of``; it
    rolled when that bucket is deeper (a lower roll rate is better)."""
    products = catalogue or ProductCatalogue()
    last = session.scalar(select(func.max(LoanSnapshot.as_of))
                          .where(LoanSnapshot.as_of <= as_of.date()))  # fmt: skip
    moves: dict[str, dict[tuple[str, ...], list[Move]]] = {
        "champion": defaultdict(list), "challenger": defaultdict(list)}
    for chunk in chunks(sorted(case_ids)) if last is not None else ():
        for arm, stratum, bucket, product in session.execute(
            select(Case.arm, Case.stratum, LoanSnapshot.bucket, Loan.product)
            .join(Loan, Loan.id == Case.loan_id)
            .join(LoanSnapshot, (LoanSnapshot.loan_id == Case.loan_id)
                  & (LoanSnapshot.as_of == last))
            .where(Case.id.in_(chunk))
        ):  # fmt: skip
            names = tuple(products.get(product).buckets.names)
            if stratum in names and bucket in names:
                moves[arm or "champion"][names].append(Move(stratum, bucket))
    rates = {arm: _pooled(rate(sum(f.rolled for f in flows(m, names)),
                               sum(f.weight for f in flows(m, names)))
                          for names, m in by_names.items())
             for arm, by_names in moves.items()}  # fmt: skip
    return compare(rates["champion"], rates["challenger"]).as_dict()


def _pooled(rates: Any) -> Rate:
    """One rate over the hits and totals of several."""
    found = list(rates)
    return rate(sum(r.hits for r in found), sum(r.total for r in found))


def roll_rates(
    session: Session, start: date, end: date, catalogue: ProductCatalogue | None = None
) -> dict[str, Any]:
    """Roll and cure rates per bucket (:mod:`lienwatch.domain.rolls`) between the first
    snapshot day on or after ``start`` and the last on or before ``end``, weighted by the
    outstanding principal at the first; buckets are each product's."""
    products = catalogue or ProductCatalogue()
    first = session.scalar(select(func.min(LoanSnapshot.as_of)).where(LoanSnapshot.as_of >= start))
    last = session.scalar(select(func.max(LoanSnapshot.as_of)).where(LoanSnapshot.as_of <= end))
    if first is None or last is None or first >= last:
        return {}
    later = select(LoanSnapshot.loan_id, LoanSnapshot.bucket).where(LoanSnapshot.as_of == last)
    later_bucket = {loan_id: bucket for loan_id, bucket in session.execute(later)}
    rows = session.execute(
        select(LoanSnapshot.loan_id, LoanSnapshot.bucket, LoanSnapshot.outstanding_principal,
               Loan.product)
        .join(Loan, Loan.id == LoanSnapshot.loan_id)
        .where(LoanSnapshot.as_of == first)
    ).all()  # fmt: skip
    by_buckets: dict[tuple[str, ...], list[Move]] = defaultdict(list)
    for loan_id, bucket, outstanding, product in rows:
        if loan_id in later_bucket:
            names = tuple(products.get(product).buckets.names)
            by_buckets[names].append(Move(bucket, later_bucket[loan_id], outstanding))
    balance: Counter[str] = Counter()
    rolled: Counter[str] = Counter()
    cured: Counter[str] = Counter()
    current = {names[0] for names in by_buckets}  # a bucket cures into, never out of
    for names, moves in by_buckets.items():
        for f in flows(moves, names):
            balance[f.bucket] += f.weight
            rolled[f.bucket] += f.rolled
            cured[f.bucket] += f.cured
    present = sorted(b for b in balance if balance[b])
    return {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "by_bucket": {b: round(rolled[b] / balance[b], 4) for b in present},
        "cure_by_bucket": {b: round(cured[b] / balance[b], 4) for b in present
                           if b not in current},
    }
