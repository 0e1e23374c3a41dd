"""Repossession steps as SLA obligations on both backends: the follow-up watchdog escalates a
step nearing its deadline once and records a breach once when it passes (the deadline is not
moved), and coverage counts every step, naming the loan behind a late one."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from lienwatch.followup.strategy import shipped_strategy
from lienwatch.services.followup.coverage import coverage, kpis
from lienwatch.services.repossession import RepossessionService
from lienwatch.store.tables import Action, Repossession
from tests.services.test_repossession import (
    ORDERED_AT,
    book_delinquent_loan,
    order,
    service,
    to_sale,
)

CN = shipped_strategy("cn")


@pytest.fixture
def delinquent(db_session):
    return book_delinquent_loan(db_session)


def step_actions(session, kind: str) -> list[Action]:
    """The watchdog's actions of ``kind`` about repossession steps, in order."""
    rows = session.scalars(select(Action).where(Action.kind == kind).order_by(Action.id))
    return [a for a in rows if "repossession" in a.details]


def recovered(repo: RepossessionService, loan_id: int) -> tuple[Repossession, datetime]:
    """Ordered and approved (rex recovers) at ORDERED_AT, recovered a day later."""
    ordered = order(repo, loan_id)
    repo.approve(repossession_id=ordered.id, by="sam", assignee="rex", at=ORDERED_AT)
    at = ORDERED_AT + timedelta(days=1)
    repo.record_recovery(
        repossession_id=ordered.id, by="rex", at=at, recovered_on=date(2026, 5, 22),
        place="court car park", condition="drivable", property_returned=True,
    )  # fmt: skip
    return ordered, at


def test_a_step_nearing_its_deadline_is_escalated_once_then_breached_once(db_session, delinquent):
    repo = service(db_session)
    ordered, recovered_at = recovered(repo, delinquent.id)
    first = repo.followup.tick(at=recovered_at)  # the loan is repossessed: its triggers resolve
    assert (first.escalated, first.breached) == (0, 0)
    deadline = recovered_at + timedelta(days=3)  # the appraisal's SLA
    offsets = [timedelta(hours=-3), timedelta(hours=-1), timedelta(minutes=-30),
               timedelta(hours=1), timedelta(days=2)]  # fmt: skip
    reports = [repo.followup.tick(at=deadline + offset) for offset in offsets]
    assert [(r.escalated, r.breached) for r in reports] == [(0, 0), (1, 0), (0, 0), (0, 1), (0, 0)]
    [warning] = step_actions(db_session, "escalation")
    assert (warning.outcome, warning.details) == (
        "supervisor", {"repossession": ordered.id, "step": "appraise"},
    )  # fmt: skip
    [breach] = step_actions(db_session, "sla_breach")
    assert breach.details == {"repossession": ordered.id, "step": "appraise", "team": "east"}
    assert breach.case_id == ordered.case_id
    step = repo.open_step(repossession_id=ordered.id)
    assert (step.step, step.warned_at, step.breached_at, step.breach_team, step.deadline_at) == (
        "appraise", deadline - timedelta(hours=1), deadline + timedelta(hours=1), "east", deadline,
    )  # fmt: skip
    [late] = repo.overdue(at=deadline + timedelta(days=2))
    assert (late.repossession_id, late.loan, late.step, late.due_by, late.breached) == (
        ordered.id, "L1", "appraise", deadline, True)
    report = coverage(db_session, as_of=deadline + timedelta(days=2), since=ORDERED_AT, strategy=CN)
    assert [(b.loan, b.kind, b.team) for b in report.breaches if b.repossession_id] == [
        ("L1", "repossession:appraise", "east"),
    ]  # fmt: skip
    # taken at last, the step stays a breach and its action says it was late
    repo.record_appraisal(repossession_id=ordered.id, by="rex", value=5_000_000,
                          appraiser="Beijing Auto Appraisal Co.",
                          at=deadline + timedelta(days=3))  # fmt: skip
    assert repo.timeline(repossession_id=ordered.id)[-1].details["late"] is True
    again = coverage(db_session, as_of=deadline + timedelta(days=4), since=ORDERED_AT, strategy=CN)
    assert [b.kind for b in again.breaches if b.repossession_id] == ["repossession:appraise"]
    assert repo.followup.tick(at=deadline + timedelta(days=4)).breached == 0


