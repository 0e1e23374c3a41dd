"""The capacity forecast and the incentives league on both backends, from a scripted book
and a scripted month of acts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from lienwatch.config import FollowupSettings
from lienwatch.errors import LienwatchError
from lienwatch.followup.model import (
    FollowupError,
    FollowupRefused,
    Outcome,
    PromiseStatus,
    TriggerKind,
)
from lienwatch.services.followup import FollowupService
from lienwatch.services.servicing import run_nightly
from lienwatch.services.users import describe_user, set_roster
from lienwatch.services.workforce.capacity import capacity_forecast
from lienwatch.services.workforce.incentives import incentive_league
from lienwatch.services.workforce.schemes import publish_scheme
from lienwatch.services.workforce.shortfall import act_on_shortfall
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.followup import agent_slot
from lienwatch.store.repositories import TeamRepository, UserRepository
from lienwatch.store.tables import Action, Case, Complaint, Promise, Task, Trigger, User
from lienwatch.workforce.incentives import Act, incentive_scheme, month_bounds
from lienwatch.workforce.rules import capacity_rules
from tests import factories

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture
def book(db_session):
    """Two past-due loans with a queued agent call each, ann's (L1) and bob's (L2)."""
    session = db_session
    users = UserRepository(session)
    TeamRepository(session).add(name="east")
    for name, role in (("ann", "agent"), ("bob", "agent"), ("sam", "supervisor")):
        users.add(username=name, role=role, team="east")
    loans = {ref: factories.loan_fallen_due(session, ref, today=NOW.date()) for ref in ("L1", "L2")}
    run_nightly(session, ProductCatalogue(), as_of=NOW.date() - timedelta(days=1))
    service = FollowupService.from_settings(session, FollowupSettings(), time_zone="Asia/Shanghai")
    tasks = {}
    for ref, owner in (("L1", "ann"), ("L2", "bob")):
        trigger = service.raise_trigger(loan_id=loans[ref].id, kind=TriggerKind.MISSED_INSTALLMENT,
                                        source_key=f"t:{ref}", anchor_at=NOW - timedelta(days=4),
                                        at=NOW)  # fmt: skip
        session.get_one(Case, trigger.case_id).arm = "champion"
        trigger.step = 2  # the agent call of the champion's missed-installment ladder
        trigger.first_deadline_at = NOW + timedelta(days=1)
        task = Task(key=f"k:{ref}", trigger_id=trigger.id, case_id=trigger.case_id,
                    loan_id=loans[ref].id, step=2, channel="call", skill="phone", team=None,
                    due_at=NOW, deadline_at=NOW + timedelta(days=1), priority=10,
                    status="queued", assignee_id=users.get(owner).id, assigned_at=NOW)  # fmt: skip
        session.add(task)
        session.flush()
        tasks[ref] = task
    return service, tasks


def forecast(service, days=7):
    return capacity_forecast(service.session, at=NOW, days=days, strategy=service.strategy,
                             rules=capacity_rules(), time_zone="Asia/Shanghai")  # fmt: skip


def test_the_forecast_counts_the_queued_calls_and_the_agents_who_can_take_them(book):
    service, _ = book
    plan = forecast(service)
    [phone] = [p for p in plan.pools if p.pool.skill == "phone"]
    assert phone.tasks["call"] >= 2 and phone.rostered == 2 and phone.needed == 1
    assert phone.breaches == 0 and plan.needed("phone") == 1
    as_dict = plan.as_dict()
    assert as_dict["from"] == "2026-12-01" and as_dict["days"] == 7
    assert any(row["channel"] == "call" for row in as_dict["workload"])


def test_without_agents_the_forecast_names_the_loans_that_would_breach(book, db_session):
    service, _ = book
    for user in db_session.scalars(select(User).where(User.role == "agent")):
        user.active = False
    plan = forecast(service)
    late = {item.work.loan for item in plan.late if item.work.channel == "call"}
    assert {"L1", "L2"} <= late
    [phone] = [p for p in plan.pools if p.pool.skill == "phone"]
    assert phone.rostered == 0 and phone.shortfall == 1 and phone.breaches >= 2


def test_the_forecast_is_as_of_its_moment(book, db_session):
    """Triggers count from their opening to their resolution: before NOW none was open, and
    L2's, resolved an hour after NOW, counts half an hour after NOW but not two hours after;
    L1's call, done then (the engine moved its trigger to the next step), still waits at its
    step half an hour after NOW."""
    service, tasks = book
    for user in db_session.scalars(select(User).where(User.role == "agent")):
        user.active = False
    done = NOW + timedelta(hours=1)
    db_session.get_one(Trigger, tasks["L2"].trigger_id).resolved_at = done
    tasks["L1"].status, tasks["L1"].done_at = "done", done
    db_session.get_one(Trigger, tasks["L1"].trigger_id).step = 3
    db_session.flush()

    def late_calls(at):
        plan = capacity_forecast(service.session, at=at, days=7, strategy=service.strategy,
                                 rules=capacity_rules(), time_zone="Asia/Shanghai")  # fmt: skip
        return {(item.work.loan, item.work.step) for item in plan.late
                if item.work.channel == "call" and item.work.loan}  # fmt: skip

    assert late_calls(NOW - timedelta(days=5)) == set()
    assert {("L1", 2), ("L2", 2)} <= late_calls(NOW + timedelta(minutes=30))
    later = late_calls(NOW + timedelta(hours=2))
    assert not any(loan == "L2" for loan, _ in later) and ("L1", 2) not in later


def test_a_scripted_month_makes_a_traced_league(book, db_session):
    service, tasks = book
    at = NOW + timedelta(hours=1)
    action = service.record_outcome(
        task_id=tasks["L1"].id,
        by="ann",
        at=at,
        outcome=Outcome.PROMISE_TO_PAY,
        promised_on=at.date() + timedelta(days=2),
        amount=100_000,
    )
    promise = db_session.scalar(select(Promise).where(Promise.action_id == action.id))
    promise.status, promise.decided_at = PromiseStatus.KEPT, at + timedelta(days=2)
    # bob let L2's call run past its deadline: the watchdog's breach is on the timeline
    trigger = db_session.get_one(Trigger, tasks["L2"].trigger_id)
    service._log(db_session.get_one(Case, trigger.case_id), "sla_breach",
                 NOW + timedelta(days=1, hours=1), None, outcome="supervisor",
                 details={"trigger": trigger.id, "team": "east"})  # fmt: skip
    # bob calls L2 at night: the guard refuses, and the refusal costs him
    night = NOW + timedelta(hours=14)  # 00:00 in Shanghai
    with pytest.raises(FollowupRefused):
        service.record_outcome(task_id=tasks["L2"].id, by="bob", at=night,
                               outcome=Outcome.NO_ANSWER)  # fmt: skip
    db_session.add(Complaint(case_id=action.case_id, loan_id=tasks["L1"].loan_id,
                             received_at=at + timedelta(days=3),
                             received_by=db_session.scalar(select(User.id).where(
                                 User.username == "sam")),
                             category="conduct", channel="phone", summary="rude",
                             resolved_at=at + timedelta(days=5), upheld=True))  # fmt: skip
    db_session.flush()
    since, until = month_bounds("2026-12", service.zone)
    table = incentive_league(db_session, since=since, until=until, scheme=incentive_scheme())
    standings = {s.name: s for s in table.agents}
    assert standings["ann"].by_act() == {
        "complaint_upheld": -20,
        "first_contact_in_sla": 2,
        "kept_promise": 5,
    }
    assert standings["bob"].by_act() == {"compliance_refusal": -10, "sla_breach": -5}
    assert [s.name for s in table.agents] == ["ann", "bob"]
    assert table.teams == {"east": -28}
    traces = {p.fact.act.value: p.fact.trace for p in standings["ann"].points}
    assert traces["kept_promise"] == f"action:{action.id}"
    breach = db_session.scalar(select(Action.id).where(Action.kind == "sla_breach"))
    assert {p.fact.trace.split(":")[0] for p in standings["bob"].points} == {"action", "ledger"}
    assert f"action:{breach}" in {p.fact.trace for p in standings["bob"].points}
    # November saw none of it
    since, until = month_bounds("2026-11", service.zone)
    assert incentive_league(db_session, since=since, until=until,
                            scheme=incentive_scheme()).agents == ()  # fmt: skip


def test_on_a_shortfall_the_engine_substitutes_a_visit_and_orders_the_rest(book, db_session):
    """Nobody in the field: L1's queued D+15 visit becomes a desk review as the rules allow;
    L2's call (no substitute, no other team) goes by exposure; each on the timeline."""
    service, tasks = book
    tasks["L1"].channel, tasks["L1"].skill = "visit", "field"
    db_session.get_one(Trigger, tasks["L1"].trigger_id).step = 4  # the champion's visit
    tasks["L1"].step = 4
    for user in db_session.scalars(select(User).where(User.role == "agent")):
        user.active = False
    rules = capacity_rules()
    acted = act_on_shortfall(service, plan=forecast(service), rules=rules, at=NOW)
    assert acted.substituted == 1 and acted.reassigned == 0 and acted.ordered >= 1
    assert tasks["L1"].status == "cancelled"
    [review] = db_session.scalars(select(Task).where(Task.key == f"{tasks['L1'].key}:sub"))
    assert (review.channel, review.skill, review.status) == ("review", "phone", "queued")
    plans = {a.outcome: a for a in db_session.scalars(select(Action).where(Action.kind == "plan"))}
    assert plans["substitute"].details["with"] == ["gps_check", "review"]
    assert plans["order"].details["task"] == tasks["L2"].id
    # decided once: a second pass takes no decision twice
    again = act_on_shortfall(service, plan=forecast(service), rules=rules, at=NOW)
    assert again.substituted == 0 and again.ordered == 0


