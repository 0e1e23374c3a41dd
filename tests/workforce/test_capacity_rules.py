"""Capacity forecast and plan as pure rules on scripted workloads: which agent steps a ladder
puts in the horizon, on which day and by which day, how many agents a pool needs, and on whom
a breach falls when it is short."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import date, datetime, timedelta
from importlib.resources import files
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lienwatch.data import china_cities_csv
from lienwatch.followup.model import FollowupError, TriggerKind
from lienwatch.followup.strategy import Segment, shipped_strategy
from lienwatch.workforce.forecast import Horizon, Pending, Work, forecast, project, workload
from lienwatch.workforce.plan import (
    TOLERATED,
    Late,
    breaches,
    decide,
    guard_bound,
    hourly,
    needed,
    schedule,
    split_roster,
)
from lienwatch.workforce.roster import Pool, Rostered, roster_capacity, roster_of, standard_agent
from lienwatch.workforce.rules import capacity_rules, parse_rules
from lienwatch.workforce.travel import TravelRule, derive, parse_table, to_csv

ZONE = ZoneInfo("Asia/Shanghai")
MONDAY = date(2026, 3, 2)
SHIPPED = capacity_rules()
RULES = SHIPPED.model_copy(update={"utilisation": 1.0})  # whole days: round figures
CN = shipped_strategy("cn")


def local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE)


def horizon(days: int = 7) -> Horizon:
    return Horizon(MONDAY, days, ZONE)


def missed(anchor: datetime, **fields) -> Pending:
    ladder = CN.ladder_for(Segment(TriggerKind.MISSED_INSTALLMENT))
    return Pending(ladder, 0, anchor, anchor, True, **fields)


def work(due: date, deadline: date, *, loan: str, exposure: int = 0, skill: str = "field",
         minutes: int = 120) -> Work:  # fmt: skip
    return Work(Pool(None, skill), "visit", "x", 0, due, deadline, minutes, 1.0, loan, None,
                exposure)  # fmt: skip


def test_a_missed_installment_puts_its_agent_call_on_day_five_and_its_visit_on_day_fifteen():
    anchor = local(MONDAY)  # D+1
    works = project(missed(anchor, loan="L1"), Horizon(MONDAY, 20, ZONE), RULES)
    assert [(w.channel, (w.due - MONDAY).days) for w in works] == [("call", 4), ("visit", 14)]
    call = works[0]
    # due at midnight on D+5 with a one-day SLA: done on D+5, the SLA ends before work on D+6
    assert call.pool == Pool(None, "phone") and call.deadline == call.due
    assert call.minutes == 8 and works[1].minutes == 60  # on site: no trip known
    # the visit's round trip to the borrower's city is added to its minutes on site
    far = project(missed(anchor, loan="L1", travel=95), Horizon(MONDAY, 20, ZONE), RULES)
    assert [w.minutes for w in far] == [8, 60 + 2 * 95]


def test_the_horizon_cuts_the_ladder_and_a_repeating_step_comes_back():
    assert [w.channel for w in project(missed(local(MONDAY)), horizon(4), RULES)] == []
    alert = CN.ladder_for(Segment(TriggerKind.COLLATERAL_ALERT, alert_type="device_removed",
                                  delinquent=True))  # fmt: skip
    pending = Pending(alert, 1, local(MONDAY, 9), local(MONDAY), True, loan="L2")
    visits = project(pending, Horizon(MONDAY, 16, ZONE), RULES)
    assert [(w.due - MONDAY).days for w in visits] == [0, 7, 14]  # repeat_every 7d


def test_a_step_due_after_hours_is_taken_the_next_day_and_a_deadline_before_work_the_day_before():
    ladder = CN.ladder_for(Segment(TriggerKind.WELCOME_CALL))
    late = Pending(ladder, 0, local(MONDAY, 19), local(MONDAY, 19), False)
    assert project(late, horizon(), RULES)[0].due == MONDAY + timedelta(days=1)
    # a queued visit due Monday 08:30 whose SLA ends Wednesday 08:30: Monday and Tuesday only
    visit = CN.ladder_for(Segment(TriggerKind.INSPECTION))
    queued = Pending(visit, 0, local(MONDAY, 8, 30), local(MONDAY), False,
                     deadline_at=local(MONDAY + timedelta(days=2), 8, 30))  # fmt: skip
    assert project(queued, horizon(), RULES)[0].deadline == MONDAY + timedelta(days=1)


def test_overdue_work_falls_on_the_first_day_and_expected_work_is_weighted():
    pending = missed(local(MONDAY - timedelta(days=30)), loan="L3", weight=0.25)
    works = forecast([pending], horizon(), RULES)
    assert works and all(w.due >= MONDAY and w.weight == 0.25 for w in works)
    assert workload(works)[("any/phone", "review")] == {MONDAY: 0.25}


def test_a_pool_needs_the_fewest_agents_that_meet_every_deadline():
    # 60 visits due Monday by Tuesday: four a day per agent, two days -> 8 agents
    works = [work(MONDAY, MONDAY + timedelta(days=1), loan=f"L{i}") for i in range(60)]
    agent = standard_agent(RULES, "field")
    assert needed(works, agent, horizon()) == 8
    assert breaches(schedule(works, roster_capacity([agent] * 7), horizon())) == 4
    assert needed([], agent, horizon()) == 0


def test_a_short_pool_breaches_on_the_smallest_exposures():
    works = [work(MONDAY, MONDAY, loan=f"L{i}", exposure=i * 1000) for i in range(6)]
    late = schedule(works, roster_capacity([standard_agent(RULES, "field")]), horizon())
    assert sorted(item.work.loan for item in late) == ["L0", "L1"]
    assert all(item.done is not None and item.done > item.work.deadline for item in late)


def test_minutes_bind_as_well_as_the_task_count():
    # 60 reviews of 15 minutes do not fit one 570-minute day, though the task cap is 60
    reviews = [work(MONDAY, MONDAY, loan=f"R{i}", skill="phone", minutes=15) for i in range(60)]
    assert needed(reviews, standard_agent(RULES, "phone"), horizon()) == 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3), st.sampled_from([8, 15, 30, 150]),
                          st.sampled_from([1.0, 0.5, 0.2, 0.05]), st.integers(0, 5)),
                min_size=1, max_size=120),
       st.sampled_from(["phone", "field"]))  # fmt: skip
def test_the_staffing_needed_is_the_fewest_agents_a_plain_count_finds(drawn, skill):
    # (due day, days to the deadline, minutes, weight, exposure): some bound by the minutes,
    # some by the task count, some by deadlines, some reaching past the horizon's end
    works = [Work(Pool(None, skill), "call", "x", 0, MONDAY + timedelta(days=due),
                  MONDAY + timedelta(days=due + span), minutes, weight, f"L{i}", None, exposure)
             for i, (due, span, minutes, weight, exposure) in enumerate(drawn)]  # fmt: skip
    agent = standard_agent(RULES, skill)
    count = needed(works, agent, horizon(5))  # at least one agent for any work

    def enough(agents: int) -> bool:
        return breaches(schedule(works, roster_capacity([agent] * agents), horizon(5))) < TOLERATED

    assert enough(count) and not any(enough(fewer) for fewer in range(1, count))


def test_the_roster_keeps_weekdays_and_leave():
    roster = roster_of(
        [("a1", "collections-field", {"mode": "field", "weekdays": [0, 1, 2, 3, 4],
                                      "leave": [MONDAY.isoformat()]}, 4),
         ("a2", "collections-phone", {}, 60)], RULES)  # fmt: skip
    field = roster.members(Pool(None, "field"))
    assert [a.username for a in field] == ["a1"]
    capacity = roster_capacity(field)
    assert (capacity.day_minutes(MONDAY), capacity.tasks(MONDAY)) == (0, 0)  # on leave
    tuesday = MONDAY + timedelta(days=1)
    assert (capacity.day_minutes(tuesday), capacity.tasks(tuesday)) == (570, 4)
    assert capacity.tasks(MONDAY + timedelta(days=5)) == 0  # Saturday
    assert [a.skills for a in roster.members(Pool("collections-phone", "phone"))] == [("phone",)]
    assert isinstance(field[0], Rostered)
    # the shipped rules count on 85 % of a day
    assert standard_agent(SHIPPED, "field").tasks == pytest.approx(3.4)


def test_bad_capacity_rules_name_the_key_at_fault():
    good = {"name": "x", "version": 1, "workday_start": "08:30", "workday_end": "18:00",
            "minutes": {"call": 8}, "daily_capacity": {"phone": 60}}  # fmt: skip
    assert parse_rules(good, source="t.toml").workday_minutes == 570
    with pytest.raises(FollowupError, match=r"t\.toml: workday_end must be after"):
        parse_rules({**good, "workday_end": "08:00"}, source="t.toml")
    with pytest.raises(FollowupError, match=r"minutes\.fax"):
        parse_rules({**good, "minutes": {"fax": 3}}, source="t.toml")
    with pytest.raises(FollowupError, match=r"t\.toml: version"):
        parse_rules({**good, "version": 0}, source="t.toml")
    assert RULES.substitution("missed-installment", "visit") is not None


def test_a_short_team_reassigns_to_a_team_with_staff_to_spare_else_substitutes_or_orders():
    east = Work(Pool("east", "phone"), "call", "x", 0, MONDAY, MONDAY, 8, 1.0, "L1", 1, 500)
    visit = work(MONDAY, MONDAY, loan="L2", exposure=900)
    expected = replace(visit, loan=None)  # no task to act on yet
    late = [Late(east, None), Late(visit, None), Late(expected, None)]
    decisions = decide(late, {"phone": ["east", "west"]},
                       lambda w: ["review"] if w.channel == "visit" else None)  # fmt: skip
    assert [(d.kind, d.work.loan, d.detail) for d in decisions] == [
        ("reassign", "L1", {"from_team": "east", "to_team": "west"}),
        ("substitute", "L2", {"channel": "visit", "with": ["review"]}),
    ]  # fmt: skip
    assert decide([Late(visit, None)], {}, lambda w: None)[0].kind == "order"


def test_calls_past_the_guards_daily_cap_breach_whatever_the_staffing():
    calls = [Work(Pool(None, "phone"), "call", "collateral-alert", 1, MONDAY, MONDAY, 8, 1.0,
                  "L1", n, 100 * n) for n in range(1, 5)]  # fmt: skip
    later = replace(calls[0], trigger_id=9, deadline=MONDAY + timedelta(days=1))
    [capped] = guard_bound([*calls, later], 3)
    assert capped.work.trigger_id == 1  # the smallest exposure due that day waits
    assert guard_bound(calls, None) == [] and guard_bound(calls[:3], 3) == []


def test_an_agent_works_their_own_hours_in_their_own_time_zone():
    # Urumqi is two hours behind Beijing: 10:00-18:00 there is 12:00-20:00 business time
    roster = roster_of([("u1", "west", {"hours": "10:00-18:00", "time_zone": "Asia/Urumqi"}, 60),
                        ("b1", "east", {}, 60)], RULES, ZONE)  # fmt: skip
    west, east = roster.agents
    capacity = roster_capacity([west])
    assert capacity.minutes(local(MONDAY, 11), timedelta(hours=1)) == 0
    assert capacity.minutes(local(MONDAY, 19), timedelta(hours=1)) == 60
    assert capacity.minutes(local(MONDAY, 19, 30), timedelta(minutes=30)) == 30
    assert west.day_minutes == 480 and east.hours() == "08:30-18:00 Asia/Shanghai"
    # a call falling due at 18:30 with its SLA ending at 20:00: only the western agent makes it
    call = Work(Pool(None, "phone"), "call", "x", 0, MONDAY, MONDAY, 8, 1.0, "L1", 1, 0,
                local(MONDAY, 18, 30), local(MONDAY, 20))  # fmt: skip
    assert schedule([call], roster_capacity([west]), horizon()) == []
    assert [late.done for late in schedule([call], roster_capacity([east]), horizon())] == [
        MONDAY + timedelta(days=1)]


def test_the_plan_per_hour_names_the_work_falling_due_and_the_agents_on_duty():
    agent = standard_agent(RULES, "phone", zone=ZONE)
    calls = [Work(Pool(None, "phone"), "call", "x", 0, MONDAY, MONDAY, 8, 1.0, f"L{i}", i, 0,
                  local(MONDAY, 9, 10), local(MONDAY + timedelta(days=1)))
             for i in range(3)]  # fmt: skip
    hours = {h.starts: h for h in hourly(calls, [agent, agent], horizon(1))}
    assert hours[local(MONDAY, 9)].due == 3 and hours[local(MONDAY, 9)].on_duty == 2
    assert hours[local(MONDAY, 8)].minutes == 60  # two agents from 08:30
    assert local(MONDAY, 20) not in hours  # nobody on duty, nothing due


def test_bad_roster_entries_name_the_agent_and_the_key():
    for skills, message in (({"hours": "18:00-09:00"}, "end before they start"),
                            ({"hours": "9h"}, "not like 09:00-17:00"),
                            ({"time_zone": "Mars/Olympus"}, "unknown time zone"),
                            ({"weekdays": [7]}, "0 \\(Monday\\) to 6"),
                            ({"per_hour": {"sms": 3}}, "per_hour.sms: not an agent channel"),
                            ({"per_hour": {"call": 0}}, "per_hour.call: 0 is not a number"),
                            ({"modes": ["phone", "drone"]}, "skills: 'drone' is not")):  # fmt: skip
        with pytest.raises(FollowupError, match=f"user a1: .*{message}"):
            roster_of([("a1", "east", skills, 60)], RULES)


def test_the_shipped_travel_table_is_the_documented_rule_on_natural_earth_places():
    places = list(csv.DictReader(china_cities_csv().splitlines()))
    assert to_csv(derive(places, TravelRule())) == (
        files("lienwatch.workforce").joinpath("rules/travel.csv").read_text(encoding="utf-8"))
    table = RULES.travel()
    assert table.one_way("11", "Beijing") == 20  # in town
    assert table.one_way("13", "Dingzhou") == 96 == 20 + round(58.6 * 1.3)  # from Baoding
    assert table.one_way("13", "Chengde") == 180  # 150 km: at most three hours
    assert table.one_way("65", "Nowhere") == table.medians["65"]  # the province's median
    assert table.one_way("13", "定州") == 96  # by its Chinese name
    assert table.one_way(None, None) == RULES.travel_unknown == 40
    with pytest.raises(FollowupError, match=r"t\.csv:2: a row needs province, city"):
        parse_table("province,city,minutes\n11,Beijing,soon\n", unknown=40, source="t.csv")


def calls_due_today(n: int) -> list[Work]:
    """``n`` calls of 8 minutes (the rules') due Monday 08:30, by the end of Monday."""
    return [Work(Pool(None, "phone"), "call", "x", 0, MONDAY, MONDAY, 8, 1.0, f"C{i}", i, 0,
                 local(MONDAY, 8, 30), local(MONDAY + timedelta(days=1)))
            for i in range(n)]  # fmt: skip


def test_an_agents_own_calls_an_hour_set_their_pace_in_the_plan():
    # 570 minutes a day hold 71 calls of 8 minutes; an agent of 10 calls an hour does 95
    calls = calls_due_today(90)
    roster = roster_of([("quick", "east", {"per_hour": {"call": 10}}, 200),
                        ("steady", "east", {}, 200)], RULES, ZONE)  # fmt: skip
    quick, steady = roster.agents
    assert quick.task_minutes("call", RULES) == 6 and steady.task_minutes("call", RULES) == 8
    assert breaches(schedule(calls, roster_capacity([steady.at_pace(calls, RULES)]),
                             horizon(1))) == 19  # fmt: skip
    assert schedule(calls, roster_capacity([quick.at_pace(calls, RULES)]), horizon(1)) == []
    # a visit's trip is everyone's: only the minutes on site go at the agent's pace
    visit = work(MONDAY, MONDAY, loan="V1", minutes=60 + 2 * 30)
    walker = roster_of([("w", "f", {"mode": "field", "per_hour": {"visit": 2}}, 4)], RULES)
    assert walker.agents[0].at_pace([visit], RULES).share == pytest.approx(120 / 90)


def test_an_agent_of_two_skills_works_where_the_single_skill_staff_fall_short():
    # field: 12 visits of 2 hours due Monday by Tuesday, one field agent does 8 of them;
    # phone: 30 calls Monday, far within its one agent's day
    visits = [work(MONDAY, MONDAY + timedelta(days=1), loan=f"V{i}") for i in range(12)]
    works = visits + calls_due_today(30)
    roster = roster_of([("f1", "east", {"mode": "field"}, 4),
                        ("p1", "east", {}, 60),
                        ("both", "east", {"mode": "phone", "modes": ["phone", "field"]}, 60)],
                       RULES, ZONE)  # fmt: skip
    assert [a.username for a in roster.members(Pool(None, "field"))] == ["f1", "both"]
    field_only = roster_capacity([roster.agents[0]])
    assert breaches(schedule(visits, field_only, horizon(2))) == 4
    split = split_roster(roster, works, horizon(2), RULES)
    parts = {(a.username, a.skills[0]): a.fraction for a in split.agents}
    # half a day or more in the field clears the 4 visits; of those splits, three quarters
    # is nearest the field's share of the work (1,440 of 1,680 minutes)
    assert parts == {("f1", "field"): 1.0, ("p1", "phone"): 1.0, ("both", "field"): 0.75,
                     ("both", "phone"): 0.25}  # fmt: skip
    assert schedule(visits, roster_capacity(split.members(Pool(None, "field"))),
                    horizon(2)) == []  # fmt: skip
    assert sum(a.tasks for a in split.agents if a.username == "both") == 60  # none twice
    # 200 calls on Monday: p1 does 71 of them; the agent's whole day on the phone saves 71
    # calls, more than any split saves of calls and visits together
    busy = split_roster(roster, visits + calls_due_today(200), horizon(2), RULES)
    assert {a.skills[0]: a.fraction for a in busy.agents if a.username == "both"} == {
        "phone": 1.0}  # fmt: skip
