"""The reward and penalty scheme (奖惩机制) as rules on values: points per act from a
versioned TOML scheme (``rules/incentives.toml`` is shipped), a team's or a role's own figures
over the scheme's, and the league of a month per agent and team with every point traced to
the act on a case timeline it was earned or lost for. A contact the compliance guard refused
never earns: its reward is void and the refusal costs points of its own.

Schemes are versioned like strategies: the configured file's is in force until a newer
version of its name is published, each published version from its publishing moment until the
next, and every act is scored by the version in force at the moment of the act (a month
already closed keeps its figures when a new version is published)."""

from __future__ import annotations

import bisect
import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from lienwatch.followup.model import FollowupError
from lienwatch.followup.strategy import validated
from lienwatch.workforce.rules import read_toml


class Act(StrEnum):
    CURE = "cure"
    KEPT_PROMISE = "kept_promise"
    RECOVERED_CAR = "recovered_car"
    FIRST_CONTACT_IN_SLA = "first_contact_in_sla"
    SLA_BREACH = "sla_breach"
    COMPLIANCE_REFUSAL = "compliance_refusal"
    BROKEN_PROMISE_MISSED = "broken_promise_missed"
    COMPLAINT_UPHELD = "complaint_upheld"


class Override(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    points: dict[Act, int] = {}


class Scheme(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    version: int = Field(ge=1)
    points: dict[Act, int]
    teams: dict[str, Override] = {}
    roles: dict[str, Override] = {}

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def points_for(self, act: Act, *, team: str, role: str) -> int:
        """The role's figure, else the team's, else the scheme's (0 for an act it omits)."""
        for override in (self.roles.get(role), self.teams.get(team)):
            if override is not None and act in override.points:
                return override.points[act]
        return self.points.get(act, 0)


@dataclass(frozen=True, slots=True)
class Schemes:
    """The scheme versions over time: ``first`` (the configured one) until the first of
    ``published`` (moment of publishing, version; in order), each of those until the next."""

    first: Scheme
    published: tuple[tuple[datetime, Scheme], ...] = ()

    def at(self, moment: datetime) -> Scheme:
        """The version in force at ``moment``."""
        n = bisect.bisect_right(self.published, moment, key=lambda entry: entry[0])
        return self.published[n - 1][1] if n else self.first

    def over(self, since: datetime, until: datetime) -> tuple[Scheme, ...]:
        """The versions in force at some moment of ``[since, until)``, oldest first."""
        later = tuple(scheme for moment, scheme in self.published if since < moment < until)
        return (self.at(since), *later)


@dataclass(frozen=True, slots=True)
class Fact:
    """An act of ``agent`` at ``at`` on case ``case_id``; ``trace`` names the record on the
    case timeline (``action:<id>``, ``repossession:<id>`` …); ``refused`` marks an act the
    compliance guard refused."""

    agent: str
    team: str
    role: str
    act: Act
    at: datetime
    case_id: int
    loan: str
    trace: str
    refused: bool = False


@dataclass(frozen=True, slots=True)
class Point:
    fact: Fact
    points: int
    scheme: str  # the label of the version that scored it

    def as_dict(self) -> dict[str, Any]:
        fact = self.fact
        return {"act": fact.act.value, "points": self.points, "at": fact.at.isoformat(),
                "case_id": fact.case_id, "loan": fact.loan, "trace": fact.trace,
                "scheme": self.scheme}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Standing:
    name: str
    team: str
    total: int
    points: tuple[Point, ...]

    def by_act(self) -> dict[str, int]:
        acts: dict[str, int] = defaultdict(int)
        for point in self.points:
            acts[point.fact.act.value] += point.points
        return dict(sorted(acts.items()))


@dataclass(frozen=True, slots=True)
class League:
    scheme: str  # the labels of the versions in force over the period, oldest first
    agents: tuple[Standing, ...]  # best first
    teams: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "agents": [{"agent": s.name, "team": s.team, "total": s.total, "by_act": s.by_act(),
                        "points": [p.as_dict() for p in s.points]} for s in self.agents],
            "teams": self.teams,
        }  # fmt: skip


def score(fact: Fact, scheme: Scheme) -> int:
    """A fact's points: none for a reward on a refused contact."""
    points = scheme.points_for(fact.act, team=fact.team, role=fact.role)
    return 0 if fact.refused and points > 0 else points


def league(facts: Iterable[Fact], schemes: Schemes, *, since: datetime,
           until: datetime) -> League:  # fmt: skip
    """Each agent's standing (highest total first, then name) and each team's total over
    ``[since, until)``, each fact scored by the version in force at its moment."""
    points: dict[str, list[Point]] = defaultdict(list)
    teams: dict[str, str] = {}
    for fact in sorted(facts, key=lambda f: (f.at, f.trace, f.act.value)):
        scheme = schemes.at(fact.at)
        points[fact.agent].append(Point(fact, score(fact, scheme), scheme.label))
        teams[fact.agent] = fact.team
    standings = sorted(
        (Standing(agent, teams[agent], sum(p.points for p in got), tuple(got))
         for agent, got in points.items()),
        key=lambda s: (-s.total, s.name),
    )  # fmt: skip
    totals: dict[str, int] = defaultdict(int)
    for standing in standings:
        totals[standing.team] += standing.total
    labels = ", ".join(scheme.label for scheme in schemes.over(since, until))
    return League(labels, tuple(standings), dict(sorted(totals.items())))


def month_bounds(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """``YYYY-MM`` as the aware start of that month and of the next in ``zone``."""
    try:
        first = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise FollowupError(f"month: {month!r} is not a month like 2026-11") from None
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return (datetime.combine(first, time(), tzinfo=zone),
            datetime.combine(following, time(), tzinfo=zone))  # fmt: skip


def parse_scheme(data: dict[str, Any], *, source: str) -> Scheme:
    return validated(Scheme, data, source=source)


@functools.cache
def incentive_scheme(path: Path | None = None) -> Scheme:
    """The shipped scheme, or the one in the file at ``path``."""
    data, source = read_toml(path, "incentives.toml")
    return parse_scheme(data, source=source)