def test_an_agents_roster_entry_shapes_the_plan_per_hour(book, db_session):
    """``set_roster``: bob works 14:00-20:00 in Urumqi (16:00-22:00 business time) on
    weekdays; the plan per hour counts him on duty then, and a bad entry is refused whole."""
    service, _ = book
    set_roster(db_session, username="bob", hours="14:00-20:00", time_zone="Asia/Urumqi",
               weekdays=[0, 1, 2, 3, 4], leave=["2026-12-25"])  # fmt: skip
    with pytest.raises(FollowupError, match="user bob: unknown time zone 'Mars/Olympus'"):
        set_roster(db_session, username="bob", time_zone="Mars/Olympus")
    with pytest.raises(LienwatchError, match="username: sam is not an agent"):
        set_roster(db_session, username="sam", hours="09:00-17:00")
    for capacity in (0, 1001):  # the bounds a new user's capacity has
        with pytest.raises(LienwatchError, match=f"--capacity: {capacity} is not within 1-1000"):
            set_roster(db_session, username="bob", capacity=capacity)
    bob = db_session.scalar(select(User).where(User.username == "bob"))
    assert bob.skills["time_zone"] == "Asia/Urumqi"  # the refused change left nothing
    [phone] = [p for p in forecast(service).pools if p.pool.skill == "phone"]
    on_duty = {hour.starts.hour: hour.on_duty for hour in phone.hours
               if hour.starts.date() == NOW.date()}  # fmt: skip
    assert on_duty[9] == 1 and on_duty[17] == 2 and on_duty[21] == 1  # ann; both; bob
    assert sum(hour.due for hour in phone.hours) >= 2  # the two queued calls