def test_a_step_done_late_is_a_breach_in_coverage_naming_the_loan(db_session, delinquent):
    repo = service(db_session)
    ordered = order(repo, delinquent.id)
    approved_at = ORDERED_AT + timedelta(hours=2)
    repo.approve(repossession_id=ordered.id, by="sam", assignee="rex", at=approved_at)
    deadline = approved_at + timedelta(days=14)
    before = coverage(db_session, as_of=deadline - timedelta(days=1), since=ORDERED_AT, strategy=CN)
    assert (before.steps, before.open_steps, before.covered, before.coverage) == (2, 1, 2, 1.0)
    # past the deadline with the step undone: a breach even though no tick saw it
    late = deadline + timedelta(hours=12)
    unseen = coverage(db_session, as_of=late, since=ORDERED_AT, strategy=CN)
    assert [b.kind for b in unseen.breaches] == ["repossession:recover"]
    repo.record_recovery(
        repossession_id=ordered.id, by="rex", at=deadline + timedelta(days=1),
        recovered_on=date(2026, 6, 5), place="Tongzhou", condition="damaged",
        property_returned=False,
    )  # fmt: skip
    as_of = deadline + timedelta(days=2)
    after = coverage(db_session, as_of=as_of, since=ORDERED_AT, strategy=CN)
    [breach] = after.breaches
    assert breach.as_dict() == {
        "loan": "L1", "trigger_id": None, "repossession_id": ordered.id,
        "kind": "repossession:recover", "deadline_at": deadline.isoformat(), "team": "east",
    }  # fmt: skip
    # approve (on time), recover (late), appraise (open, not due yet)
    figures = after.as_dict()
    assert {k: figures[k] for k in ("obligations", "triggers", "repossession_steps",
                                    "open_repossession_steps", "covered")} == {
        "obligations": 3, "triggers": 0, "repossession_steps": 3, "open_repossession_steps": 1,
        "covered": 2,
    }  # fmt: skip
    assert figures["coverage"] == round(2 / 3, 4)
    teams = kpis(db_session, since=ORDERED_AT, as_of=as_of, strategy=CN)["teams"]
    east = teams["east"]["repossession_sla_adherence"]
    assert (east["hits"], east["total"], teams["east"]["sla_breaches"]) == (1, 2, 1)
    assert teams["unassigned"]["repossession_sla_adherence"]["rate"] == 1.0  # the approval


def test_steps_taken_on_time_keep_coverage_at_100_percent(db_session, delinquent):
    repo = service(db_session)
    ordered = order(repo, delinquent.id)
    to_sale(repo, ordered, price=5_000_000)
    posted = ORDERED_AT + timedelta(days=13)
    repo.post_proceeds(repossession_id=ordered.id, by="rex", at=posted)
    repo.write_off(repossession_id=ordered.id, by="sam", at=posted + timedelta(days=1),
                   why="borrower has no other assets")  # fmt: skip
    as_of = posted + timedelta(days=60)
    report = coverage(db_session, as_of=as_of, since=ORDERED_AT, strategy=CN)
    assert (report.steps, report.open_steps, report.covered, report.breaches) == (6, 0, 6, ())
    assert report.coverage == 1.0
    assert repo.open_step(repossession_id=ordered.id) is None
    figures = kpis(db_session, since=ORDERED_AT, as_of=as_of, strategy=CN)
    assert figures["sla_breach_rate"]["rate"] == 0.0
    assert [s.details["late"] for s in repo.timeline(repossession_id=ordered.id)
            if "late" in s.details] == [False] * 6  # fmt: skip
