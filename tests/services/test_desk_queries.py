"""The supervisor's desk counted in the database on both backends: agents' load with the
tasks past their deadline, and what waits for approval on the cases a supervisor reaches, a
request made again after an answer waiting anew."""

from __future__ import annotations

from datetime import timedelta

from lienwatch.access.policy import Scope
from lienwatch.access.principal import Principal, Viewer
from lienwatch.followup.model import Role
from lienwatch.store.repositories import UserRepository
from tests.services.test_desk import NOW, desk  # noqa: F401 (the fixture)


def test_the_load_counts_queued_tasks_and_those_past_their_deadline(desk):  # noqa: F811
    service, _ = desk
    loads = {a.username: (a.queued, a.overdue) for a in service.agent_loads(team="east",
                                                                            at=NOW)}  # fmt: skip
    assert loads == {"ann": (1, 0), "bob": (1, 0)}
    late = NOW + timedelta(hours=5)  # both calls' deadlines (NOW + 4 h) have passed
    everyone = service.agent_loads(team=None, at=late)
    assert [(a.username, a.queued, a.overdue) for a in everyone] == [
        ("ann", 1, 1), ("bob", 1, 1), ("wes", 0, 0)]  # most loaded first, then by name


def test_requests_wait_by_team_and_a_new_request_after_an_answer_waits_again(desk, db_session):  # noqa: F811
    service, _ = desk

    def supervisor(name: str) -> Viewer:  # as the API and the console see a supervisor
        user = UserRepository(db_session).get(name)
        return Viewer(Principal(name, user.id, Role.SUPERVISOR, user.team, frozenset(), "login"),
                      Scope.TEAM)  # fmt: skip

    first = service.request_tracker_command(loan_ref="L1", command="immobilise", by="ann",
                                            at=NOW)  # fmt: skip
    UserRepository(db_session).get("bob").team = "west"
    other = service.request_tracker_command(loan_ref="L2", command="fuel_cut", by="bob", at=NOW)
    assert [p.request_id for p in service.pending_tracker_commands()] == [first.id, other.id]
    sam = supervisor("sam")
    assert [p.request_id for p in service.pending_tracker_commands(viewer=sam)] == [first.id]
    [west] = service.pending_tracker_commands(viewer=supervisor("zed"))
    assert (west.loan, west.command, west.requested_by) == ("L2", "fuel_cut", "bob")
    service.approve_tracker_command(request_id=first.id, by="sam", at=NOW)
    later = NOW + timedelta(hours=1)
    again = service.request_tracker_command(loan_ref="L1", command="immobilise", by="ann",
                                            at=later)  # fmt: skip
    assert again.id != first.id
    assert [p.request_id for p in service.pending_tracker_commands(viewer=sam)] == [again.id]
