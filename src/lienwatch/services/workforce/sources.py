"""What the capacity forecast reads from the store: the open triggers where their ladders
stand, and the triggers expected over the horizon (the installments falling due, the
delinquent loans reaching a deeper bucket, the recent rate of alerts and other kinds)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from lienwatch.followup.assignment import roll_probability
from lienwatch.followup.model import TriggerKind
from lienwatch.followup.strategy import Arm, LadderSpec, Segment, Strategy
from lienwatch.followup.triggers import ROUTINE_CHECKS, check_lead, current_checks, repeats
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.followup import LIVE_LOAN_STATUSES
from lienwatch.store.tables import Alert, Borrower, Case, Loan, LoanSnapshot, Task, Trigger
from lienwatch.workforce.forecast import Horizon, Pending
from lienwatch.workforce.travel import TravelTable

# Kinds whose expected arrivals come from the book itself rather than their recent rate.
FROM_THE_BOOK = frozenset(
    {TriggerKind.MISSED_INSTALLMENT, TriggerKind.BUCKET_CHANGE, TriggerKind.COLLATERAL_ALERT}
)
ROUTINE = frozenset({*ROUTINE_CHECKS, TriggerKind.WELCOME_CALL})  # by loan age


def open_pendings(
    session: Session, strategy: Strategy, latest: date | None, travel: TravelTable,
    *, at: datetime,
) -> list[Pending]:  # fmt: skip
    """Every trigger open at ``at`` at its next step then: the step, due time and deadline
    of its first task not done by ``at`` (a later one queued since counts from its own due
    time), else the trigger's (the exposure of the ``latest`` run's day), and the trip to
    the borrower's city."""
    rows = session.execute(  # columns, not ORM objects: thousands of triggers each morning
        select(Trigger.id, Trigger.kind, Trigger.ladder, Trigger.step, Trigger.anchor_at,
               Trigger.next_due_at, Trigger.deadline_at, Case.arm, Loan.ref,
               LoanSnapshot.unsecured, Borrower.province_code, Borrower.city)
        .join(Case, Case.id == Trigger.case_id)
        .join(Loan, Loan.id == Trigger.loan_id)
        .join(Borrower, Borrower.id == Loan.borrower_id)
        .outerjoin(LoanSnapshot, and_(LoanSnapshot.loan_id == Trigger.loan_id,
                                      LoanSnapshot.as_of == latest))
        .where(Trigger.opened_at <= at,
               or_(Trigger.resolved_at.is_(None), Trigger.resolved_at > at))
    ).all()  # fmt: skip
    waiting = _waiting_tasks(session, at)
    pendings = []
    for row in rows:
        ladder = _ladder(strategy, row.ladder, row.arm or "champion")
        if ladder is None:  # a ladder a newer strategy dropped: nothing to forecast
            continue
        step, due_at, deadline_at = waiting.get(
            row.id, (row.step, row.next_due_at, row.deadline_at))
        pendings.append(Pending(
            ladder, step, due_at, row.anchor_at,
            repeats(TriggerKind(row.kind)), row.ref, row.id, int(row.unsecured or 0),
            deadline_at=deadline_at, travel=travel.one_way(row.province_code, row.city),
        ))  # fmt: skip
    return pendings


def _waiting_tasks(session: Session, at: datetime) -> dict[int, tuple[int, datetime, datetime]]:
    """By trigger, the (step, due time, deadline) of its first task not done (nor cancelled)
    by ``at``: the step waiting in a queue at that moment."""
    rows = session.execute(
        select(Task.trigger_id, Task.step, Task.due_at, Task.deadline_at)
        .where(or_(Task.done_at.is_(None), Task.done_at > at))
        .order_by(Task.trigger_id, Task.step, Task.due_at)
    ).all()  # fmt: skip
    waiting: dict[int, tuple[int, datetime, datetime]] = {}
    for trigger_id, step, due_at, deadline_at in rows:
        waiting.setdefault(trigger_id, (step, due_at, deadline_at))
    return waiting


