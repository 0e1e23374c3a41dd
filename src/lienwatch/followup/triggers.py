"""Which follow-ups the book owes and when they are raised: pure rules, no database.

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

from dataclasses import dataclass
from datetime import date, timedelta

from lienwatch.followup.model import TriggerKind
from lienwatch.followup.strategy import Strategy

CATCH_UP_DAYS = 7  # routine triggers missed by a stopped scheduler are still raised this late
ROUTINE_CHECKS = (TriggerKind.TRACKER_REVIEW, TriggerKind.INSPECTION)


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
