"""Repossession and disposal on both backends: the refusals, the steps under their SLAs, the
proceeds posted through servicing (costs first), and the two endings: a deficiency written off,
a surplus returned with the loan settled."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from lienwatch.adapters.senders import LogProvider
from lienwatch.config import RepossessionSettings
from lienwatch.followup.channels import Dispatcher
from lienwatch.followup.compliance import ComplianceGuard
from lienwatch.followup.model import Channel, FollowupError
from lienwatch.followup.strategy import shipped_strategy
from lienwatch.services.followup import FollowupService
from lienwatch.services.ledger import LedgerService, collateral_registrations
from lienwatch.services.repossession import RepossessionService
from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction, write_deferred
from lienwatch.store.tables import (
    Case,
    LedgerEntry,
    Loan,
    LoanSnapshot,
    Payment,
    Repossession,
    User,
)
from tests import factories
from tests.conftest import postgres_database
from tests.services.test_followup_batches import wait_for_a_lock_wait

CATALOGUE = ProductCatalogue()
ORDERED_AT = datetime(2026, 5, 21, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


def service(session) -> RepossessionService:
    strategy = shipped_strategy("cn")
    logged = LogProvider()
    dispatcher = Dispatcher(
        ComplianceGuard(strategy.profile),
        {Channel.SMS: logged, Channel.VOICE: logged, Channel.LETTER: logged},
    )
    followup = FollowupService(
        session, strategy=strategy, dispatcher=dispatcher, catalogue=CATALOGUE
    )
    return RepossessionService.from_settings(session, RepossessionSettings(), followup=followup)


def book_delinquent_loan(session) -> Loan:
    """Loan L1 never paid, its car registered to it (抵押登记): a case opened in February,
    94 days past due on 2026-05-20; ann and rex (agents) and sam (supervisor) of team east."""
    loan = factories.loan(session)
    for name, role in (("ann", "agent"), ("sam", "supervisor"), ("rex", "agent")):
        session.add(User(username=name, display_name=name, role=role, team="east"))
    LedgerService(session).register_collateral(
        vin=loan.vehicle.vin, plate=loan.vehicle.plate, authority="北京市车辆管理所",
        certificate="110000000001", registered_on=date(2026, 1, 14), loan_ref=loan.ref,
        by="sam", at=datetime(2026, 1, 14, 2, tzinfo=UTC),
    )  # fmt: skip
    for day in (date(2026, 2, 15), date(2026, 2, 16)):
        run_nightly(session, CATALOGUE, as_of=day)
    repo = service(session)
    repo.followup.tick(at=datetime(2026, 2, 17, 0, 30, tzinfo=UTC))
    run_nightly(session, CATALOGUE, as_of=date(2026, 5, 20))
    return loan


@pytest.fixture
def delinquent(db_session):
    return book_delinquent_loan(db_session)


def order(repo: RepossessionService, loan_id: int, route: str = "court_order") -> Repossession:
    return repo.order(
        loan_id=loan_id, route=route, legal_ref="(2026)京0105民初123号", by="ann", at=ORDERED_AT,
        why="no payment since disbursement, borrower unreachable",
    )  # fmt: skip


def to_sale(repo: RepossessionService, ordered: Repossession, price: int) -> Repossession:
    """Approved, recovered, 2,100 yuan of costs, appraised and sold on 2026-06-02 for
    ``price``; the nightly run of the evening before the sale has run."""
    at = ORDERED_AT + timedelta(hours=2)
    repo.approve(repossession_id=ordered.id, by="sam", assignee="rex", at=at)
    repo.record_recovery(
        repossession_id=ordered.id, by="rex", at=at + timedelta(days=3),
        recovered_on=date(2026, 5, 24), place="Chaoyang District court car park",
        condition="drivable, rear bumper scratched", property_returned=True,
    )  # fmt: skip
    for kind, amount in (("recovery", 150_000), ("storage", 60_000)):
        repo.add_cost(
            repossession_id=ordered.id, kind=kind, amount=amount, incurred_on=date(2026, 5, 24),
            by="rex", at=at + timedelta(days=4),
        )  # fmt: skip
    repo.record_appraisal(repossession_id=ordered.id, by="rex", at=at + timedelta(days=5),
                          value=price, appraiser="Beijing Auto Appraisal Co.")  # fmt: skip
    run_nightly(repo.session, CATALOGUE, as_of=date(2026, 6, 1))
    return repo.record_sale(
        repossession_id=ordered.id, by="rex", at=at + timedelta(days=12),
        sold_on=date(2026, 6, 2), price=price, buyer="auction lot 17",
    )  # fmt: skip


def payoff(session, loan_id: int) -> int:
    return session.scalar(
        select(LoanSnapshot.payoff).where(
            LoanSnapshot.loan_id == loan_id, LoanSnapshot.as_of == date(2026, 6, 1)
        )
    )


def test_an_order_is_refused_below_the_dpd_floor_and_for_self_help(db_session, delinquent):
    repo = service(db_session)
    with pytest.raises(FollowupError, match="repossession_self_help_forbidden"):
        order(repo, delinquent.id, route="self_help")
    early = datetime(2026, 2, 17, 1, 0, tzinfo=UTC)  # the snapshot of 02-16 says 1 day
    with pytest.raises(FollowupError, match="repossession_below_dpd: 1 days past due, needs 90"):
        repo.order(loan_id=delinquent.id, route="court_order", legal_ref="x", by="ann",
                   at=early, why="too early")  # fmt: skip
    stale = ORDERED_AT + timedelta(days=10)  # the latest run is 11 days old by then
    with pytest.raises(FollowupError, match="repossession_no_recent_snapshot"):
        repo.order(loan_id=delinquent.id, route="court_order", legal_ref="x", by="ann",
                   at=stale, why="stale")  # fmt: skip
    assert db_session.scalar(select(Repossession)) is None


def test_an_order_needs_the_cars_mortgage_registration_in_force(db_session, delinquent):
    LedgerService(db_session).release_collateral(
        vin=delinquent.vehicle.vin, released_on=date(2026, 5, 1), certificate="JY-1", by="sam",
        at=datetime(2026, 5, 1, 2, tzinfo=UTC),
    )  # fmt: skip
    refused = (f"repossession_unregistered_collateral: vehicle {delinquent.vehicle.vin} has no "
               "mortgage registration in force for loan L1 on 2026-05-21")  # fmt: skip
    with pytest.raises(FollowupError, match=refused):
        order(service(db_session), delinquent.id)
    assert db_session.scalar(select(Repossession)) is None


def test_nothing_happens_without_a_supervisors_approval(db_session, delinquent):
    repo = service(db_session)
    ordered = order(repo, delinquent.id)
    assert (ordered.status, ordered.dpd_at_order, ordered.snapshot_on) == (
        "ordered", 94, date(2026, 5, 20),
    )  # fmt: skip
    with pytest.raises(
        FollowupError, match="cannot record the recovery of a repossession that is ordered"
    ):
        repo.record_recovery(repossession_id=ordered.id, by="rex", at=ORDERED_AT,
                             recovered_on=date(2026, 5, 21), place="x", condition="x",
                             property_returned=True)  # fmt: skip
    with pytest.raises(FollowupError, match="repossession_needs_supervisor"):
        repo.approve(repossession_id=ordered.id, by="rex", assignee="rex", at=ORDERED_AT)
    with pytest.raises(
        FollowupError, match="no costs can be added to a repossession that is ordered"
    ):
        repo.add_cost(repossession_id=ordered.id, kind="storage", amount=1, by="rex",
                      incurred_on=date(2026, 5, 21), at=ORDERED_AT)  # fmt: skip
    approved = repo.approve(repossession_id=ordered.id, by="sam", assignee="rex", at=ORDERED_AT)
    case = db_session.get(Case, approved.case_id)
    assert (approved.status, case.status) == ("approved", "repossession")
    step = repo.open_step(repossession_id=approved.id)
    rex = db_session.scalar(select(User.id).where(User.username == "rex"))
    assert (step.step, step.assignee_id, step.started_at, step.deadline_at) == (
        "recover", rex, ORDERED_AT, ORDERED_AT + timedelta(days=14),
    )  # fmt: skip


def test_a_missed_recovery_sla_is_overdue_and_the_late_step_says_so(db_session, delinquent):
    repo = service(db_session)
    ordered = order(repo, delinquent.id)
    repo.approve(repossession_id=ordered.id, by="sam", assignee="rex", at=ORDERED_AT)
    late = ORDERED_AT + timedelta(days=15)
    assert [(s.repossession_id, s.step) for s in repo.overdue(at=late)] == [
        (ordered.id, "recover"),
    ]  # fmt: skip
    assert repo.overdue(at=ORDERED_AT + timedelta(days=13)) == []
    repo.record_recovery(repossession_id=ordered.id, by="rex", at=late,
                         recovered_on=date(2026, 6, 5), place="Tongzhou", condition="damaged",
                         property_returned=False)  # fmt: skip
    steps = repo.timeline(repossession_id=ordered.id)
    assert [(s.outcome, s.details["late"]) for s in steps if "late" in s.details] == [
        ("approve", False), ("recover", True),
    ]  # fmt: skip
    assert delinquent.status == "repossessed"


def test_a_short_sale_pays_costs_first_and_the_deficiency_is_written_off(db_session, delinquent):
    repo = service(db_session)
    ordered = order(repo, delinquent.id)
    to_sale(repo, ordered, price=5_000_000)
    owed = payoff(db_session, delinquent.id)
    split = repo.post_proceeds(
        repossession_id=ordered.id, by="rex", at=ORDERED_AT + timedelta(days=13)
    )
    assert (split.costs_recovered, split.to_loan, split.surplus) == (210_000, 4_790_000, 0)
    assert split.deficiency == owed - 4_790_000 > 0
    payment = db_session.scalar(select(Payment).where(Payment.loan_id == delinquent.id))
    assert (payment.external_id, payment.amount, payment.paid_on) == (
        f"repo:{ordered.id}:proceeds", 4_790_000, date(2026, 6, 2),
    )  # fmt: skip
    write_deferred(db_session)  # the ledger's entries of the acts so far
    [posted] = [json.loads(body) for body in db_session.scalars(
        select(LedgerEntry.body).where(LedgerEntry.kind == "payment_posted"))]  # fmt: skip
    assert (posted["by"], posted["data"]["amount_fen"], posted["data"]["channel"]) == (
        "rex", 4_790_000, "repossession")  # fmt: skip
    assert ordered.status == "deficiency" and delinquent.status == "repossessed"
    with pytest.raises(FollowupError, match="write_off_needs_supervisor"):
        repo.write_off(repossession_id=ordered.id, by="rex", at=ORDERED_AT, why="uncollectable")
    repo.write_off(repossession_id=ordered.id, by="sam", at=ORDERED_AT + timedelta(days=20),
                   why="borrower has no other assets")  # fmt: skip
    assert (ordered.status, delinquent.status, delinquent.operator_status) == (
        "written_off", "written-off", "written-off",
    )  # fmt: skip
    assert db_session.get(Case, ordered.case_id).status == "closed"
    # the nightly run keeps the operator's status over the derived one
    run_nightly(db_session, CATALOGUE, as_of=date(2026, 6, 12))
    assert delinquent.status == "written-off"


def test_a_sale_above_the_payoff_settles_the_loan_and_posting_twice_changes_nothing(
    db_session, delinquent
):
    repo = service(db_session)
    ordered = order(repo, delinquent.id, route="security_enforcement")
    to_sale(repo, ordered, price=13_000_000)
    released = collateral_registrations(db_session, vin=delinquent.vehicle.vin)[-1].released_on
    assert released == date(2026, 6, 2)  # the buyer takes the car free of the mortgage
    owed = payoff(db_session, delinquent.id)
    at = ORDERED_AT + timedelta(days=13)
    split = repo.post_proceeds(repossession_id=ordered.id, by="rex", at=at)
    assert (split.to_loan, split.deficiency) == (owed, 0)
    assert split.surplus == 13_000_000 - 210_000 - owed > 0
    assert (ordered.status, ordered.surplus, delinquent.status) == (
        "surplus_due", split.surplus, "settled",
    )  # fmt: skip
    assert db_session.get(Case, ordered.case_id).status == "closed"
    assert [(s.repossession_id, s.step) for s in repo.overdue(at=at + timedelta(days=8))] == [
        (ordered.id, "return_surplus"),
    ]  # fmt: skip
    again = repo.post_proceeds(repossession_id=ordered.id, by="rex", at=at + timedelta(hours=1))
    assert again == split
    payments = db_session.scalars(select(Payment).where(Payment.loan_id == delinquent.id)).all()
    assert [p.amount for p in payments] == [owed]
    repo.return_surplus(repossession_id=ordered.id, by="sam", at=at + timedelta(days=2),
                        reference="bank transfer 2026060500017")  # fmt: skip
    assert (ordered.status, ordered.surplus_ref, repo.open_step(repossession_id=ordered.id)) == (
        "settled", "bank transfer 2026060500017", None,
    )  # fmt: skip
    assert repo.overdue(at=at + timedelta(days=8)) == []


@pytest.mark.postgres
def test_an_order_waits_for_a_batch_closing_the_case_and_joins_no_closed_case():
    with postgres_database(f"lienwatch_repo_race_{os.getpid()}") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        factory = session_factory(engine)
        with transaction(factory) as session:
            loan_id = book_delinquent_loan(session).id
        refused: list[Exception] = []

        def order_it() -> None:
            try:
                with transaction(factory) as session:
                    order(service(session), loan_id)
            except FollowupError as exc:
                refused.append(exc)

        batch = factory()
        try:
            with batch.begin():
                # The lock a step batch takes on the case it works (FOR UPDATE OF cases),
                # then closes it.
                case = batch.scalar(select(Case).where(Case.loan_id == loan_id)
                                    .with_for_update(of=Case))  # fmt: skip
                case.status = "closed"
                batch.flush()
                other = threading.Thread(target=order_it)
                other.start()
                wait_for_a_lock_wait(engine)
            other.join(timeout=20)
        finally:
            batch.close()
        assert [str(exc) for exc in refused] == [
            f"loan_id: loan {loan_id} has no open follow-up case"]
        with transaction(factory) as session:
            assert session.scalar(select(func.count()).select_from(Repossession)) == 0
        engine.dispose()


def test_a_supervisor_reassigns_a_recovery_and_its_step_on_the_timeline(db_session, delinquent):
    repo = service(db_session)
    ordered = order(repo, delinquent.id)
    repo.approve(repossession_id=ordered.id, by="sam", assignee="rex", at=ORDERED_AT)
    with pytest.raises(FollowupError, match="by: ann is not a supervisor"):
        repo.reassign(repossession_id=ordered.id, to="rex", by="ann", at=ORDERED_AT)
    with pytest.raises(FollowupError, match="to: sam is not an active agent"):
        repo.reassign(repossession_id=ordered.id, to="sam", by="sam", at=ORDERED_AT)
    # the desk's team rule: a supervisor of another team, or an agent of another team, may not
    db_session.add_all([User(username="wes", display_name="wes", role="supervisor", team="west"),
                        User(username="wil", display_name="wil", role="agent", team="west")])
    db_session.flush()
    with pytest.raises(FollowupError, match="to: ann is not in team west of wes"):
        repo.reassign(repossession_id=ordered.id, to="ann", by="wes", at=ORDERED_AT)
    with pytest.raises(FollowupError, match="to: wil is not in team east of sam"):
        repo.reassign(repossession_id=ordered.id, to="wil", by="sam", at=ORDERED_AT)
    later = ORDERED_AT + timedelta(hours=3)
    repo.reassign(repossession_id=ordered.id, to="ann", by="sam", at=later)
    ann = db_session.scalar(select(User.id).where(User.username == "ann"))
    assert ordered.assignee_id == ann
    assert repo.open_step(repossession_id=ordered.id).assignee_id == ann
    [logged] = [s for s in repo.timeline(repossession_id=ordered.id) if s.outcome == "reassigned"]
    assert logged.details == {"repossession": ordered.id, "step": "recover", "from": "rex",
                              "to": "ann"}  # fmt: skip
    # the step's overdue view names its new holder
    assert [s.held_by for s in repo.overdue(at=ORDERED_AT + timedelta(days=15))] == ["ann"]
