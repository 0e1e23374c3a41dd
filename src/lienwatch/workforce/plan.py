"""The staffing plan: schedule the forecast work of a pool on its agents' working hours (in
their own time zones, half an hour at a time), the earliest deadline first and, between tasks
due by the same time, the largest unsecured exposure first (so that a breach falls on the
smallest exposure); the staffing a pool needs is the fewest standard agents with no breach."""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from lienwatch.workforce.forecast import SLOT, Horizon, Work
from lienwatch.workforce.roster import Pool, PoolCapacity, Roster, Rostered, roster_capacity
from lienwatch.workforce.rules import CapacityRules

EPSILON = 1e-9
MAX_AGENTS = 10_000  # a pool needing more is reported as needing this many
# Expected (fractional) breaches below this much count as none: a forecast of new triggers
# is a rate, not a promise.
TOLERATED = 0.5

@dataclass(frozen=True, slots=True)
class Late:
    """A forecast breach: ``work`` done on ``done`` past its deadline, or not at all (None)."""

    work: Work
    done: date | None

    def as_dict(self) -> dict[str, object]:
        return {**self.work.as_dict(), "done": self.done.isoformat() if self.done else None}


def schedule(works: Sequence[Work], capacity: PoolCapacity, horizon: Horizon) -> list[Late]:
    """The work of one pool that would break its SLA with ``capacity``, slot by slot of time
    (``SLOT``): the tasks ready by a slot's end are taken by deadline, then largest exposure,
    while the minutes the agents on duty work in it last (a longer task takes the minutes
    its agents carry from the slots before in one shift) and the business day's task count
    lasts; a task is done at the end of the slot that finishes it."""
    zone = horizon.zone
    arriving = sorted(works, key=lambda w: w.ready(zone))
    longest = max((w.minutes for w in works), default=0)
    ready: list[tuple[datetime, int, int, Work]] = []
    smallest, lightest = _Sorted(), _Sorted()  # ready tasks' minutes × weight, weights
    late: list[Late] = []
    n, day, tasks, bank = 0, None, 0.0, 0.0
    for slot in horizon.slots():
        ends = slot + SLOT
        while n < len(arriving) and arriving[n].ready(zone) < ends:
            work = arriving[n]
            heapq.heappush(ready, (work.by(zone), -work.exposure, n, work))
            smallest.add(work.minutes * work.weight)
            lightest.add(work.weight)
            n += 1
        if horizon.day_of(slot) != day:
            day = horizon.day_of(slot)
            tasks = capacity.tasks(day)
        got = capacity.minutes(slot, SLOT)
        if got <= EPSILON:
            bank = 0.0  # nobody on duty: a shift's minutes do not carry past its end
            continue
        bank += got
        skipped = []
        while ready and tasks > EPSILON:
            if bank + EPSILON < smallest.first() or tasks + EPSILON < lightest.first():
                break  # nothing ready fits: each would be popped, skipped and pushed back
            entry = heapq.heappop(ready)
            work = entry[3]
            need = work.minutes * work.weight
            smallest.remove(need)
            lightest.remove(work.weight)
            if need > bank + EPSILON or work.weight > tasks + EPSILON:
                skipped.append(entry)  # a shorter task may still fit now
                continue
            bank -= need
            tasks -= work.weight
            if ends > entry[0]:
                late.append(Late(work, day))
        for entry in skipped:
            heapq.heappush(ready, entry)
            smallest.add(entry[3].minutes * entry[3].weight)
            lightest.add(entry[3].weight)
        bank = min(bank, max(got, longest))  # idle minutes beyond a task's length are lost
    until = horizon.until()  # work due by the horizon's end and not done is late
    late += [Late(entry[3], None) for entry in ready if entry[0] <= until]
    late += [Late(work, None) for work in arriving[n:] if work.by(zone) <= until]
    return late


