"""The next step of a case, one definition for the queue and the guard's answer on both
backends: queued tasks before open triggers, the earliest due first, the lowest id on a tie."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lienwatch.access.policy import Scope
from lienwatch.access.principal import Principal, Viewer
from lienwatch.config import FollowupSettings
from lienwatch.followup.model import Role, TriggerKind
from lienwatch.services.followup import FollowupService
from lienwatch.services.lookup import case_queue
from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.followup import next_steps
from lienwatch.store.repositories import TeamRepository, UserRepository
from lienwatch.store.tables import Task, Trigger
from tests import factories

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def _task(session, trigger: Trigger, key: str, channel: str, due_at: datetime) -> Task:
    task = Task(key=key, trigger_id=trigger.id, case_id=trigger.case_id, loan_id=trigger.loan_id,
                step=0, channel=channel, skill="phone", team="east", due_at=due_at,
                deadline_at=due_at + timedelta(hours=4), priority=10, status="queued")  # fmt: skip
    session.add(task)
    session.flush()
    return task


def test_tasks_come_before_triggers_then_the_earliest_then_the_lowest_id(db_session):
    session = db_session
    TeamRepository(session).add(name="east")
    UserRepository(session).add(username="ann", role="agent", team="east")
    loans = {ref: factories.loan_fallen_due(session, ref, today=NOW.date())
             for ref in ("L1", "L2", "L3")}  # fmt: skip
    run_nightly(session, ProductCatalogue(), as_of=NOW.date() - timedelta(days=1))
    service = FollowupService.from_settings(session, FollowupSettings(), time_zone="Asia/Shanghai")

    def trigger(ref: str, kind: TriggerKind, due_at: datetime) -> Trigger:
        raised = service.raise_trigger(loan_id=loans[ref].id, kind=kind, source_key=f"{ref}:{kind}",
                                       anchor_at=NOW - timedelta(days=5), at=NOW)  # fmt: skip
        assert raised is not None
        raised.next_due_at = due_at
        session.flush()
        return raised

    # L1: two tasks due at the same time (the lower id wins) and a trigger due earlier
    t1 = trigger("L1", TriggerKind.MISSED_INSTALLMENT, NOW - timedelta(days=1))
    first = _task(session, t1, "a", "sms", NOW + timedelta(hours=1))
    _task(session, t1, "b", "call", NOW + timedelta(hours=1))
    # L2: no task, two triggers: the one due first
    trigger("L2", TriggerKind.MISSED_INSTALLMENT, NOW + timedelta(hours=5))
    soon = trigger("L2", TriggerKind.LTV_BREACH, NOW + timedelta(hours=2))
    # L3: a trigger resolved: nothing comes next
    t3 = trigger("L3", TriggerKind.MISSED_INSTALLMENT, NOW)
    t3.resolved_at = NOW
    session.flush()

    steps = next_steps(session, [t1.case_id, soon.case_id, t3.case_id])
    assert (steps[t1.case_id].task_id, steps[t1.case_id].channel) == (first.id, "sms")
    step = steps[soon.case_id]
    assert (step.task_id, step.channel, step.trigger_id) == (None, None, soon.id)
    assert (step.trigger_kind, step.due_at) == ("ltv_breach", NOW + timedelta(hours=2))
    assert t3.case_id not in steps

    # the queue shows that step, and the guard is asked about it
    owner = UserRepository(session).get("ann")
    viewer = Viewer(Principal("ann", owner.id, Role.ANALYST, None, frozenset({"read"}), "login"),
                    Scope.ALL)
    queue = {row["case"]: row["next"] for row in case_queue(session, viewer, limit=10)}
    assert queue[t1.case_id]["task"] == first.id
    assert queue[soon.case_id] == {"task": None, "channel": None, "trigger": "ltv_breach",
                                   "due_at": step.due_at, "deadline_at": step.deadline_at}
    assert queue[t3.case_id] is None
    checks = service.case_contact_checks(case_ids=list(queue), at=NOW)
    assert checks[t1.case_id].rule == "ok"  # the SMS in Shanghai at 10:00
    assert checks[soon.case_id].allowed  # an agent's call about the trigger, at 10:00
    assert checks[t3.case_id].allowed is None  # nothing to contact about
