"""Priority and assignment of agent tasks: who does what next, within capacity.

Priority = unsecured exposure × probability of rolling to a deeper bucket: from the DPD band
(:func:`roll_probability`, the champion), or the behaviour score for a challenger that orders
by it (``priority = "behaviour"`` in the strategy).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from lienwatch.followup.model import FollowupError, Role

# Upper DPD bound of each band and its roll probability: rough auto-loan roll rates by bucket.
_DPD_BANDS = (0, 30, 60, 90)
_ROLL = (0.02, 0.25, 0.45, 0.60, 0.75)


def roll_probability(dpd: int) -> float:
    """Probability that a loan at ``dpd`` rolls one bucket deeper (DPD-based placeholder)."""
    if dpd < 0:
        raise ValueError(f"dpd: must not be negative, got {dpd}")
    return _ROLL[bisect.bisect_left(_DPD_BANDS, dpd)]


def priority(*, unsecured: int, dpd: int, roll: float | None = None) -> int:
    """Expected fen at risk: unsecured exposure × roll probability (a larger number first);
    the probability is ``roll`` when given (the behaviour score of a challenger's case), else
    the DPD band's (:func:`roll_probability`)."""
    if roll is not None and not 0 <= roll <= 1:
        raise ValueError(f"roll: must be a probability in [0, 1], got {roll}")
    return round(max(unsecured, 0) * (roll_probability(dpd) if roll is None else roll))


@dataclass(frozen=True, slots=True)
class AgentSlot:
    """An agent as assignment sees them: skills, region and what is left of today's capacity."""

    id: int
    team: str
    skills: frozenset[str]  # phone | field | recovery: an agent may hold several
    regions: frozenset[str]  # province codes served; empty = all
    languages: frozenset[str]  # empty = any
    remaining: int  # tasks still possible today
    load: int  # open tasks already assigned


@dataclass(frozen=True, slots=True)
class QueuedTask:
    id: int
    skill: str
    priority: int
    deadline_at: datetime
    region: str = ""
    language: str = ""
    team: str | None = None  # None: any team
    owner: int | None = None  # the agent the task's case is assigned to, if any


def urgency_order(tasks: Iterable[QueuedTask], horizon: datetime) -> list[QueuedTask]:
    """Tasks whose SLA ends before ``horizon`` first, then by priority, then by deadline."""
    return sorted(tasks, key=lambda t: (t.deadline_at > horizon, -t.priority, t.deadline_at, t.id))


def assign(
    tasks: Sequence[QueuedTask], agents: Sequence[AgentSlot], *, horizon: datetime
) -> dict[int, int]:
    """Task id → agent id for as many tasks as capacity allows, most urgent first; each task
    goes to its case's owner when they can take it (so that a case stays one collector's),
    else to the least loaded eligible agent (team, skill, region, language)."""
    remaining = {agent.id: agent.remaining for agent in agents}
    load = {agent.id: agent.load for agent in agents}
    chosen: dict[int, int] = {}
    for task in urgency_order(tasks, horizon):
        eligible = [a for a in agents if remaining[a.id] > 0 and _can_take(a, task)]
        if not eligible:
            continue
        best = next((a for a in eligible if a.id == task.owner), None) or min(
            eligible, key=lambda agent: (load[agent.id], agent.id))
        chosen[task.id] = best.id
        remaining[best.id] -= 1
        load[best.id] += 1
    return chosen


def _can_take(agent: AgentSlot, task: QueuedTask) -> bool:
    """The agent has the task's skill (among theirs), team, region and language (capacity aside)."""
    return (
        task.skill in agent.skills
        and (task.team is None or agent.team == task.team)
        and (not agent.regions or not task.region or task.region in agent.regions)
        and (not agent.languages or not task.language or task.language in agent.languages)
    )


def unstaffed(tasks: Iterable[QueuedTask], agents: Sequence[AgentSlot]) -> list[QueuedTask]:
    """Tasks that no agent present could take even with capacity to spare (no active agent
    of the task's skill, team, region and language): work that waits for a person who is not
    there."""
    staffed: dict[tuple[str, str | None, str, str], bool] = {}  # asked once per kind of task
    stuck = []
    for task in tasks:
        kind = (task.skill, task.team, task.region, task.language)
        if kind not in staffed:
            staffed[kind] = any(_can_take(agent, task) for agent in agents)
        if not staffed[kind]:
            stuck.append(task)
    return stuck


def staffing_gaps(tasks: Iterable[QueuedTask]) -> Counter[str]:
    """Tasks counted by ``team/skill`` (team ``any`` when the task names none)."""
    return Counter(f"{task.team or 'any'}/{task.skill}" for task in tasks)


class Member(Protocol):
    """A user as the reassignment rule sees them."""

    username: str
    role: str
    active: bool
    team: str | None


def check_reassignment(supervisor: Member, agent: Member, holders: Iterable[Member]) -> None:
    """Who may give work to whom: only a supervisor, to an active agent, both of one team and
    that team the holders' (FollowupError naming what is wrong). Cases, tasks and recoveries
    are reassigned under this one rule."""
    if supervisor.role != Role.SUPERVISOR:
        raise FollowupError(f"by: {supervisor.username} is not a supervisor")
    if agent.role != Role.AGENT or not agent.active:
        raise FollowupError(f"to: {agent.username} is not an active agent")
    if agent.team != supervisor.team or any(h.team != supervisor.team for h in holders):
        raise FollowupError(
            f"to: {agent.username} is not in team {supervisor.team} of {supervisor.username}"
        )