class _Sorted:
    """A multiset of numbers kept sorted, for the smallest of them at once."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: list[float] = []

    def add(self, value: float) -> None:
        bisect.insort(self.values, value)

    def remove(self, value: float) -> None:
        del self.values[bisect.bisect_left(self.values, value)]

    def first(self) -> float:
        return self.values[0]


def breaches(late: Iterable[Late]) -> float:
    """The expected number of breaches."""
    return sum(item.work.weight for item in late)


def needed(works: Sequence[Work], agent: Rostered, horizon: Horizon) -> int:
    """The fewest agents like ``agent`` with whom ``works`` break no SLA: tried from a lower
    bound (:func:`_fewest_possible`) in growing steps, then by bisection (more agents never
    break more)."""
    if not works:
        return 0

    if max(w.minutes for w in works) > agent.day_minutes + EPSILON:
        return MAX_AGENTS  # a task longer than a working day: no staffing does it

    def enough(count: int) -> bool:
        return breaches(schedule(works, roster_capacity([agent] * count), horizon)) < TOLERATED

    low = min(_fewest_possible(works, agent, horizon), MAX_AGENTS) - 1  # not enough (or 0)
    step = 1
    high = low + step
    while not enough(high):
        if high >= MAX_AGENTS:
            return MAX_AGENTS
        low, step = high, step * 2
        high = min(low + step, MAX_AGENTS)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


def _fewest_possible(works: Sequence[Work], agent: Rostered, horizon: Horizon) -> int:
    """A lower bound of :func:`needed` (at least 1), so that its search starts near the answer.

    With ``count`` such agents the work done on time uses at most ``count`` times one agent's
    minutes and tasks over the horizon. The work due by the horizon's end that is not done on
    time breaks its SLA: at least its minutes over the longest such task's minutes, and its
    tasks. Fewer agents than this leave ``TOLERATED`` breaches or more whatever the order."""
    capacity, zone, until = roster_capacity([agent]), horizon.zone, horizon.until()
    minutes = sum(capacity.minutes(slot, SLOT) for slot in horizon.slots())
    tasks = sum(capacity.tasks(day) for day in horizon.day_list)
    due = [work for work in works if work.by(zone) <= until]
    if not due or minutes <= EPSILON or tasks <= EPSILON:
        return 1
    longest = max(work.minutes for work in due)
    bounds = (
        (sum(w.minutes * w.weight for w in due) - TOLERATED * longest) / minutes,
        (sum(w.weight for w in due) - TOLERATED) / tasks,
    )  # more agents than each of these are needed: the smallest whole number above it
    return max(1, *(math.floor(bound - 1e-6) + 1 for bound in bounds))


def by_pool(works: Iterable[Work]) -> dict[Pool, list[Work]]:
    pools: dict[Pool, list[Work]] = defaultdict(list)
    for work in works:
        pools[work.pool].append(work)
    return dict(pools)


SPLIT_PARTS = 4  # an agent of several skills is split in quarters of their day


def split_roster(
    roster: Roster, works: Sequence[Work], horizon: Horizon, rules: CapacityRules
) -> Roster:
    """``roster`` with each agent of several skills split between them, so no minute counts
    twice. The single-skill agents stay whole; each agent of several skills in turn (by
    username) works the split of their day, in quarters, that leaves the fewest expected
    breaches in the pools of their skills they may join (beside the agents counted before
    them); between equal splits, the one nearest each skill's share of those pools'
    forecast task-minutes."""
    agents = [agent for agent in roster.agents if len(agent.skills) == 1]
    pools = by_pool(works)
    for agent in sorted((a for a in roster.agents if len(a.skills) > 1),
                        key=lambda a: a.username):  # fmt: skip
        theirs = {pool: pool_works for pool, pool_works in pools.items()
                  if pool.skill in agent.skills and pool.team in (None, agent.team)}  # fmt: skip
        agents += _best_split(agent, agents, theirs, horizon, rules)
    return Roster(tuple(agents))


def _best_split(agent: Rostered, counted: list[Rostered], pools: dict[Pool, list[Work]],
                horizon: Horizon, rules: CapacityRules) -> list[Rostered]:  # fmt: skip
    """The parts of ``agent`` of :func:`split_roster`'s split, beside the ``counted``."""
    wanted = _load_shares(agent.skills, pools)

    def parts(shares: tuple[float, ...]) -> list[Rostered]:
        split = zip(agent.skills, shares, strict=True)
        return [agent.part(skill, share) for skill, share in split if share > 0]

    def cost(shares: tuple[float, ...]) -> tuple[float, float]:
        late = _breaches_in(Roster((*counted, *parts(shares))), pools, horizon, rules)
        return round(late, 6), sum(abs(a - b) for a, b in zip(shares, wanted, strict=True))

    return parts(min(_splits(len(agent.skills)), key=cost))


