"""The capacity forecast and staffing plan of the coming days, read from the store: the
workload per pool (team and skill), channel and day, the staffing each pool needs to meet
every SLA beside the staffing it has, and the steps forecast to breach, by loan."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lienwatch.followup.compliance import profile
from lienwatch.followup.model import FollowupError
from lienwatch.followup.strategy import Strategy
from lienwatch.services.followup import FollowupService
from lienwatch.services.workforce.sources import expected_pendings, open_pendings
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.servicing import last_run_day
from lienwatch.store.tables import Task, User
from lienwatch.workforce.forecast import Horizon, Work, forecast, workload
from lienwatch.workforce.plan import (
    EPSILON,
    TOLERATED,
    Hour,
    Late,
    breaches,
    by_pool,
    guard_bound,
    hourly,
    needed,
    pool_members,
    schedule,
    split_roster,
)
from lienwatch.workforce.roster import Pool, Roster, roster_capacity, roster_of, standard_agent
from lienwatch.workforce.rules import CapacityRules, capacity_rules

MAX_DAYS = 62


@dataclass(frozen=True, slots=True)
class PoolPlan:
    """A pool's forecast: its tasks by channel, the agents it has (an agent split between
    skills counted by their part) and needs, the breaches expected with the agents it has."""

    pool: Pool
    tasks: dict[str, float]
    rostered: float
    needed: int
    breaches: float
    hours: tuple[Hour, ...] = ()  # the plan per hour: tasks falling due, agents on duty

    @property
    def headcount(self) -> int | float:
        """The agents it has as a whole number, or to a tenth where part of an agent of
        several skills works in it."""
        whole = round(self.rostered)
        return whole if abs(self.rostered - whole) < EPSILON else round(self.rostered, 1)

    @property
    def shortfall(self) -> int:
        """The standard agents missing, rounded up; none when the roster breaks no SLA (a
        faster agent, or part of an agent of several skills, may do a standard one's work)."""
        if self.breaches < TOLERATED:
            return 0
        return max(0, math.ceil(self.needed - self.rostered - EPSILON))

    def as_dict(self) -> dict[str, Any]:
        return {"pool": self.pool.label, "team": self.pool.team, "skill": self.pool.skill,
                "tasks": {k: round(v, 1) for k, v in self.tasks.items()},
                "rostered": self.headcount, "needed": self.needed,
                "shortfall": self.shortfall,
                "breaches": round(self.breaches, 1),
                "hours": [hour.as_dict() for hour in self.hours]}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CapacityForecast:
    horizon: Horizon
    rules: str
    strategy: str
    pools: tuple[PoolPlan, ...]
    works: tuple[Work, ...]
    late: tuple[Late, ...]  # with the roster as it is: by loan (expected ones carry none)
    guard_bound: tuple[Late, ...] = ()  # calls past the guard's daily cap: no staffing helps
    go_live: bool = False  # the book was never worked: its backlog as the first tick adopts it

    def needed(self, skill: str) -> int:
        return sum(plan.needed for plan in self.pools if plan.pool.skill == skill)

    def tasks(self, pool: str, channel: str, until: date) -> float:
        """Forecast tasks of ``pool`` and ``channel`` falling due before ``until``."""
        return sum(w.weight for w in self.works
                   if w.pool.label == pool and w.channel == channel and w.due < until)  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.horizon.start.isoformat(),
            "days": self.horizon.days,
            "rules": self.rules,
            "strategy": self.strategy,
            "go_live": self.go_live,
            "pools": [plan.as_dict() for plan in self.pools],
            "workload": [
                {
                    "pool": pool,
                    "channel": channel,
                    "days": {day.isoformat(): round(n, 1) for day, n in days.items()},
                }
                for (pool, channel), days in workload(self.works).items()
            ],
            "breaches": [late.as_dict() for late in self.late if late.work.loan],
            "expected_breaches": round(breaches(self.late), 1),
            "guard_bound": [late.as_dict() for late in self.guard_bound],
        }


