"""The SLA watchdog's rules: when a step at risk is escalated, when it is breached, what an
escalated task's priority becomes and when a breached trigger's step is due again.

The tick selects what may be at risk (deadline within the lead) and applies these verdicts
(:mod:`lienwatch.services.followup.watch`); the rules work on plain values and are tested
without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

#: Priority added to a task the watchdog escalated: it comes before any other.
URGENT = 10**15


class Verdict(StrEnum):
    """What the watchdog does about a step."""

    ON_TRACK = "on_track"  # its deadline is beyond the lead, or it was warned already
    ESCALATE = "escalate"  # its deadline falls within the lead: warn the supervisor once
    BREACH = "breach"  # its deadline has passed with the step undone


@dataclass(frozen=True, slots=True)
class Watched:
    """A step with a deadline: a trigger's current step or a repossession step."""

    deadline: datetime
    warned_at: datetime | None = None


def judge(step: Watched, *, now: datetime, lead: timedelta) -> Verdict:
    """The verdict on ``step`` at ``now``: breached once its deadline is reached, escalated
    once when it falls within ``lead``, on track otherwise."""
    if step.deadline <= now:
        return Verdict.BREACH
    if step.deadline <= now + lead and step.warned_at is None:
        return Verdict.ESCALATE
    return Verdict.ON_TRACK


def escalated_priority(priority: int) -> int:
    """An escalated task's priority: ahead of every task not escalated (once: an escalated
    task is not bumped again)."""
    return priority if priority >= URGENT else priority + URGENT


def restart_deadline(*, contactable_from: datetime, sla: timedelta) -> datetime:
    """A breached trigger's step is chased, not forgotten: it gets a fresh SLA window from
    the first moment it may be done again. (A repossession step keeps its deadline: its SLA
    is counted from the step before it, and a fresh window would hide how late it is.)"""
    return contactable_from + sla


def warning_note(what: str, deadline: datetime) -> str:
    """The escalation's note: ``SLA of step 2 ends 05-21T09:00``."""
    return f"SLA of {what} ends {deadline:%m-%dT%H:%M}"


def breach_note(what: str, deadline: datetime) -> str:
    """The breach's note: ``SLA of step 2 ended 2026-05-21 09:00Z``."""
    return f"SLA of {what} ended {deadline:%Y-%m-%d %H:%M}Z"