def test_an_agent_of_both_skills_removes_the_field_shortfall(book, db_session):
    """L1's queued visit has no field agent: a breach forecast; ann (phone and field, 12
    calls an hour) takes it, her day going where the staff fall short, and the roster
    entry is stored and shown as the forecast read it."""
    service, tasks = book
    tasks["L1"].channel, tasks["L1"].skill, tasks["L1"].step = "visit", "field", 4
    db_session.get_one(Trigger, tasks["L1"].trigger_id).step = 4
    [short] = [p for p in forecast(service).pools if p.pool.skill == "field"]
    assert short.rostered == 0 and short.shortfall >= 1 and short.breaches >= 1
    set_roster(db_session, username="ann", skills=["phone", "field"], capacity=40,
               per_hour={"call": 12})  # fmt: skip
    row = describe_user(db_session.scalar(select(User).where(User.username == "ann")))
    assert (row["skill"], row["skills"], row["capacity"], row["per_hour"]) == (
        "phone", ["phone", "field"], 40, {"call": 12})  # fmt: skip
    plan = forecast(service)
    [field] = [p for p in plan.pools if p.pool.skill == "field"]
    [phone] = [p for p in plan.pools if p.pool.skill == "phone"]
    # part of ann's day goes to the field, the rest stays on the phone with bob
    assert (field.breaches, field.shortfall, phone.breaches) == (0, 0, 0)
    assert 0 < field.rostered <= 1 and field.rostered + phone.rostered == 2
    assert "L1" not in {item.work.loan for item in plan.late}
    with pytest.raises(FollowupError, match="user ann: skills: 'drone' is not one of"):
        set_roster(db_session, username="ann", skills=["drone"])
    # the engine's assignment lets her take field tasks too
    ann = db_session.scalar(select(User).where(User.username == "ann"))
    assert agent_slot(ann, 0).skills == {"phone", "field"}