def _load_shares(skills: tuple[str, ...], pools: dict[Pool, list[Work]]) -> tuple[float, ...]:
    """Each of ``skills``' share of the forecast task-minutes of ``pools`` (equal if none)."""
    load = dict.fromkeys(skills, 0.0)
    for pool, pool_works in pools.items():
        load[pool.skill] += sum(work.minutes * work.weight for work in pool_works)
    total = sum(load.values())
    return tuple(load[skill] / total if total else 1 / len(skills) for skill in skills)


def _splits(skills: int) -> list[tuple[float, ...]]:
    """Every split of a day between ``skills`` skills in whole ``SPLIT_PARTS``ths."""
    return [tuple(n / SPLIT_PARTS for n in counts)
            for counts in itertools.product(range(SPLIT_PARTS + 1), repeat=skills)
            if sum(counts) == SPLIT_PARTS]  # fmt: skip


def _breaches_in(roster: Roster, pools: dict[Pool, list[Work]], horizon: Horizon,
                 rules: CapacityRules) -> float:  # fmt: skip
    """The expected breaches of ``pools`` with ``roster`` (each agent at their pace)."""
    return sum(breaches(schedule(pool_works, pool_capacity(roster, pool, pool_works, rules),
                                 horizon))
               for pool, pool_works in pools.items())  # fmt: skip


def pool_capacity(roster: Roster, pool: Pool, works: Sequence[Work],
                  rules: CapacityRules) -> PoolCapacity:  # fmt: skip
    """What the members of ``pool`` can do of ``works``, each at their own pace."""
    return roster_capacity(pool_members(roster, pool, works, rules))


def pool_members(roster: Roster, pool: Pool, works: Sequence[Work],
                 rules: CapacityRules) -> list[Rostered]:  # fmt: skip
    """The members of ``pool``, each at their own pace on ``works``."""
    return [agent.at_pace(works, rules) for agent in roster.members(pool)]


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


@dataclass(frozen=True, slots=True)
class Hour:
    """An hour of the plan of a pool (business time): the tasks falling due in it, the
    agents on duty and the minutes they work in it."""

    starts: datetime
    due: float
    on_duty: int
    minutes: float

    def as_dict(self) -> dict[str, object]:
        return {"hour": self.starts.isoformat(timespec="minutes"), "due": round(self.due, 1),
                "on_duty": self.on_duty, "minutes": round(self.minutes)}  # fmt: skip


def hourly(works: Iterable[Work], agents: Sequence[Rostered], horizon: Horizon) -> tuple[Hour, ...]:
    """The pool's plan per hour of the horizon: work falling due (overdue work in the first
    hour) beside the agents on duty, each in their own hours and zone; hours with neither
    are left out."""
    due: dict[datetime, float] = defaultdict(float)
    for work in works:
        ready = work.ready(horizon.zone).astimezone(horizon.zone)
        due[ready.replace(minute=0, second=0, microsecond=0)] += work.weight
    capacity = roster_capacity(agents)
    hours = []
    for starts in horizon.slots()[::2]:
        length = 2 * SLOT
        minutes = capacity.minutes(starts, length)
        on_duty = capacity.on_duty(starts, length)
        if due.get(starts) or on_duty:
            hours.append(Hour(starts, due.get(starts, 0.0), on_duty, minutes))
    return tuple(hours)