def expected_pendings(
    session: Session, *, at: datetime, horizon: Horizon, strategy: Strategy,
    catalogue: ProductCatalogue, lookback_days: int, latest: date | None, travel: TravelTable,
) -> list[Pending]:  # fmt: skip
    """The triggers expected over ``horizon``, each weighted by its probability (the book
    as the ``latest`` nightly run left it), with the live book's mean trip."""
    expected: list[Pending] = []
    if latest is not None:
        expected += _missed_installments(session, latest, horizon, strategy)
        expected += _deeper_buckets(session, latest, horizon, strategy, catalogue)
    expected += _routine(session, at, horizon, strategy)
    expected += _recent_rates(session, at, horizon, strategy, lookback_days, latest)
    trip = mean_trip(session, travel)
    return [replace(pending, travel=trip) for pending in expected]


def mean_trip(session: Session, travel: TravelTable) -> int:
    """The mean one-way trip to the live loans' borrowers (the unknown place's without any)."""
    rows = session.execute(
        select(Borrower.province_code, Borrower.city, func.count())
        .join(Loan, Loan.borrower_id == Borrower.id)
        .where(Loan.status.in_(LIVE_LOAN_STATUSES))
        .group_by(Borrower.province_code, Borrower.city)
    ).all()  # fmt: skip
    loans = sum(n for *_, n in rows)
    if not loans:
        return travel.unknown
    return round(sum(travel.one_way(p, c) * n for p, c, n in rows) / loans)


def _missed_installments(
    session: Session, latest: date, horizon: Horizon, strategy: Strategy
) -> list[Pending]:
    """Each current loan with an installment due in the horizon misses it with the book's
    miss rate: the share of loans not past M1 that are in M1 (1-30 DPD) on the latest day."""
    rows = session.execute(
        select(LoanSnapshot.dpd, LoanSnapshot.next_due_on).where(
            LoanSnapshot.as_of == latest, LoanSnapshot.status.in_(LIVE_LOAN_STATUSES),
            LoanSnapshot.dpd <= 30)
    ).all()  # fmt: skip
    if not rows:
        return []
    rate = sum(1 for dpd, _ in rows if dpd > 0) / len(rows)
    due_days = Counter(
        due
        for dpd, due in rows
        if dpd == 0 and due is not None and horizon.start <= due < horizon.end
    )
    return [pending
            for due, count in sorted(due_days.items())
            for pending in _arrivals(strategy, Segment(TriggerKind.MISSED_INSTALLMENT),
                                     _midnight(due + timedelta(days=1), horizon.zone),
                                     count * rate)]  # fmt: skip


def _deeper_buckets(
    session: Session, latest: date, horizon: Horizon, strategy: Strategy,
    catalogue: ProductCatalogue,
) -> list[Pending]:  # fmt: skip
    """Each delinquent loan not paying reaches its next bucket on a known day: a bucket
    change, weighted by the roll probability of its DPD."""
    rows = session.execute(
        select(LoanSnapshot.dpd, LoanSnapshot.bucket, LoanSnapshot.unsecured, Loan.product)
        .join(Loan, Loan.id == LoanSnapshot.loan_id)
        .where(LoanSnapshot.as_of == latest, LoanSnapshot.dpd > 0,
               LoanSnapshot.status.in_(LIVE_LOAN_STATUSES))
    ).all()  # fmt: skip
    expected = []
    for dpd, bucket, _unsecured, product in rows:
        buckets = catalogue.get(product).buckets
        days_left = (horizon.end - latest).days
        for ahead in range(1, days_left):
            if buckets.name_for(dpd + ahead) != bucket:
                day = latest + timedelta(days=ahead)
                segment = Segment(TriggerKind.BUCKET_CHANGE, bucket=buckets.name_for(dpd + ahead),
                                  product=product, delinquent=True)  # fmt: skip
                expected += _arrivals(strategy, segment, _midnight(day, horizon.zone),
                                      roll_probability(dpd))  # fmt: skip
                break
    return expected