def test_a_published_scheme_version_scores_from_its_moment_on(book, db_session):
    """ann's first contact (Dec 1) is scored by the configured version, her kept promise
    (Dec 3) by version 2 published on Dec 2; publishing version 3 in January leaves
    December's league as it was. Only an analyst or administrator publishes, upwards."""
    service, tasks = book
    UserRepository(db_session).add(username="nia", role="analyst", team=None)
    at = NOW + timedelta(hours=1)
    action = service.record_outcome(task_id=tasks["L1"].id, by="ann", at=at,
                                    outcome=Outcome.PROMISE_TO_PAY,
                                    promised_on=at.date() + timedelta(days=2),
                                    amount=100_000)  # fmt: skip
    promise = db_session.scalar(select(Promise).where(Promise.action_id == action.id))
    promise.status, promise.decided_at = PromiseStatus.KEPT, at + timedelta(days=2)
    configured = incentive_scheme()
    second = {**configured.model_dump(mode="json"), "version": 2,
              "points": {**configured.model_dump(mode="json")["points"], "kept_promise": 50,
                         "first_contact_in_sla": 30}}  # fmt: skip
    publish_scheme(db_session, document=second, configured=configured, by="nia",
                   at=at + timedelta(days=1))  # fmt: skip
    december = month_bounds("2026-12", service.zone)

    def league_of_december():
        return incentive_league(db_session, since=december[0], until=december[1],
                                scheme=configured).as_dict()  # fmt: skip

    before = league_of_december()
    [ann] = before["agents"]
    assert before["scheme"] == "incentives-default@1, incentives-default@2"
    assert {p["act"]: (p["points"], p["scheme"]) for p in ann["points"]} == {
        "first_contact_in_sla": (configured.points[Act.FIRST_CONTACT_IN_SLA],
                                 "incentives-default@1"),
        "kept_promise": (50, "incentives-default@2")}  # fmt: skip
    third = {**second, "version": 3, "points": {**second["points"], "kept_promise": 500}}
    for who, when, document, error in (
        ("ann", NOW + timedelta(days=40), third, "ann \\(role agent\\) may not publish"),
        ("nia", at, third, "published at"),
        ("nia", NOW + timedelta(days=40), second, "publish a version above 2"),
        ("nia", NOW + timedelta(days=40), {**third, "name": "other"}, "not 'other'"),
    ):  # fmt: skip
        with pytest.raises(LienwatchError, match=error):
            publish_scheme(db_session, document=document, configured=configured, by=who,
                           at=when)  # fmt: skip
    publish_scheme(db_session, document=third, configured=configured, by="nia",
                   at=NOW + timedelta(days=40))  # fmt: skip
    assert league_of_december() == before
    january = month_bounds("2027-01", service.zone)
    assert incentive_league(db_session, since=january[0], until=january[1],
                            scheme=configured).scheme == (  # version 2 until Jan 10, then 3
        "incentives-default@2, incentives-default@3")  # fmt: skip
