"""The roster: who works which skill in which team, on which days, for how much work a day."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from lienwatch.workforce.rules import CapacityRules


@dataclass(frozen=True, slots=True)
class Rostered:
    """An agent as the forecast sees them: a ``day_minutes`` working day, ``tasks`` a day."""

    username: str
    team: str
    skill: str  # phone | field
    tasks: float
    day_minutes: float
    weekdays: frozenset[int] = frozenset(range(7))
    leave: frozenset[date] = field(default_factory=frozenset)

    def works_on(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.leave


@dataclass(frozen=True, slots=True)
class Pool:
    """Who can take a kind of task: a skill, within one team or (``team`` None) any team."""

    team: str | None
    skill: str

    @property
    def label(self) -> str:
        return f"{self.team or 'any'}/{self.skill}"


@dataclass(frozen=True, slots=True)
class Roster:
    agents: tuple[Rostered, ...]

    def members(self, pool: Pool) -> list[Rostered]:
        return [
            a
            for a in self.agents
            if a.skill == pool.skill and (pool.team is None or a.team == pool.team)
        ]

    def teams_of(self, skill: str) -> list[str]:
        return sorted({a.team for a in self.agents if a.skill == skill})

    def on_duty(self, pool: Pool, day: date) -> list[Rostered]:
        return [agent for agent in self.members(pool) if agent.works_on(day)]


def standard_agent(rules: CapacityRules, skill: str, *, team: str = "", name: str = "") -> Rostered:
    """An agent of ``skill`` as the rules size one: the staffing a plan says a pool needs."""
    return Rostered(name or f"standard-{skill}", team, skill,
                    _usable(rules.daily_capacity.get(skill, 60), rules),
                    _usable(rules.workday_minutes, rules), rules.weekdays)  # fmt: skip


def _usable(amount: int, rules: CapacityRules) -> float:
    """The share of a day's tasks or minutes the plan counts on (``utilisation``)."""
    return amount * rules.utilisation


def roster_of(rows: Iterable[tuple[str, str | None, dict[str, object], int]],
              rules: CapacityRules) -> Roster:  # fmt: skip
    """The roster from active agents' (username, team, skills, daily capacity): the skill is
    ``skills["mode"]`` (phone when absent), ``skills["weekdays"]`` narrows the working week and
    ``skills["leave"]`` lists ISO days off."""
    agents = []
    for username, team, skills, capacity in rows:
        weekdays = skills.get("weekdays")
        leave = skills.get("leave") or []
        agents.append(Rostered(
            username, team or "", str(skills.get("mode") or "phone"), _usable(capacity, rules),
            _usable(rules.workday_minutes, rules),
            frozenset(int(d) for d in weekdays) if isinstance(weekdays, list) else rules.weekdays,
            frozenset(date.fromisoformat(str(d)) for d in leave) if isinstance(leave, list)
            else frozenset(),
        ))  # fmt: skip
    return Roster(tuple(agents))
