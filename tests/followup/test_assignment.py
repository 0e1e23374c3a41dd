"""Priority and assignment: urgency first, skill and region respected, capacity never exceeded,
the least loaded agent chosen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lienwatch.followup.assignment import (
    AgentSlot,
    QueuedTask,
    assign,
    priority,
    roll_probability,
    staffing_gaps,
    unstaffed,
)

NOW = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)


def agent(id_: int, skill="phone", remaining=2, load=0, regions=(), team="east"):
    return AgentSlot(id_, team, frozenset({skill}), frozenset(regions), frozenset(), remaining,
                     load)  # fmt: skip


def task(id_: int, *, hours: int = 30, prio: int = 0, skill: str = "phone", region: str = ""):
    return QueuedTask(id_, skill, prio, NOW + timedelta(hours=hours), region)


def test_priority_is_unsecured_exposure_times_roll_probability():
    assert roll_probability(0) < roll_probability(5) < roll_probability(45) < roll_probability(200)
    assert priority(unsecured=1_000_000, dpd=5) == 250_000
    assert priority(unsecured=-5, dpd=5) == 0
    with pytest.raises(ValueError, match="dpd"):
        roll_probability(-1)


def test_a_behaviour_score_replaces_the_dpd_bands_probability():
    assert priority(unsecured=1_000_000, dpd=5, roll=0.04) == 40_000  # not 250,000
    assert priority(unsecured=1_000_000, dpd=5, roll=None) == 250_000
    with pytest.raises(ValueError, match=r"roll: must be a probability in \[0, 1\], got 1.5"):
        priority(unsecured=1, dpd=0, roll=1.5)


def test_urgent_tasks_first_then_priority_within_capacity():
    tasks = [task(1, prio=900), task(2, hours=3, prio=1), task(3, prio=500), task(4, prio=10)]
    chosen = assign(tasks, [agent(7, remaining=2)], horizon=NOW + timedelta(days=1))
    assert set(chosen) == {2, 1}  # the task due within the horizon goes first, then the richest


def test_skill_region_and_least_loaded_agent():
    agents = [agent(1, load=3, regions=["11"]), agent(2, load=0), agent(3, skill="field")]
    tasks = [task(1, region="11"), task(2, skill="field"), task(3, region="44")]
    chosen = assign(tasks, agents, horizon=NOW)
    assert chosen[2] == 3  # only the field agent visits
    assert chosen[1] == 2 and chosen[3] == 2  # the idle agent serves every region
    assert assign([task(9, skill="field")], [agent(1)], horizon=NOW) == {}


def test_a_task_goes_to_its_cases_owner_while_they_can_take_it():
    agents = [agent(1, load=9, remaining=1), agent(2, load=0), agent(3, skill="field", load=4)]
    owned = [QueuedTask(n, "phone", 10 - n, NOW, owner=1) for n in (1, 2)]
    visit = QueuedTask(3, "field", 0, NOW, owner=1)  # the owner does not visit
    chosen = assign([*owned, visit, task(4)], agents, horizon=NOW + timedelta(days=1))
    assert chosen[1] == 1  # the owner, though the most loaded
    assert chosen[2] == 2  # the owner's capacity is spent: the least loaded
    assert chosen[3] == 3 and chosen[4] == 2


def test_a_task_for_a_team_goes_only_to_that_team():
    agents = [agent(1, team="east"), agent(2, team="legal-desk", load=5)]
    legal = QueuedTask(1, "phone", 0, NOW, team="legal-desk")
    assert assign([legal, task(2)], agents, horizon=NOW) == {1: 2, 2: 1}


def test_work_no_agent_present_can_take_is_named_by_team_and_skill():
    agents = [agent(1, "phone", remaining=0, regions=("31",)), agent(2, "phone", team="west")]
    tasks = [
        task(10),  # phone, any team, any region: agent 2 can take it (capacity aside)
        task(11, skill="field"),  # nobody visits
        task(12, region="44"),  # agent 2 serves every region
        QueuedTask(13, "phone", 0, NOW, "31", team="north"),  # no phone agent in north
    ]
    stuck = unstaffed(tasks, agents)
    assert [t.id for t in stuck] == [11, 13]
    assert staffing_gaps(stuck) == {"any/field": 1, "north/phone": 1}
    assert unstaffed(tasks, []) == tasks