def capacity_forecast(
    session: Session, *, at: datetime, days: int, strategy: Strategy, rules: CapacityRules,
    catalogue: ProductCatalogue | None = None, time_zone: str = "Asia/Shanghai",
    through: date | None = None,
) -> CapacityForecast:  # fmt: skip
    """The forecast of the ``days`` business days from ``at``'s (in ``time_zone``): the
    triggers open at ``at`` and their ladders, and the triggers expected from the book as the
    nightly run of ``through`` (default: the latest stored) left it, against the active
    agents (the roster as it stands: agents' rosters keep no history)."""
    if not 1 <= days <= MAX_DAYS:
        raise FollowupError(f"days: {days} is not between 1 and {MAX_DAYS}")
    zone = ZoneInfo(time_zone)
    horizon = Horizon(at.astimezone(zone).date(), days, zone)
    latest, travel = last_run_day(session, through=through), rules.travel()
    pendings = open_pendings(session, strategy, latest, travel, at=at) + expected_pendings(
        session, at=at, horizon=horizon, strategy=strategy, latest=latest, travel=travel,
        catalogue=catalogue or ProductCatalogue(), lookback_days=rules.lookback_days)  # fmt: skip
    works = forecast(pendings, horizon, rules)
    roster = split_roster(current_roster(session, rules, zone), works, horizon, rules)
    plans, late = [], []
    for pool, pool_works in sorted(by_pool(works).items(), key=lambda item: item[0].label):
        members = pool_members(roster, pool, pool_works, rules)
        pool_late = schedule(pool_works, roster_capacity(members), horizon)
        tasks: dict[str, float] = defaultdict(float)
        for work in pool_works:
            tasks[work.channel] += work.weight
        standard = standard_agent(rules, pool.skill, zone=zone)
        plans.append(PoolPlan(pool, dict(tasks), sum(agent.fraction for agent in members),
                              needed(pool_works, standard, horizon), breaches(pool_late),
                              hourly(pool_works, members, horizon)))  # fmt: skip
        late += pool_late
    late.sort(key=lambda item: (item.work.deadline, item.work.exposure))
    capped = guard_bound(works, profile(strategy.profile).connected_calls_per_day)
    return CapacityForecast(horizon, rules.label, strategy.label, tuple(plans), tuple(works),
                            tuple(late), tuple(capped))  # fmt: skip


def current_roster(session: Session, rules: CapacityRules, zone: ZoneInfo) -> Roster:
    """The active agents, each in their own hours and zone (``zone``, the business one,
    when their roster entry names none)."""
    rows = session.execute(
        select(User.username, User.team, User.skills, User.daily_capacity)
        .where(User.role == "agent", User.active.is_(True)).order_by(User.username)
    ).all()  # fmt: skip
    return roster_of(((u, t, s or {}, c) for u, t, s, c in rows), rules, zone)


def forecast_accuracy(
    session: Session, *, plan: CapacityForecast, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Forecast tasks against the tasks the engine queued with a due time in
    ``[since, until)``, per pool and channel (the pool named as the forecast names it)."""
    rows = session.execute(
        select(Task.team, Task.skill, Task.channel, func.count())
        .where(Task.due_at >= since, Task.due_at < until)
        .group_by(Task.team, Task.skill, Task.channel)
    ).all()  # fmt: skip
    happened = {(Pool(team, skill).label, channel): n for team, skill, channel, n in rows}
    last = until.astimezone(plan.horizon.zone).date() + timedelta(days=1)
    keys = sorted(set(happened) | {(w.pool.label, w.channel) for w in plan.works})
    measured = []
    for pool, channel in keys:
        forecast_n = plan.tasks(pool, channel, last)
        actual = happened.get((pool, channel), 0)
        measured.append(
            {
                "pool": pool,
                "channel": channel,
                "forecast": round(forecast_n, 1),
                "actual": actual,
                "error": round((forecast_n - actual) / actual, 4) if actual else None,
            }
        )
    return measured


def go_live_forecast(
    service: FollowupService, *, at: datetime, days: int, rules: CapacityRules | None = None
) -> CapacityForecast:
    """The forecast at go-live on an existing book: the backlog adopted as the first tick
    will adopt it, in the caller's transaction, which the caller rolls back to leave the book
    as it was (the demo sizes its team from it before the engine starts)."""
    service.adopt_backlog(at=at)
    service.session.flush()
    return capacity_forecast(
        service.session, at=at, days=days, strategy=service.strategy,
        rules=rules or capacity_rules(), catalogue=service.catalogue, time_zone=service.zone.key,
    )  # fmt: skip


def service_forecast(
    service: FollowupService, *, at: datetime, days: int, rules: CapacityRules
) -> CapacityForecast:
    """:func:`capacity_forecast` with ``service``'s session, strategy, catalogue and zone; on
    a book the engine never worked (just imported), the forecast at go-live: the backlog its
    first tick will adopt counted in, adopted in a savepoint rolled back (``go_live``)."""
    if not service.seen_before():
        savepoint = service.session.begin_nested()
        try:
            return replace(go_live_forecast(service, at=at, days=days, rules=rules),
                           go_live=True)  # fmt: skip
        finally:
            savepoint.rollback()
    return capacity_forecast(
        service.session, at=at, days=days, strategy=service.strategy, rules=rules,
        catalogue=service.catalogue, time_zone=service.zone.key,
    )  # fmt: skip
