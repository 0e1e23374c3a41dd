"""The desk verbs on both backends: the guard's answer per case, reassignment and who may do
it, what waits for a supervisor, the demo's sharing of open cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from lienwatch.config import FollowupSettings
from lienwatch.errors import ConflictError, NotFoundError
from lienwatch.followup.model import FollowupError, FollowupRefused, TriggerKind
from lienwatch.services.followup import FollowupService
from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.repositories import TeamRepository, UserRepository
from lienwatch.store.tables import Action, Borrower, Case, Task
from tests import factories

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, 02:00 in London


@pytest.fixture
def desk(db_session):
    """Two past-due loans with a queued agent call each: L1 (Shanghai) is ann's, L2 (its
    borrower in London) bob's; sam supervises team east, zed team west."""
    session = db_session
    users = UserRepository(session)
    TeamRepository(session).add(name="east")
    TeamRepository(session).add(name="west")
    for name, role, team in (("ann", "agent", "east"), ("bob", "agent", "east"),
                             ("sam", "supervisor", "east"), ("zed", "supervisor", "west"),
                             ("wes", "agent", "west")):  # fmt: skip
        users.add(username=name, role=role, team=team)
    loans = {ref: factories.loan_fallen_due(session, ref, today=NOW.date()) for ref in ("L1", "L2")}
    session.get_one(Borrower, loans["L2"].borrower_id).time_zone = "Europe/London"
    run_nightly(session, ProductCatalogue(), as_of=NOW.date() - timedelta(days=1))
    service = FollowupService.from_settings(session, FollowupSettings(), time_zone="Asia/Shanghai")
    tasks = {}
    for ref, owner in (("L1", "ann"), ("L2", "bob")):
        trigger = service.raise_trigger(loan_id=loans[ref].id, kind=TriggerKind.MISSED_INSTALLMENT,
                                        source_key=f"t:{ref}", anchor_at=NOW - timedelta(days=5),
                                        at=NOW)  # fmt: skip
        task = Task(key=f"k:{ref}", trigger_id=trigger.id, case_id=trigger.case_id,
                    loan_id=loans[ref].id, step=0, channel="call", skill="phone", team="east",
                    due_at=NOW, deadline_at=NOW + timedelta(hours=4), priority=10,
                    status="queued", assignee_id=users.get(owner).id)  # fmt: skip
        session.add(task)
        session.flush()
        tasks[ref] = task
    return service, tasks


def test_the_guard_answers_per_case_in_the_borrowers_zone(desk):
    service, tasks = desk
    checks = service.case_contact_checks(case_ids=[t.case_id for t in tasks.values()], at=NOW)
    shanghai, london = checks[tasks["L1"].case_id], checks[tasks["L2"].case_id]
    assert (shanghai.allowed, shanghai.rule, shanghai.time_zone) == (True, "ok", "Asia/Shanghai")
    assert (london.allowed, london.rule, london.time_zone) == (False, "quiet_hours",
                                                               "Europe/London")
    assert london.next_allowed_at == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert service.case_contact_checks(case_ids=[tasks["L1"].case_id], at=NOW)[
        tasks["L1"].case_id].allowed  # asking took no permit and recorded nothing


def test_a_supervisor_reassigns_within_the_team_and_the_timeline_says_so(desk, db_session):
    service, tasks = desk
    task = tasks["L2"]
    service.reassign_case(case_id=task.case_id, to="ann", by="sam", at=NOW)
    assert db_session.get_one(Case, task.case_id).assignee_id == task.assignee_id
    [logged] = db_session.scalars(select(Action).where(Action.case_id == task.case_id,
                                                       Action.outcome == "reassigned"))
    assert logged.details == {"tasks": [task.id], "from": "bob", "to": "ann"}
    service.reassign_case(case_id=task.case_id, to="ann", by="sam", at=NOW)  # no change
    assert len(db_session.scalars(select(Action).where(
        Action.case_id == task.case_id, Action.outcome == "reassigned")).all()) == 1
    with pytest.raises(FollowupError, match="by: ann is not a supervisor"):
        service.reassign_case(case_id=tasks["L1"].case_id, to="bob", by="ann", at=NOW)
    with pytest.raises(FollowupError, match="to: wes is not in team east"):
        service.reassign_case(case_id=tasks["L1"].case_id, to="wes", by="sam", at=NOW)
    with pytest.raises(FollowupError, match="not in team west"):
        service.reassign_case(case_id=tasks["L1"].case_id, to="wes", by="zed", at=NOW)


def test_an_agents_tracker_command_waits_for_a_supervisor_until_one_sends_it(desk):
    service, _ = desk
    with pytest.raises(FollowupRefused):
        service.command_tracker(loan_ref="L1", command="immobilise", by="ann", at=NOW)
    [waiting] = service.pending_tracker_commands()
    assert (waiting.loan, waiting.command, waiting.requested_by) == ("L1", "immobilise", "ann")
    service.command_tracker(loan_ref="L1", command="immobilise", by="sam", at=NOW)
    assert service.pending_tracker_commands() == []
    assert service.pending_repossessions() == []


