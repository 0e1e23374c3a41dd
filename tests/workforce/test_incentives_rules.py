"""The reward/penalty scheme on scripted facts: figures per act, a team's and a role's own,
a refused contact earning nothing, months in the business zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from lienwatch.followup.model import FollowupError
from lienwatch.workforce.incentives import (
    Act,
    Fact,
    Schemes,
    incentive_scheme,
    league,
    month_bounds,
    parse_scheme,
    score,
)

ZONE = ZoneInfo("Asia/Shanghai")
SCHEME = incentive_scheme()
NOVEMBER = (datetime(2026, 11, 1, tzinfo=ZONE), datetime(2026, 12, 1, tzinfo=ZONE))


def fact(agent: str, act: Act, day: int, *, team: str = "phone", role: str = "agent",
         refused: bool = False) -> Fact:  # fmt: skip
    return Fact(agent, team, role, act, datetime(2026, 11, day, 10, tzinfo=ZONE), day, f"L{day}",
                f"action:{day}", refused)  # fmt: skip


def test_a_scripted_month_ranks_agents_and_teams_with_each_point_traced():
    facts = [fact("ann", Act.KEPT_PROMISE, 3), fact("ann", Act.CURE, 9),
             fact("bob", Act.SLA_BREACH, 4), fact("bob", Act.FIRST_CONTACT_IN_SLA, 2),
             fact("fay", Act.RECOVERED_CAR, 20, team="collections-field"),
             fact("sam", Act.SLA_BREACH, 5, role="supervisor")]  # fmt: skip
    table = league(facts, Schemes(SCHEME), since=NOVEMBER[0], until=NOVEMBER[1])
    assert [(s.name, s.total) for s in table.agents] == [
        ("fay", 30), ("ann", 15), ("sam", -2), ("bob", -3)]  # fmt: skip
    assert table.teams == {"collections-field": 30, "phone": 10}
    ann = table.agents[1]
    assert [(p.fact.act, p.points, p.fact.trace) for p in ann.points] == [
        (Act.KEPT_PROMISE, 5, "action:3"), (Act.CURE, 10, "action:9")]  # fmt: skip
    assert table.as_dict()["agents"][1]["points"][0]["loan"] == "L3"


def test_a_refused_contact_never_earns_but_its_penalty_stands():
    assert score(fact("ann", Act.FIRST_CONTACT_IN_SLA, 1, refused=True), SCHEME) == 0
    assert score(fact("ann", Act.COMPLIANCE_REFUSAL, 1, refused=True), SCHEME) == -10


def test_months_are_business_months_and_bad_input_is_named():
    since, until = month_bounds("2026-12", ZONE)
    assert (since.isoformat(), until.isoformat()) == (
        "2026-12-01T00:00:00+08:00", "2027-01-01T00:00:00+08:00")  # fmt: skip
    with pytest.raises(FollowupError, match="month: '2026-13'"):
        month_bounds("2026-13", ZONE)
    with pytest.raises(FollowupError, match=r"x\.toml: points\.bonus"):
        parse_scheme({"name": "x", "version": 1, "points": {"bonus": 1}}, source="x.toml")


def test_each_act_is_scored_by_the_version_in_force_at_its_moment():
    second = SCHEME.model_copy(update={"version": 2, "points": {**SCHEME.points, Act.CURE: 40}})
    published = datetime(2026, 11, 15, 9, tzinfo=ZONE)
    schemes = Schemes(SCHEME, ((published, second),))
    facts = [fact("ann", Act.CURE, 9), fact("ann", Act.CURE, 20)]
    table = league(facts, schemes, since=NOVEMBER[0], until=NOVEMBER[1])
    assert [(p.points, p.scheme) for p in table.agents[0].points] == [
        (10, "incentives-default@1"), (40, "incentives-default@2")]  # fmt: skip
    assert table.scheme == "incentives-default@1, incentives-default@2"
    before = league(facts[:1], schemes, since=NOVEMBER[0], until=published)
    assert before.scheme == "incentives-default@1" and before.agents[0].total == 10
    after = league(facts[1:], schemes, since=published, until=NOVEMBER[1])
    assert after.scheme == "incentives-default@2"
