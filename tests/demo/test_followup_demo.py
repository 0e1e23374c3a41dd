"""The demo's follow-up stage on a small simulated book: honest figures, earned coverage."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from lienwatch.demo.followup import Team
from lienwatch.demo.response import CONTACTS, REACHED
from lienwatch.demo.run import DemoOptions, run_demo
from lienwatch.followup.strategy import shipped_strategy
from lienwatch.services.followup.coverage import coverage
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Action, Case, ContactAttempt, Payment


def simulate(tmp_path_factory, name: str, team: Team):
    """The demo on a small book with the given team; its follow-up figures and database."""
    folder = tmp_path_factory.mktemp(name)
    options = DemoOptions(loans=150, days=30, seed=5, directory=folder, team=team)
    summary = run_demo(options)
    return make_engine(f"sqlite:///{folder / 'lienwatch.sqlite3'}"), summary["followup"]


def test_a_staffed_team_covers_every_trigger_and_the_figures_are_the_stores(tmp_path_factory):
    engine, summary = simulate(tmp_path_factory, "staffed", Team())
    assert summary["days"] == 13 and summary["triggers"] > 0
    assert summary["coverage"] == 1.0 and summary["breaches"] == []
    team = summary["team"]  # sized from the forecast at go-live
    assert (team["phone_agents"], team["field_agents"]) == (
        max(1, team["needed"]["phone"]), max(1, team["needed"]["field"]))  # fmt: skip
    accuracy = {(row["pool"], row["channel"]): row for row in summary["forecast"]["accuracy"]}
    assert accuracy[("any/phone", "call")]["actual"] > 0
    assert all(row["forecast"] >= 0 for row in accuracy.values())
    assert summary["volumes"]["executed"] > 0 and summary["volumes"]["sms_sent"] > 0
    with transaction(session_factory(engine)) as session:
        agent_work = session.scalar(
            select(func.count())
            .select_from(Action)
            .where(Action.performed_by.is_not(None), Action.kind.in_(["call", "visit", "review"]))
        )
        refused = session.scalar(select(func.count()).select_from(ContactAttempt).where(
            ContactAttempt.allowed.is_(False)))  # fmt: skip
    agents = summary["kpis"]["agents"]
    assert agent_work == sum(a["contacts"] for a in agents.values()) + summary["volumes"].get(
        "agent_review", 0
    )
    assert refused == summary["volumes"]["refused"]
    assert {"cure_rate_by_bucket", "champion_challenger", "roll_rates"} <= set(summary["kpis"])
    assert_responses_follow_recorded_contacts(engine, summary["borrower_responses"])


def assert_responses_follow_recorded_contacts(engine, counts: dict[str, int]) -> None:
    """Every payment the contact-response model posted follows a conversation an agent
    recorded on the loan's case on or before its value date, and there are as many as the
    summary says."""
    with transaction(session_factory(engine)) as session:
        paid = session.execute(select(Payment.loan_id, Payment.paid_on).where(
            Payment.external_id.like("%-R%"))).all()  # fmt: skip
        reached = session.execute(
            select(Case.loan_id, func.min(Action.performed_at)).join(Case)
            .where(Action.performed_by.is_not(None), Action.kind.in_(CONTACTS),
                   Action.outcome.in_(REACHED)).group_by(Case.loan_id)).all()  # fmt: skip
    first_reached = {loan: at.date() for loan, at in reached}
    assert len(paid) == counts["response_payments"] <= counts["responded"]
    assert counts["responded"] <= counts["cases_reached"]
    assert sum(counts["responded_by_arm"].values()) == counts["responded"]
    assert all(loan in first_reached and first_reached[loan] <= on for loan, on in paid)


def test_without_agents_coverage_falls_and_every_breach_names_its_loan(tmp_path_factory):
    engine, summary = simulate(tmp_path_factory, "unstaffed", Team(phone_agents=0, field_agents=0))
    assert summary["coverage"] < 1
    assert summary["breaches"] and all(b["loan"].startswith("L") for b in summary["breaches"])
    period = {k: datetime.fromisoformat(v) for k, v in summary["period"].items()}
    with transaction(session_factory(engine)) as session:
        recount = coverage(session, **period, strategy=shipped_strategy("cn"))
    assert recount.coverage == summary["coverage"]
    assert [b.as_dict() for b in recount.breaches] == [
        {k: v for k, v in b.items() if k != "exposure"} for b in summary["breaches"]]
    # each breach carries its loan's unsecured exposure (where the breaches fell)
    assert all(isinstance(b["exposure"], int) for b in summary["breaches"])
    automatic = summary["volumes"]["executed"]
    assert automatic > 0  # reminders and automated calls still went out without staff
    # no agent reached anyone, so no borrower paid because of a conversation
    assert summary["borrower_responses"] == {
        "cases_reached": 0, "responded": 0, "response_payments": 0,
        "responded_by_arm": {"champion": 0, "challenger": 0}}  # fmt: skip
