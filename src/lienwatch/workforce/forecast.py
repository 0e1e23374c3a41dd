"""The workload forecast: walk each open (or expected) trigger's ladder over the horizon and
list the agent steps that fall due, each in the pool that may take it, on the business day it
falls due and the day its SLA ends. Automatic steps cost no agent time and are skipped."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from lienwatch.followup.steps import next_step
from lienwatch.followup.strategy import LadderSpec
from lienwatch.workforce.roster import Pool
from lienwatch.workforce.rules import CapacityRules

SLOT = timedelta(minutes=30)  # the plan's unit of time


@dataclass(frozen=True, slots=True)
class Pending:
    """An open trigger, or an expected one (``weight`` its probability, no loan), at step
    ``step`` of ``ladder`` falling due at ``due_at`` (by ``deadline_at`` when known)."""

    ladder: LadderSpec
    step: int
    due_at: datetime
    anchor_at: datetime
    repeats: bool
    loan: str | None = None
    trigger_id: int | None = None
    exposure: int = 0  # unsecured exposure in fen
    weight: float = 1.0
    deadline_at: datetime | None = None
    travel: int = 0  # one way to the borrower's city, in minutes (a visit's trip)


@dataclass(frozen=True, slots=True)
class Work:
    """An agent step forecast to fall due on business day ``due``, to be done by ``deadline``;
    to the minute, ready at ``ready_at`` and due by ``by_at`` (unset: the start of ``due`` and
    the end of ``deadline``)."""

    pool: Pool
    channel: str
    ladder: str
    step: int
    due: date
    deadline: date
    minutes: int
    weight: float
    loan: str | None
    trigger_id: int | None
    exposure: int
    ready_at: datetime | None = None
    by_at: datetime | None = None

    def ready(self, zone: ZoneInfo) -> datetime:
        return self.ready_at or datetime.combine(self.due, time(), tzinfo=zone)

    def by(self, zone: ZoneInfo) -> datetime:
        return self.by_at or datetime.combine(self.deadline + timedelta(days=1), time(),
                                              tzinfo=zone)  # fmt: skip

    def as_dict(self) -> dict[str, object]:
        return {"pool": self.pool.label, "channel": self.channel, "ladder": self.ladder,
                "step": self.step + 1, "due": self.due.isoformat(),
                "deadline": self.deadline.isoformat(), "loan": self.loan,
                "trigger_id": self.trigger_id, "exposure": self.exposure,
                "minutes": round(self.minutes)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Horizon:
    """The business days ``start`` .. ``start + days - 1`` in ``zone``."""

    start: date
    days: int
    zone: ZoneInfo

    @property
    def end(self) -> date:
        return self.start + timedelta(days=self.days)

    @property
    def day_list(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range(self.days)]

    def until(self) -> datetime:
        return datetime.combine(self.end, time(), tzinfo=self.zone)

    def since(self) -> datetime:
        return datetime.combine(self.start, time(), tzinfo=self.zone)

    def slots(self) -> list[datetime]:
        """The starts of the horizon's ``SLOT``-long slots of time (counted on the clock, so
        a day of a daylight-saving change has its true number)."""
        first, last = self.since().astimezone(UTC), self.until().astimezone(UTC)
        return [(first + SLOT * n).astimezone(self.zone) for n in range((last - first) // SLOT)]

    def day_of(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()


def project(pending: Pending, horizon: Horizon, rules: CapacityRules) -> list[Work]:
    """The agent steps of ``pending``'s ladder falling due before the horizon ends (each step
    taken as done the day it falls due, the next at its offset; a repeating ladder repeats
    its last step)."""
    works, index, due = [], pending.step, pending.due_at
    deadline = pending.deadline_at
    until = horizon.until()
    while due < until:
        spec = pending.ladder.steps[index]
        if not spec.channel.automatic:
            first = _business_day(due, rules, horizon)
            minutes = rules.task_minutes(spec.channel.value)
            if spec.channel.value in rules.travel_channels:
                minutes += 2 * pending.travel
            ends = deadline or due + spec.sla
            last = _deadline_day(ends, minutes, rules, horizon)
            by_at = max(ends, _midnight(horizon.start + timedelta(days=1), horizon.zone))
            if spec.sla < rules.spread_from:  # planned on the day it falls due
                last = first
                by_at = _midnight(first + timedelta(days=1), horizon.zone)
            works.append(Work(
                Pool(spec.team, spec.required_skill), spec.channel.value, pending.ladder.name,
                index, first, max(first, last), minutes,
                pending.weight, pending.loan, pending.trigger_id, pending.exposure,
                max(due, horizon.since()), by_at,
            ))  # fmt: skip
        following = next_step(pending.ladder, done=index, anchor_at=pending.anchor_at, at=due,
                              repeats=pending.repeats)  # fmt: skip
        if following is None:
            break
        index, due, deadline = following.index, following.due, None
    return works


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)


def _business_day(at: datetime, rules: CapacityRules, horizon: Horizon) -> date:
    """The working day a step due at ``at`` can be taken: the next day after working hours;
    never before the horizon (overdue work is done first)."""
    local = at.astimezone(horizon.zone)
    day = local.date() + timedelta(days=local.time() >= rules.workday_end)
    return max(day, horizon.start)


def _deadline_day(at: datetime, minutes: int, rules: CapacityRules, horizon: Horizon) -> date:
    """The last working day a step of ``minutes`` due by ``at`` can be done on time (the day
    before when the SLA ends before the task could be done in that day's working hours)."""
    local = at.astimezone(horizon.zone)
    start = rules.workday_start
    earliest_done = start.hour * 60 + start.minute + minutes
    day = local.date() - timedelta(days=local.hour * 60 + local.minute < earliest_done)
    return max(day, horizon.start)


def forecast(pendings: Iterable[Pending], horizon: Horizon, rules: CapacityRules) -> list[Work]:
    """Every agent step of ``pendings`` falling due over ``horizon``."""
    return [work for pending in pendings for work in project(pending, horizon, rules)]


def workload(works: Iterable[Work]) -> dict[tuple[str, str], dict[date, float]]:
    """Expected tasks per (pool, channel) and business day."""
    load: dict[tuple[str, str], dict[date, float]] = defaultdict(lambda: defaultdict(float))
    for work in works:
        load[(work.pool.label, work.channel)][work.due] += work.weight
    return {key: dict(sorted(days.items())) for key, days in sorted(load.items())}
