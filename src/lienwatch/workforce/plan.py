"""The staffing plan: schedule the forecast work of a pool on its agents' days, the earliest
deadline first and, between tasks due by the same day, the largest unsecured exposure first
(so that a breach falls on the smallest exposure); the staffing a pool needs is the fewest
standard agents with no breach."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from lienwatch.workforce.forecast import Horizon, Work
from lienwatch.workforce.roster import Pool, Rostered

EPSILON = 1e-9
MAX_AGENTS = 10_000  # a pool needing more is reported as needing this many
# Expected (fractional) breaches below this much count as none: a forecast of new triggers
# is a rate, not a promise.
TOLERATED = 0.5

Capacity = Callable[[date], tuple[float, float]]  # a day's (minutes, tasks) of a pool


@dataclass(frozen=True, slots=True)
class Late:
    """A forecast breach: ``work`` done on ``done`` past its deadline, or not at all (None)."""

    work: Work
    done: date | None

    def as_dict(self) -> dict[str, object]:
        return {**self.work.as_dict(), "done": self.done.isoformat() if self.done else None}


def schedule(works: Sequence[Work], capacity: Capacity, horizon: Horizon) -> list[Late]:
    """The work of one pool that would break its SLA with ``capacity``: each day the ready
    tasks are taken by deadline, then largest exposure, while the day's minutes and task
    count last."""
    arriving = sorted(works, key=lambda w: w.due)
    ready: list[tuple[date, int, int, Work]] = []
    late, n = [], 0
    for day in horizon.day_list:
        while n < len(arriving) and arriving[n].due <= day:
            work = arriving[n]
            heapq.heappush(ready, (work.deadline, -work.exposure, n, work))
            n += 1
        minutes, tasks = capacity(day)
        skipped = []
        while ready and tasks > EPSILON:
            entry = heapq.heappop(ready)
            work = entry[3]
            if work.minutes * work.weight > minutes + EPSILON or work.weight > tasks + EPSILON:
                skipped.append(entry)  # a shorter task may still fit today
                continue
            minutes -= work.minutes * work.weight
            tasks -= work.weight
            if day > work.deadline:
                late.append(Late(work, day))
        for entry in skipped:
            heapq.heappush(ready, entry)
    late += [Late(entry[3], None) for entry in ready if entry[0] < horizon.end]
    late += [Late(work, None) for work in arriving[n:] if work.deadline < horizon.end]
    return late


def breaches(late: Iterable[Late]) -> float:
    """The expected number of breaches."""
    return sum(item.work.weight for item in late)


def roster_capacity(agents: Sequence[Rostered]) -> Capacity:
    """A day's capacity of ``agents``: their minutes and tasks, if they work that day."""

    def capacity(day: date) -> tuple[float, float]:
        on = [a for a in agents if a.works_on(day)]
        return float(sum(a.day_minutes for a in on)), float(sum(a.tasks for a in on))

    return capacity


def needed(works: Sequence[Work], agent: Rostered, horizon: Horizon) -> int:
    """The fewest agents like ``agent`` with whom ``works`` break no SLA (bisection: more
    agents never break more)."""
    if not works:
        return 0

    def enough(count: int) -> bool:
        return breaches(schedule(works, roster_capacity([agent] * count), horizon)) < TOLERATED

    high = 1
    while not enough(high):
        if high >= MAX_AGENTS:
            return MAX_AGENTS
        high = min(high * 2, MAX_AGENTS)
    low = high // 2  # not enough (or zero)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


def by_pool(works: Iterable[Work]) -> dict[Pool, list[Work]]:
    pools: dict[Pool, list[Work]] = defaultdict(list)
    for work in works:
        pools[work.pool].append(work)
    return dict(pools)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the engine does about a step forecast to breach: ``reassign`` it to a team of the
    skill with staff to spare, ``substitute`` it as the rules allow (a desk review and a GPS
    check instead of a field visit), or ``order`` it after larger exposures so that, if a
    breach cannot be avoided, it falls on the smallest."""

    kind: str
    work: Work
    detail: dict[str, object]


def decide(
    late: Iterable[Late], spare: dict[str, list[str]], substitutes: Callable[[Work], object]
) -> list[Decision]:
    """The decisions for the steps forecast to breach (the loan-bound ones: expected steps
    have no task to act on yet). ``spare`` maps a skill to the teams with agents to spare;
    ``substitutes`` answers the replacement the rules allow for a step, or None."""
    decisions, seen = [], set()
    for item in late:
        work = item.work
        if work.loan is None or (work.trigger_id, work.step, work.due) in seen:
            continue
        seen.add((work.trigger_id, work.step, work.due))
        teams = [t for t in spare.get(work.pool.skill, []) if t != work.pool.team]
        replacement = substitutes(work)
        if work.pool.team is not None and teams:
            decisions.append(Decision("reassign", work, {"from_team": work.pool.team,
                                                         "to_team": teams[0]}))  # fmt: skip
        elif replacement is not None:
            decisions.append(Decision("substitute", work, {"channel": work.channel,
                                                           "with": replacement}))  # fmt: skip
        else:
            decisions.append(Decision("order", work, {"exposure": work.exposure}))
    return decisions


def guard_bound(works: Iterable[Work], calls_per_day: int | None) -> list[Late]:
    """Agent calls to one borrower falling due on one day past the compliance guard's daily
    cap of connected calls, and due by that day: whatever the staffing, the guard makes them
    wait for the next day's window (the largest exposures keep the day's calls)."""
    if calls_per_day is None:
        return []
    calls: dict[tuple[str, date], list[Work]] = defaultdict(list)
    for work in works:
        if work.loan is not None and work.channel == "call":
            calls[(work.loan, work.due)].append(work)
    late = []
    for (_, day), same_day in sorted(calls.items()):
        ordered = sorted(same_day, key=lambda w: (w.deadline, -w.exposure, w.trigger_id or 0))
        late += [Late(work, None) for work in ordered[calls_per_day:] if work.deadline <= day]
    return late