def test_open_cases_without_an_owner_are_shared_out_in_turn(desk, db_session):
    service, tasks = desk
    for task in tasks.values():
        db_session.get_one(Case, task.case_id).assignee_id = None
    assert service.assign_open_cases(agents=["ann", "bob"], at=NOW) == 2
    owners = {db_session.get_one(Case, t.case_id).assignee_id for t in tasks.values()}
    assert len(owners) == 2
    assert service.assign_open_cases(agents=["ann"], at=NOW) == 0  # all have owners now
    loads = {load.username: load.queued for load in service.agent_loads(team="east", at=NOW)}
    assert loads == {"ann": 1, "bob": 1}


def test_a_case_whose_tasks_were_split_goes_whole_to_the_agent_holding_most(desk, db_session):
    service, tasks = desk
    first = tasks["L1"]  # ann holds its call; bob and then ann are given two more of its tasks
    bob = UserRepository(db_session).get("bob")
    for n, holder in enumerate((bob.id, first.assignee_id)):
        db_session.add(Task(key=f"k:L1:{n}", trigger_id=first.trigger_id, case_id=first.case_id,
                            loan_id=first.loan_id, step=n + 1, channel="visit", skill="field",
                            team="east", due_at=NOW, deadline_at=NOW + timedelta(hours=4),
                            priority=5, status="queued", assignee_id=holder))  # fmt: skip
    for task in tasks.values():
        db_session.get_one(Case, task.case_id).assignee_id = None
    db_session.flush()
    assert service.assign_open_cases(agents=["bob", "ann"], at=NOW) == 2
    case = db_session.get_one(Case, first.case_id)
    assert case.assignee_id == first.assignee_id  # ann held two of its three tasks
    held = set(db_session.scalars(select(Task.assignee_id).where(Task.case_id == case.id)))
    assert held == {case.assignee_id}
    [logged] = db_session.scalars(select(Action).where(Action.case_id == case.id,
                                                       Action.outcome == "assigned"))
    assert logged.details["to"] == "ann" and len(logged.details["tasks"]) == 3


def test_a_request_waits_until_a_supervisor_of_the_team_approves_it_once(desk):
    service, _ = desk
    request = service.request_tracker_command(loan_ref="L1", command="immobilise", by="ann",
                                              at=NOW, why="car seen at a pawn yard")  # fmt: skip
    assert (request.outcome, request.note) == ("requested", "car seen at a pawn yard")
    again = service.request_tracker_command(loan_ref="L1", command="immobilise", by="ann",
                                            at=NOW + timedelta(minutes=1))  # fmt: skip
    assert again.id == request.id  # asking twice is one request
    [waiting] = service.pending_tracker_commands()
    assert (waiting.request_id, waiting.requested_by) == (request.id, "ann")
    with pytest.raises(FollowupError, match="by: zed does not supervise team east"):
        service.approve_tracker_command(request_id=request.id, by="zed", at=NOW)
    with pytest.raises(FollowupError, match="by: bob is not a supervisor"):
        service.approve_tracker_command(request_id=request.id, by="bob", at=NOW)
    sent = service.approve_tracker_command(request_id=request.id, by="sam", at=NOW)
    assert (sent.outcome, sent.details["request"]) == ("sent", request.id)
    assert service.pending_tracker_commands() == []
    with pytest.raises(ConflictError, match="answered already"):
        service.decline_tracker_command(request_id=request.id, by="sam", at=NOW, why="late")


def test_a_declined_request_says_why_and_waits_no_more(desk):
    service, _ = desk
    request = service.request_tracker_command(loan_ref="L2", command="fuel_cut", by="bob",
                                              at=NOW)  # fmt: skip
    with pytest.raises(FollowupError, match="why: say why"):
        service.decline_tracker_command(request_id=request.id, by="sam", at=NOW, why=" ")
    declined = service.decline_tracker_command(request_id=request.id, by="sam", at=NOW,
                                               why="the borrower paid by phone")  # fmt: skip
    assert (declined.outcome, declined.note) == ("declined", "the borrower paid by phone")
    assert service.pending_tracker_commands() == []
    with pytest.raises(NotFoundError, match="request_id: no tracker command request"):
        service.approve_tracker_command(request_id=declined.id, by="sam", at=NOW)
    with pytest.raises(FollowupError, match="command: unknown tracker command"):
        service.request_tracker_command(loan_ref="L2", command="explode", by="bob", at=NOW)


def test_a_supervisor_escalates_a_case_with_a_reason(desk, db_session):
    service, tasks = desk
    case_id = tasks["L1"].case_id
    with pytest.raises(FollowupError, match="to: escalate to one of escalated, legal"):
        service.escalate_case(case_id=case_id, to="repossession", by="sam", why="x", at=NOW)
    with pytest.raises(FollowupError, match="by: ann is not a supervisor"):
        service.escalate_case(case_id=case_id, to="escalated", by="ann", why="x", at=NOW)
    case = service.escalate_case(case_id=case_id, to="escalated", by="sam",
                                 why="no contact in 10 days", at=NOW)  # fmt: skip
    assert case.status == "escalated"
    case = service.escalate_case(case_id=case_id, to="legal", by="sam", why="court", at=NOW)
    assert case.status == "legal"