def _routine(
    session: Session, at: datetime, horizon: Horizon, strategy: Strategy
) -> list[Pending]:
    """The welcome calls and routine checks the live loans disbursed by ``at`` owe over the
    horizon, raised as the engine raises them (a check on its first day, or on its last call
    when nobody raised it then), except those raised by ``at``."""
    booked_by = at.astimezone(horizon.zone).date()
    loans = session.execute(
        select(Loan.id, Loan.disbursed_on)
        .where(Loan.status.in_(LIVE_LOAN_STATUSES), Loan.disbursed_on <= booked_by)
    ).all()  # fmt: skip
    raised = set(session.scalars(select(Trigger.source_key).where(
        Trigger.kind.in_([kind.value for kind in ROUTINE]), Trigger.opened_at <= at)))  # fmt: skip
    leads = {kind: check_lead(strategy, kind) for kind in ROUTINE_CHECKS}
    welcome = strategy.routine.welcome_after
    anchors: dict[tuple[TriggerKind, str], datetime] = {}
    for loan_id, disbursed in loans:
        if horizon.start <= disbursed + welcome < horizon.end:
            key = f"welcome:{loan_id}"
            anchors[(TriggerKind.WELCOME_CALL, key)] = _midnight(disbursed + welcome, horizon.zone)
        for day in horizon.day_list:
            for check in current_checks(loan_id, disbursed, day, strategy):
                if check.just_due(day) or check.last_call(day, leads[check.kind]):
                    anchor = _midnight(max(day, check.starts_on), horizon.zone)
                    anchors.setdefault((check.kind, check.source_key), anchor)
    return [pending
            for (kind, key), anchor in anchors.items() if key not in raised
            for pending in _arrivals(strategy, Segment(kind), anchor, 1.0)]  # fmt: skip


def _recent_rates(
    session: Session, at: datetime, horizon: Horizon, strategy: Strategy, lookback_days: int,
    latest: date | None,
) -> list[Pending]:  # fmt: skip
    """Alerts (by type) at the rate they were raised over the lookback, other kinds at the
    rate their triggers were raised (not adopted at go-live), spread over every day."""
    since = at - timedelta(days=lookback_days)
    raised = func.coalesce(Alert.raised_at, Alert.started_at)
    delinquent = func.coalesce(LoanSnapshot.dpd, 0) > 0
    alerts = session.execute(
        select(Alert.type, delinquent, func.count())
        .outerjoin(LoanSnapshot, and_(LoanSnapshot.loan_id == Alert.loan_id,
                                      LoanSnapshot.as_of == latest))
        .where(Alert.loan_id.is_not(None), raised >= since, raised < at)
        .group_by(Alert.type, delinquent)
    ).all()  # fmt: skip
    rates = [(Segment(TriggerKind.COLLATERAL_ALERT, alert_type=kind, delinquent=bool(late)),
              n / lookback_days) for kind, late, n in alerts]  # fmt: skip
    for kind, n in _history(session, since, at).items():
        if kind not in FROM_THE_BOOK and kind not in ROUTINE:
            rates.append((Segment(kind), n / lookback_days))
    return [pending
            for day in horizon.day_list
            for segment, rate in rates
            for pending in _arrivals(strategy, segment, _midnight(day, horizon.zone)
                                     + timedelta(hours=12), rate)]  # fmt: skip


def _history(session: Session, since: datetime, until: datetime) -> Counter[TriggerKind]:
    """Triggers raised in ``[since, until)`` by kind, the go-live backlog left out."""
    found_by = Trigger.details["found_by"].as_string()  # not every trigger's details decoded
    rows = session.execute(
        select(Trigger.kind, found_by).where(Trigger.opened_at >= since,
                                             Trigger.opened_at < until)
    ).all()  # fmt: skip
    kinds = Counter(kind for kind, found in rows if found != "go-live")
    return Counter({TriggerKind(kind): n for kind, n in kinds.items()})


def _arrivals(
    strategy: Strategy, segment: Segment, anchor: datetime, weight: float
) -> list[Pending]:
    """An expected trigger of ``segment`` anchored at ``anchor``, split between the arms."""
    if weight <= 0:
        return []
    share = strategy.challenger.split if strategy.challenger else 0.0
    arms: tuple[tuple[Arm, float], ...] = (("champion", 1 - share), ("challenger", share))
    return [Pending(ladder, 0, anchor + ladder.steps[0].offset, anchor, repeats(segment.trigger),
                    weight=weight * part)
            for arm, part in arms if part > 0
            for ladder in (strategy.ladder_for(segment, arm),)]  # fmt: skip


def _ladder(strategy: Strategy, name: str, arm: str) -> LadderSpec | None:
    """The ladder ``name`` of ``arm`` (the challenger's replacement first)."""
    challenger = strategy.challenger.ladders if arm == "challenger" and strategy.challenger else ()
    return next(
        (ladder for ladder in (*challenger, *strategy.ladders) if ladder.name == name), None
    )


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)
