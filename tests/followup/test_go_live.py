"""Go-live on an existing book, as a lender does it with the CLI: import, the nightly run, the
first tick. Every past-due loan gets a follow-up, coverage counts what the book owes (not
what was raised) and names a loan left without one, and the next tick raises it."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from lienwatch.sim.generate import SimConfig, generate
from lienwatch.sim.write import write_portfolio
from lienwatch.store.db import make_engine
from lienwatch.store.tables import Action, Alert, Loan, LoanSnapshot, Task, Trigger
from tests.test_cli import run

GO_LIVE = "2026-11-01T10:00:00+08:00"
DAY_END = "2026-11-02T00:00:00+08:00"  # of go-live day
ROUTINE = ("tracker_review", "inspection")
DELINQUENCY = ("missed_installment", "bucket_change", "broken_promise")


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    """The files of a 300-loan book with history up to 2026-11-01 (the simulator's)."""
    folder = tmp_path_factory.mktemp("book")
    write_portfolio(generate(SimConfig(loans=300, days=14, seed=21)), folder, positions=False)
    return folder


@pytest.fixture
def imported(store_url, book, tmp_path) -> tuple[str, dict[str, str]]:
    """The book imported into a database of the test's own (each backend) and serviced up to
    2026-11-01: (url, environment of the commands)."""
    env = {"LIENWATCH_DATABASE_URL": store_url}
    cli(tmp_path, env, "import", *(f"--{name}={book / name}.csv" for name in
        ("borrowers", "vehicles", "devices", "loans", "payments")))  # fmt: skip
    cli(tmp_path, env, "servicing", "run", "--as-of", "2026-11-01")
    return store_url, env


def cli(cwd: Path, env: dict[str, str], *args: str) -> str:
    result = run(*args, cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def stripped_tracker(url: str) -> str:
    """An open device-removed alert since 20 October on a loan that pays on time; its ref."""
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        late = select(LoanSnapshot.loan_id).where(LoanSnapshot.dpd > 0)
        loan = session.scalars(select(Loan).where(Loan.id.not_in(late)).order_by(Loan.id)).first()
        started = datetime(2026, 10, 20, 3, 0, tzinfo=UTC)
        session.add(Alert(type="device_removed", severity="critical", vehicle_id=loan.vehicle_id,
                          loan_id=loan.id, started_at=started, raised_at=started))  # fmt: skip
        ref = loan.ref
    engine.dispose()
    return ref


def scalars(url: str, query) -> list:
    engine = make_engine(url)
    with Session(engine) as session:
        found = list(session.scalars(query))
    engine.dispose()
    return found


def past_due(url: str) -> set[str]:
    return set(scalars(url, select(Loan.ref).join(LoanSnapshot, LoanSnapshot.loan_id == Loan.id)
                       .where(LoanSnapshot.as_of == date(2026, 11, 1), LoanSnapshot.dpd > 0)))


def followed(url: str) -> set[str]:
    """Loans with an open delinquency trigger."""
    return set(scalars(url, select(Loan.ref).join(Trigger, Trigger.loan_id == Loan.id)
                       .where(Trigger.resolved_at.is_(None), Trigger.kind.in_(DELINQUENCY))))


def test_the_first_tick_on_an_imported_book_follows_every_past_due_loan(imported, tmp_path):
    url, env = imported
    owed = past_due(url)
    assert len(owed) > 20  # the book has its share of arrears
    alarmed = stripped_tracker(url)
    # Before go-live coverage sees every one of them, from the book.
    before = json.loads(cli(tmp_path, env, "followup", "coverage", "--json"))
    assert before["as_of"] == "2026-11-02T16:00:00+00:00"  # the day after the last nightly run
    assert {u["loan"] for u in before["uncovered"] if u["kind"] == "past_due"} == owed
    assert [u["loan"] for u in before["uncovered"] if u["kind"] == "alert"] == [alarmed]
    checks = Counter(u["kind"] for u in before["uncovered"] if u["kind"] in ROUTINE)
    assert checks["tracker_review"] > 0  # checks of periods that began before go-live
    assert before["obligations"] == len(owed) + 1 + checks.total() and before["coverage"] == 0
    # A dry run says what go-live will raise and raises nothing.
    dry = json.loads(cli(tmp_path, env, "followup", "adopt", "--at", GO_LIVE, "--dry-run",
                         "--json"))  # fmt: skip
    overdue = sum(dry["raised"].get(kind, 0) for kind in ROUTINE)
    assert overdue > 0  # those whose last call is go-live day
    assert (dry["dry_run"], dry["adopted"]) == (True, len(owed) + 1 + overdue)
    assert followed(url) == set()

    tick = run("followup", "tick", "--at", GO_LIVE, "--json", cwd=tmp_path, env=env)
    assert tick.returncode == 0, tick.stderr
    report = json.loads(tick.stdout)
    assert report["adopted"] == len(owed) + 1 + overdue and report["uncovered"] == 0
    assert sum(report["raised"].get(kind, 0) for kind in DELINQUENCY) == len(owed)
    assert report["raised"]["collateral_alert"] == 1
    assert f"go-live: {len(owed) + 1 + overdue} follow-ups adopted" in tick.stderr
    # Nobody is staffed yet: the work that waits for an agent is said, not left silent.
    assert report["assigned"] == 0 and sum(report["unstaffed"].values()) > 0
    assert "unstaffed: queued tasks no active agent can take" in tick.stderr
    assert followed(url) == owed

    after = json.loads(cli(tmp_path, env, "followup", "coverage", "--at", DAY_END, "--json"))
    assert after["uncovered"] == [] and after["breaches"] == []
    assert len(after["at_risk"]) == sum(report["unstaffed"].values())
    again = json.loads(cli(tmp_path, env, "followup", "adopt", "--at", GO_LIVE, "--json"))
    assert again["adopted"] == 0  # nothing is adopted twice
    # Each stuck task has a notice on its case's timeline for the supervisor, once.
    cli(tmp_path, env, "followup", "tick", "--at", "2026-11-01T11:00:00+08:00")
    assert len(notices(url)) == sum(report["unstaffed"].values())
    assert all("agent can take task" in note for note in notices(url))


def notices(url: str) -> list[str]:
    return scalars(url, select(Action.note).where(Action.kind == "notice"))


def test_a_loan_that_lost_its_follow_up_is_named_and_raised_again(imported, tmp_path):
    url, env = imported
    cli(tmp_path, env, "followup", "tick", "--at", GO_LIVE)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        trigger = session.scalars(select(Trigger).where(Trigger.kind.in_(DELINQUENCY))
                                  .order_by(Trigger.id)).first()  # fmt: skip
        lost = session.get_one(Loan, trigger.loan_id).ref
        session.execute(delete(Task).where(Task.trigger_id == trigger.id))
        session.execute(delete(Trigger).where(Trigger.id == trigger.id))  # behind its back
    cover = json.loads(cli(tmp_path, env, "followup", "coverage", "--at", DAY_END, "--json"))
    assert [(u["loan"], u["kind"]) for u in cover["uncovered"]] == [(lost, "past_due")]
    assert cover["coverage"] < 1
    text = cli(tmp_path, env, "followup", "coverage", "--at", DAY_END)
    assert f"uncovered: loan {lost} " in text and "no follow-up" in text

    tick = run("followup", "tick", "--at", "2026-11-01T12:00:00+08:00", "--json",
               cwd=tmp_path, env=env)  # fmt: skip
    assert json.loads(tick.stdout)["uncovered"] == 1
    assert "coverage check: 1 past-due loans had no follow-up" in tick.stderr
    with Session(engine) as session:
        [found] = session.scalars(
            select(Trigger).join(Loan, Loan.id == Trigger.loan_id)
            .where(Loan.ref == lost, Trigger.resolved_at.is_(None))
        ).all()  # fmt: skip
        assert found.details["found_by"] == "coverage check"
        assert session.scalar(select(func.count()).select_from(Action)) > 0
    engine.dispose()
    cover = json.loads(cli(tmp_path, env, "followup", "coverage", "--at", DAY_END, "--json"))
    assert cover["uncovered"] == []
