"""The roster: who works which skill in which team, in which hours of which days in their own
time zone, on leave when, for how much work a day and an hour."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lienwatch.followup.model import FollowupError
from lienwatch.workforce.rules import CapacityRules

BUSINESS_ZONE = ZoneInfo("Asia/Shanghai")  # an agent's zone when neither they nor the caller say


@dataclass(frozen=True, slots=True)
class Rostered:
    """An agent as the forecast sees them: ``tasks`` a day, working ``start``..``end`` on
    ``weekdays`` in ``zone`` (their own), counted at ``share`` of each minute (the rules'
    utilisation); ``leave`` lists their days off (their own dates)."""

    username: str
    team: str
    skill: str  # phone | field
    tasks: float
    day_minutes: float
    weekdays: frozenset[int] = frozenset(range(7))
    leave: frozenset[date] = field(default_factory=frozenset)
    zone: ZoneInfo = BUSINESS_ZONE
    start: time = time(8, 30)
    end: time = time(18, 0)
    share: float = 1.0

    def works_on(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.leave

    def minutes_in(self, since: datetime, length: timedelta) -> float:
        """The minutes of ``[since, since + length)`` this agent works (times ``share``)."""
        local = since.astimezone(self.zone)
        if not self.works_on(local.date()):
            return 0.0
        opens = datetime.combine(local.date(), self.start, tzinfo=self.zone)
        closes = datetime.combine(local.date(), self.end, tzinfo=self.zone)
        overlap = min(closes, local + length) - max(opens, local)
        return max(overlap.total_seconds(), 0.0) / 60 * self.share

    def hours(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.zone.key}"


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


@dataclass(frozen=True, slots=True)
class PoolCapacity:
    """What a pool's agents can do: minutes in a slot of time, tasks on a business day."""

    agents: Counter[Rostered]

    def minutes(self, since: datetime, length: timedelta) -> float:
        return sum(_minutes_in(a, since, length) * n for a, n in self.agents.items())

    def tasks(self, day: date) -> float:
        return sum(a.tasks * n for a, n in self.agents.items() if a.works_on(day))

    def on_duty(self, since: datetime, length: timedelta) -> int:
        return sum(n for a, n in self.agents.items() if _minutes_in(a, since, length) > 0)

    def day_minutes(self, day: date) -> float:
        return sum(a.day_minutes * n for a, n in self.agents.items() if a.works_on(day))


@functools.lru_cache(maxsize=65_536)
def _minutes_in(agent: Rostered, since: datetime, length: timedelta) -> float:
    """:meth:`Rostered.minutes_in`, kept: a plan asks it of the same agent and slot once
    per staffing it tries."""
    return agent.minutes_in(since, length)


def roster_capacity(agents: Sequence[Rostered]) -> PoolCapacity:
    return PoolCapacity(Counter(agents))


def standard_agent(rules: CapacityRules, skill: str, *, team: str = "", name: str = "",
                   zone: ZoneInfo | None = None) -> Rostered:  # fmt: skip
    """An agent of ``skill`` as the rules size one: the staffing a plan says a pool needs."""
    return Rostered(name or f"standard-{skill}", team, skill,
                    _usable(rules.daily_capacity.get(skill, 60), rules),
                    _usable(rules.workday_minutes, rules), rules.weekdays,
                    zone=zone or BUSINESS_ZONE, start=rules.workday_start,
                    end=rules.workday_end, share=rules.utilisation)  # fmt: skip


def _usable(amount: float, rules: CapacityRules) -> float:
    """The share of a day's tasks or minutes the plan counts on (``utilisation``)."""
    return amount * rules.utilisation


def roster_of(rows: Iterable[tuple[str, str | None, dict[str, Any], int]],
              rules: CapacityRules, zone: ZoneInfo | None = None) -> Roster:  # fmt: skip
    """The roster from active agents' (username, team, skills, daily capacity): the skill is
    ``skills["mode"]`` (phone when absent); ``skills["weekdays"]`` narrows the working week,
    ``skills["leave"]`` lists ISO days off, ``skills["hours"]`` (``"09:00-17:00"``) and
    ``skills["time_zone"]`` give the agent's own working hours and zone (the rules' working
    day in ``zone``, the business zone, when absent)."""
    agents = []
    for username, team, skills, capacity in rows:
        entry = roster_entry(skills, rules, zone, source=f"user {username}")
        start, end = entry["hours"]
        minutes = (datetime.combine(date.min, end) - datetime.combine(date.min, start))
        agents.append(Rostered(
            username, team or "", str(skills.get("mode") or "phone"), _usable(capacity, rules),
            _usable(minutes.total_seconds() / 60, rules), entry["weekdays"], entry["leave"],
            entry["zone"], start, end, rules.utilisation,
        ))  # fmt: skip
    return Roster(tuple(agents))


def roster_entry(skills: dict[str, Any], rules: CapacityRules, zone: ZoneInfo | None,
                 *, source: str) -> dict[str, Any]:  # fmt: skip
    """An agent's working week from their skills' roster keys, checked (FollowupError naming
    the key at fault): ``weekdays``, ``leave``, ``hours``, ``time_zone``."""
    weekdays = skills.get("weekdays")
    leave = skills.get("leave") or []
    try:
        days = (frozenset(int(d) for d in weekdays) if isinstance(weekdays, list)
                else rules.weekdays)  # fmt: skip
        off = frozenset(date.fromisoformat(str(d)) for d in leave)
    except ValueError:
        raise FollowupError(f"{source}: weekdays are 0-6 and leave ISO days") from None
    if not days <= set(range(7)):
        raise FollowupError(f"{source}: weekdays are 0 (Monday) to 6 (Sunday)")
    hours = skills.get("hours")
    start, end = rules.workday_start, rules.workday_end
    if hours:
        try:
            start, end = (time.fromisoformat(part) for part in str(hours).split("-"))
        except ValueError:
            raise FollowupError(f"{source}: hours {hours!r} is not like 09:00-17:00") from None
        if end <= start:
            raise FollowupError(f"{source}: hours {hours!r} end before they start")
    try:
        own = ZoneInfo(skills["time_zone"]) if skills.get("time_zone") else None
    except (ZoneInfoNotFoundError, ValueError):
        raise FollowupError(f"{source}: unknown time zone {skills['time_zone']!r}") from None
    return {"weekdays": days, "leave": off, "hours": (start, end),
            "zone": own or zone or BUSINESS_ZONE}  # fmt: skip
