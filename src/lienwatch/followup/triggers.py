"""Which follow-ups the book owes and when they are raised: pure rules, no database.

A trigger is raised from a :class:`Candidate` once per ``source_key``; one delinquency ladder
runs per loan at a time (:func:`latest_delinquency_per_loan`).

Routine checks (the tracker review, the yearly inspection) are owed once per period of loan
age: check *n* falls due on day ``n × every`` after disbursement and must be done before
check *n + 1* falls due. The engine raises a check on its first day, or within
``CATCH_UP_DAYS`` after it when the scheduler was stopped. A check whose first days nobody
watched — a book that went live in the middle of the period, or a scheduler stopped longer —
is raised at the latest moment that still lets it be done in its period (``lead`` before the
period ends, the time its ladder's first step needs), rather than at once: a go-live then
spreads a year of inspections over the year by disbursement day instead of sending every
field agent out on the first morning. Past that moment a check without a trigger is
uncovered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from lienwatch.followup.model import TriggerKind
from lienwatch.followup.strategy import Strategy

CATCH_UP_DAYS = 7  # routine triggers missed by a stopped scheduler are still raised this late
ROUTINE_CHECKS = (TriggerKind.TRACKER_REVIEW, TriggerKind.INSPECTION)
DELINQUENCY = frozenset(
    {TriggerKind.MISSED_INSTALLMENT, TriggerKind.BUCKET_CHANGE, TriggerKind.BROKEN_PROMISE}
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A trigger to raise unless its ``source_key`` was raised before."""

    loan_id: int
    kind: TriggerKind
    source_key: str
    anchor_at: datetime
    alert_type: str = ""
    alert_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


def bucket_move(buckets: Sequence[str], was: str | None, becomes: str) -> TriggerKind | None:
    """The trigger of a loan's move between ``buckets`` (ordered, current first): out of the
    first bucket a missed installment, into a deeper one a bucket change, none for a move
    back (triggers resolve when the loan is current again). An unknown ``was`` counts as
    the first bucket."""
    before = buckets.index(was) if was in buckets else 0
    after = buckets.index(becomes)
    if after <= before:
        return None
    return TriggerKind.MISSED_INSTALLMENT if before == 0 else TriggerKind.BUCKET_CHANGE


def past_due_kind(buckets: Sequence[str], bucket: str) -> TriggerKind:
    """The delinquency trigger a loan found past due in ``bucket`` owes: a missed
    installment in the first bucket past current (or one the product does not know), a
    bucket change deeper."""
    first_late = bucket not in buckets or buckets.index(bucket) <= 1
    return TriggerKind.MISSED_INSTALLMENT if first_late else TriggerKind.BUCKET_CHANGE


def latest_delinquency_per_loan(candidates: list[Candidate]) -> list[Candidate]:
    """Keep only the latest delinquency candidate of each loan (one delinquency ladder runs
    at a time: a deeper bucket supersedes the missed installment)."""
    latest: dict[int, Candidate] = {}
    for c in candidates:
        if c.kind in DELINQUENCY and (
            c.loan_id not in latest or c.anchor_at >= latest[c.loan_id].anchor_at
        ):
            latest[c.loan_id] = c
    kept = set(map(id, latest.values()))
    return [c for c in candidates if c.kind not in DELINQUENCY or id(c) in kept]


def adopted(candidate: Candidate, now: datetime) -> Candidate:
    """A backlog item raised at go-live: its SLA counts from ``now``, not from its past."""
    return replace(candidate, anchor_at=max(candidate.anchor_at, now),
                   details={**candidate.details, "found_by": "go-live"})  # fmt: skip


def repeats(kind: TriggerKind) -> bool:
    """Whether a finished ladder repeats its last step (delinquency, collateral alerts)
    rather than resolving its trigger (routine follow-ups)."""
    return kind in DELINQUENCY or kind is TriggerKind.COLLATERAL_ALERT


@dataclass(frozen=True, slots=True)
class RoutineCheck:
    """The routine check a loan owes in its current period."""

    kind: TriggerKind
    loan_id: int
    period: int  # 1 for the first check, one period after disbursement
    starts_on: date  # the check falls due
    ends_on: date  # the next check falls due: this one is owed before

    @property
    def source_key(self) -> str:
        return f"{self.kind.value}:{self.loan_id}:{self.period}"

    def just_due(self, day: date) -> bool:
        """Whether ``day`` is within the days after the check fell due when it is raised."""
        return (day - self.starts_on).days < CATCH_UP_DAYS

    def last_call(self, day: date, lead: timedelta) -> bool:
        """Whether ``day`` is at or after the latest day a check nobody raised yet must be
        raised on to be done within its period."""
        return day >= self.ends_on - lead


def current_checks(
    loan_id: int, disbursed_on: date, day: date, strategy: Strategy
) -> list[RoutineCheck]:
    """The routine checks ``strategy`` asks of a loan disbursed on ``disbursed_on`` in the
    periods ``day`` falls in; none in the first period (the loan is new) or when a check's
    interval is zero (switched off)."""
    age = (day - disbursed_on).days
    checks = []
    for kind in ROUTINE_CHECKS:
        every = routine_interval(strategy, kind).days
        period = age // every if every else 0
        if period >= 1:
            starts = disbursed_on + timedelta(days=period * every)
            checks.append(
                RoutineCheck(kind, loan_id, period, starts, starts + timedelta(days=every))
            )
    return checks


def routine_interval(strategy: Strategy, kind: TriggerKind) -> timedelta:
    routine = strategy.routine
    if kind is TriggerKind.TRACKER_REVIEW:
        return routine.tracker_review_every
    if kind is TriggerKind.INSPECTION:
        return routine.inspection_every
    raise ValueError(f"{kind.value} is not a routine check")


def check_lead(strategy: Strategy, kind: TriggerKind) -> timedelta:
    """The time a routine check of ``kind`` needs once raised: its ladder's first step (offset
    and SLA), the longest of either arm's ladders, in whole days."""
    ladders = [*strategy.ladders, *(strategy.challenger.ladders if strategy.challenger else ())]
    needs = max(
        ladder.steps[0].offset + ladder.steps[0].sla for ladder in ladders if ladder.trigger is kind
    )
    return timedelta(days=-(-needs // timedelta(days=1)))
