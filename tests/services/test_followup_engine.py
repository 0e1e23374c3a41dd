"""The follow-up engine on both backends: triggers from the servicing outbox and alerts, the
guard in the loop, agent queues and outcomes, promises, cures, the watchdog and coverage."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from lienwatch.adapters.senders import LocalSmsGateway, LogProvider
from lienwatch.errors import NotFoundError
from lienwatch.followup.channels import Dispatcher
from lienwatch.followup.compliance import ComplianceGuard
from lienwatch.followup.model import Channel, FollowupError, Outcome
from lienwatch.followup.strategy import parse_strategy, shipped_strategy
from lienwatch.services.followup import FollowupService
from lienwatch.services.followup.coverage import coverage, kpis
from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.repositories import PaymentRepository, UserRepository
from lienwatch.store.tables import Action, Alert, Case, ContactAttempt, Promise, Task, Trigger, User
from tests import factories

CN = shipped_strategy("cn")
SHANGHAI = ZoneInfo("Asia/Shanghai")
CATALOGUE = ProductCatalogue()
MORNING = datetime(2026, 2, 17, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai, the day after D+1


def user(session, name: str, role: str = "agent", mode: str = "phone", team: str = "east"):
    row = User(
        username=name,
        display_name=name.title(),
        role=role,
        team=team,
        skills={"mode": mode},
        daily_capacity=60,
    )
    session.add(row)
    session.flush()
    return row


def service(session, strategy: str = "cn") -> tuple[FollowupService, LocalSmsGateway]:
    gateway = LocalSmsGateway()
    guard = ComplianceGuard(shipped_strategy(strategy).profile)
    logged = LogProvider()
    dispatcher = Dispatcher(
        guard, {Channel.SMS: gateway, Channel.VOICE: logged, Channel.LETTER: logged}
    )
    return FollowupService(
        session, strategy=shipped_strategy(strategy), dispatcher=dispatcher, catalogue=CATALOGUE
    ), gateway


@pytest.fixture
def missed(db_session):
    """Loan L1 missed its first installment (due 2026-02-15): M0 → M1 in the outbox."""
    loan = factories.loan(db_session)
    for day in (date(2026, 2, 15), date(2026, 2, 16)):
        run_nightly(db_session, CATALOGUE, as_of=day)
    return loan


def actions(session, kind: str) -> list[Action]:
    return list(session.scalars(select(Action).where(Action.kind == kind).order_by(Action.id)))


def test_a_missed_installment_opens_a_case_and_the_sms_goes_out_once(db_session, missed):
    engine, gateway = service(db_session)
    report = engine.tick(at=MORNING)
    assert report.raised["missed_installment"] == 1 and report.cases_opened == 1
    case = db_session.scalar(select(Case).where(Case.loan_id == missed.id))
    assert (case.status, case.strategy, case.stratum) == ("in_progress", "cn-default@3", "M1")
    [sms] = actions(db_session, "sms")
    assert sms.outcome == "delivered" and len(gateway.sent) == 1
    trigger = db_session.scalar(select(Trigger).where(Trigger.kind == "missed_installment"))
    assert trigger.first_action_at == MORNING <= trigger.first_deadline_at
    assert trigger.step == 1
    assert [(a.details["from"], a.details["to"]) for a in actions(db_session, "status")] == [
        (None, "new"),
        ("new", "in_progress"),
    ]
    again = engine.tick(at=MORNING)
    assert not again.raised and again.executed == 0 and len(gateway.sent) == 1


def test_quiet_hours_defer_the_sms_and_the_refusal_is_recorded(db_session, missed):
    engine, gateway = service(db_session)
    # The engine went live on the 15th, before the installment fell due, so the missed
    # installment is raised from its bucket change, anchored at 08:00 on the 17th.
    assert engine.tick(at=datetime(2026, 2, 15, 4, 0, tzinfo=UTC)).adopted == 0
    night = datetime(2026, 2, 17, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    trigger_time = engine.tick(at=night)
    assert trigger_time.refused >= 1 and not gateway.sent
    refusal = db_session.scalar(select(ContactAttempt).where(ContactAttempt.allowed.is_(False)))
    assert refusal.rule == "quiet_hours"
    assert refusal.next_allowed_at == datetime(2026, 2, 18, 0, 0, tzinfo=UTC)
    engine.tick(at=refusal.next_allowed_at)
    assert len(gateway.sent) == 1


def advance_to_agent_call(db_session, engine) -> Task:
    """Tick through the automatic steps until the agent call is queued and assigned."""
    for hours in range(0, 24 * 6, 8):
        engine.tick(at=MORNING + timedelta(hours=hours))
        task = db_session.scalar(select(Task).where(Task.status == "queued"))
        if task is not None and task.assignee_id is not None:
            return task
    raise AssertionError("no agent call was queued")


def test_an_agents_queue_holds_only_their_queued_tasks_and_an_unknown_agent_is_refused(
    db_session, missed
):
    ann = user(db_session, "ann")
    user(db_session, "zoe", mode="field")  # no call is hers
    engine, _ = service(db_session)
    task = advance_to_agent_call(db_session, engine)
    assert task.assignee_id == ann.id
    assert [t.id for t in engine.queue(agent="ann")] == [task.id]
    assert engine.queue(agent="zoe") == []
    task.status = "done"
    assert engine.queue(agent="ann") == []
    with pytest.raises(NotFoundError, match="agent: no user 'zed'"):
        engine.queue(agent="zed")


def test_agent_records_a_promise_which_is_broken_and_becomes_a_trigger(db_session, missed):
    ann = user(db_session, "ann")
    engine, _ = service(db_session)
    task = advance_to_agent_call(db_session, engine)
    assert task.assignee_id == ann.id and task.channel == "call"
    assert [t.id for t in engine.queue(agent="ann")] == [task.id]
    at = task.due_at + timedelta(hours=2)
    with pytest.raises(FollowupError, match="amount: a promise to pay needs"):
        engine.record_outcome(
            task_id=task.id,
            by="ann",
            at=at,
            outcome="promise_to_pay",
            promised_on=at.date() + timedelta(days=3),
        )
    assert db_session.scalar(select(func.count()).select_from(Promise)) == 0
    action = engine.record_outcome(
        task_id=task.id,
        by="ann",
        at=at,
        outcome="promise_to_pay",
        promised_on=at.date() + timedelta(days=3),
        amount=500_000,
    )
    assert action.performed_by == ann.id and task.status == "done"
    call_attempt = db_session.scalar(select(ContactAttempt).where(ContactAttempt.channel == "call"))
    assert call_attempt.connected and call_attempt.conversation
    # Its day over and no tick to decide it, the promise is owed a follow-up: uncovered.
    later = at + timedelta(days=5)
    uncovered = coverage(db_session, as_of=later, strategy=CN).uncovered
    [owed] = [u for u in uncovered if u.kind == "promise"]
    assert owed.loan == "L1" and owed.detail.endswith("not decided")
    engine.tick(at=later)
    promise = db_session.scalar(select(Promise))
    assert promise.status == "broken"
    assert db_session.scalar(select(Trigger).where(Trigger.kind == "broken_promise")) is not None
    assert coverage(db_session, as_of=later, strategy=CN).uncovered == ()


def test_a_kept_promise_and_a_cure_close_the_case_with_the_reason(db_session, missed):
    user(db_session, "ann")
    engine, _ = service(db_session)
    task = advance_to_agent_call(db_session, engine)
    at = task.due_at + timedelta(hours=1)
    engine.record_outcome(
        task_id=task.id,
        by="ann",
        at=at,
        outcome=Outcome.PROMISE_TO_PAY,
        promised_on=at.date() + timedelta(days=1),
        amount=300_000,
    )
    PaymentRepository(db_session).record(
        loan=missed, external_id="BANK-1", paid_on=at.date(), amount=900_000
    )
    run_nightly(db_session, CATALOGUE, as_of=at.date())
    engine.tick(at=at + timedelta(days=2))
    assert db_session.scalar(select(Promise)).status == "kept"
    case = db_session.scalar(select(Case).where(Case.loan_id == missed.id))
    missed_trigger = db_session.scalar(select(Trigger).where(Trigger.kind == "missed_installment"))
    assert missed_trigger.resolution == "loan current"
    open_left = db_session.scalar(
        select(func.count())
        .select_from(Trigger)
        .where(Trigger.case_id == case.id, Trigger.resolved_at.is_(None))
    )
    assert (case.status == "closed") == (open_left == 0)
    if case.status == "closed":
        assert "loan current" in case.close_reason
    # The payment that kept the promise bounces: an abnormal payment with its rule.
    reversed_at = at + timedelta(days=3)
    PaymentRepository(db_session).reverse(external_id="BANK-1", reason="bounced",
                                          at=reversed_at)  # fmt: skip
    engine.tick(at=reversed_at + timedelta(hours=1))
    anomaly = db_session.scalar(select(Trigger).where(Trigger.kind == "payment_anomaly"))
    promise = db_session.scalar(select(Promise))
    assert anomaly.details["rule"] == "REVERSAL_AFTER_KEPT_PROMISE"
    assert (anomaly.details["promise_id"], anomaly.details["reason"]) == (promise.id, "bounced")


def test_an_unworked_agent_step_is_escalated_then_breached_and_named_in_coverage(
    db_session, missed
):
    engine, _ = service(db_session)  # no agents at all: the call step cannot be done
    advance = MORNING
    while advance < MORNING + timedelta(days=6):
        engine.tick(at=advance)
        advance += timedelta(hours=2)
    assert actions(db_session, "escalation"), "the watchdog warns before the deadline"
    breach = actions(db_session, "sla_breach")[0]
    assert breach.outcome == "supervisor" and breach.details["team"] == "unassigned"
    report = coverage(db_session, as_of=advance, strategy=CN)
    assert report.coverage < 1
    assert {b.loan for b in report.breaches} == {"L1"}
    assert db_session.get(Case, breach.case_id).status == "escalated"
    figures = kpis(db_session, since=MORNING - timedelta(days=1), as_of=advance, strategy=CN)
    assert figures["teams"]["unassigned"]["sla_breaches"] >= 1


def test_an_absent_agents_queue_is_reassigned(db_session, missed):
    ann, bob = user(db_session, "ann"), user(db_session, "bob")
    engine, _ = service(db_session)
    task = advance_to_agent_call(db_session, engine)
    holder = ann if task.assignee_id == ann.id else bob
    other = bob if holder is ann else ann
    UserRepository(db_session).set_active(holder.username, False)
    engine.tick(at=task.due_at + timedelta(minutes=5))
    db_session.refresh(task)
    assert task.assignee_id == other.id


def test_device_removed_on_a_delinquent_loan_goes_to_an_agent_within_an_hour(db_session, missed):
    user(db_session, "ann")
    engine, _ = service(db_session)
    engine.tick(at=MORNING)
    raised = MORNING + timedelta(hours=2)
    db_session.add(
        Alert(
            type="device_removed",
            severity="critical",
            status="open",
            vehicle_id=missed.vehicle_id,
            loan_id=missed.id,
            started_at=raised,
            raised_at=raised,
            evidence={},
        )
    )
    db_session.flush()
    engine.tick(at=raised + timedelta(minutes=5))
    trigger = db_session.scalar(select(Trigger).where(Trigger.kind == "collateral_alert"))
    assert trigger.ladder == "device-removed-delinquent"
    assert trigger.first_deadline_at == raised + timedelta(hours=1)
    task = db_session.scalar(select(Task).where(Task.trigger_id == trigger.id))
    assert task.channel == "call" and task.assignee_id is not None
    case = db_session.get(Case, trigger.case_id)
    assert case.status == "escalated"


def test_a_tracker_alarm_is_followed_up_at_once_not_at_the_next_tick(db_session, missed):
    """``raise_for_alerts`` (the live monitor's alarms): the trigger the tick would raise, now;
    nothing before the engine's first tick (it adopts the backlog) or a second time."""
    engine, _ = service(db_session)
    raised = MORNING + timedelta(hours=2)
    alarm = Alert(key="V:power_cut:1", type="power_cut", severity="critical", status="open",
                  vehicle_id=missed.vehicle_id, loan_id=missed.id, started_at=raised,
                  raised_at=raised, evidence={})  # fmt: skip
    db_session.add(alarm)
    db_session.flush()
    assert engine.raise_for_alerts(["V:power_cut:1"], at=raised) == []  # before go-live
    engine.tick(at=MORNING)
    [trigger] = engine.raise_for_alerts(["V:power_cut:1", "unknown"], at=raised)
    assert (trigger.kind, trigger.alert_id, trigger.opened_at) == (
        "collateral_alert", alarm.id, raised
    )
    assert engine.raise_for_alerts(["V:power_cut:1"], at=raised) == []


def test_a_visit_without_a_recording_is_rejected_under_cn(db_session, missed):
    user(db_session, "ann")
    engine, _ = service(db_session)
    task = advance_to_agent_call(db_session, engine)
    task.channel = "visit"  # the same queue entry, as a field visit
    with pytest.raises(FollowupError, match="recording_ref"):
        engine.record_outcome(task_id=task.id, by="ann", at=task.due_at, outcome="rpc")
    assert task.status == "queued" and not actions(db_session, "visit")
    engine.record_outcome(
        task_id=task.id,
        by="ann",
        at=task.due_at + timedelta(hours=1),
        outcome="rpc",
        recording_ref="rec://visit/1",
    )
    assert actions(db_session, "visit")[0].details["recording_ref"] == "rec://visit/1"


def test_status_changes_follow_the_machine_and_tracker_commands_need_a_supervisor(
    db_session, missed
):
    engine, _ = service(db_session)
    engine.tick(at=MORNING)
    case = db_session.scalar(select(Case))
    with pytest.raises(FollowupError, match="cannot go from in_progress to legal"):
        engine.change_status(case_id=case.id, status="legal", by=None, why="x", at=MORNING)
    user(db_session, "sam", role="supervisor")
    engine.change_status(
        case_id=case.id, status="escalated", by="sam", why="large exposure", at=MORNING
    )
    last = actions(db_session, "status")[-1]
    assert (last.note, last.details["to"], last.performed_by) == (
        "large exposure",
        "escalated",
        db_session.scalar(select(User.id).where(User.username == "sam")),
    )
    with pytest.raises(FollowupError, match="needs_supervisor"):
        engine.command_tracker(loan_ref=missed.ref, command="fuel_cut", by=None,
                              at=MORNING)
    sent = engine.command_tracker(
        loan_ref=missed.ref, command="fuel_cut", by="sam", at=MORNING
    )
    assert sent.outcome == "sent"


def letter_first_strategy():
    """The shipped ``cn`` strategy with the D+1 text of every missed-installment ladder
    replaced by a dunning letter."""
    text = resources.files("lienwatch.followup").joinpath("strategies/cn.toml").read_text("utf-8")
    sms_first = 'trigger = "missed_installment"\nescalate_to = "supervisor"\nsteps = [\n'
    sms_first += '  { channel = "sms"'
    assert sms_first in text
    letter_first = sms_first.replace('"sms"', '"letter"')
    return parse_strategy(tomllib.loads(text.replace(sms_first, letter_first)), source="test")


def test_a_letter_step_is_posted_to_the_address_on_file_even_at_night(db_session, missed):
    printer = LocalSmsGateway()  # the print-and-mail house's queue
    strategy = letter_first_strategy()
    dispatcher = Dispatcher(
        ComplianceGuard(strategy.profile),
        {Channel.LETTER: printer, Channel.SMS: LocalSmsGateway(), Channel.VOICE: LogProvider()},
    )
    engine = FollowupService(
        db_session, strategy=strategy, dispatcher=dispatcher, catalogue=CATALOGUE
    )
    engine.tick(at=datetime(2026, 2, 17, 15, 0, tzinfo=UTC))  # 23:00 in Shanghai
    [letter] = printer.sent.values()
    assert letter.to == "北京市朝阳区建国路 88 号"
    [action] = actions(db_session, "letter")
    assert action.outcome == "delivered"
    assert not db_session.scalar(select(ContactAttempt).where(ContactAttempt.allowed.is_(False)))


def test_a_strategy_channel_without_a_provider_is_refused_at_start_up(db_session):
    strategy = shipped_strategy("cn")
    dispatcher = Dispatcher(ComplianceGuard(strategy.profile), {Channel.SMS: LocalSmsGateway()})
    message = r"providers: strategy cn-default@3 sends letter, voice but no provider"
    with pytest.raises(FollowupError, match=message):
        FollowupService(db_session, strategy=strategy, dispatcher=dispatcher)


def test_a_go_live_in_mid_period_leaves_the_inspection_for_its_last_call(db_session):
    """A loan 500 days old at go-live owes its second inspection before day 730: not at once
    (every field agent out on the first morning) but on the latest day that still leaves
    the visit its 14-day SLA in the period; coverage names it once that day passed unraised."""
    go_live = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    disbursed = date(2025, 1, 17)  # 500 days before go-live
    loan = factories.loan(db_session, disbursed_on=disbursed)
    engine, _ = service(db_session)
    engine.tick(at=go_live)
    kinds = set(db_session.scalars(select(Trigger.kind).where(Trigger.loan_id == loan.id)))
    assert "inspection" not in kinds
    last_call = disbursed + timedelta(days=730 - 14)
    eve = datetime.combine(last_call, time(), tzinfo=SHANGHAI) - timedelta(hours=1)
    assert not [u for u in coverage(db_session, as_of=eve, strategy=CN).uncovered
                if u.kind == "inspection"]  # fmt: skip
    day_over = eve + timedelta(hours=25)  # the last call's day over with no tick: named
    [owed] = [u for u in coverage(db_session, as_of=day_over, strategy=CN).uncovered
              if u.kind == "inspection"]  # fmt: skip
    assert owed.loan == "L1" and f"owed before {disbursed + timedelta(days=730)}" in owed.detail
    engine.tick(at=eve + timedelta(hours=11))  # 10:00 of the last call's day
    [inspection] = db_session.scalars(select(Trigger).where(Trigger.kind == "inspection"))
    assert inspection.source_key == f"inspection:{loan.id}:1"
    assert inspection.details["owed_before"] == (disbursed + timedelta(days=730)).isoformat()
    assert inspection.deadline_at.date() <= disbursed + timedelta(days=730)
    assert not [u for u in coverage(db_session, as_of=day_over, strategy=CN).uncovered
                if u.kind == "inspection"]  # fmt: skip
