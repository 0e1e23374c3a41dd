"""``lienwatch followup`` as a user runs it: tick, queue, record, coverage, check-contact."""

from __future__ import annotations

import json
import subprocess
from datetime import date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store import migrate
from lienwatch.store.db import make_engine
from lienwatch.store.tables import Action, ContactAttempt, LedgerEntry, Task, User
from tests import factories
from tests.test_cli import run


def test_check_contact_answers_with_the_rule_and_the_next_time(tmp_path):
    history = tmp_path / "history.json"
    history.write_text(json.dumps([
        {"at": "2026-03-01T10:00:00-05:00", "channel": "call", "connected": True,
         "conversation": True}]))  # fmt: skip
    result = run("followup", "check-contact", "--profile", "us", "--channel", "call",
                 "--tz", "America/New_York", "--at", "2026-03-03T10:00:00-05:00",
                 "--history", str(history), "--json", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "allowed": False, "reason": "call_after_conversation",
        "next_allowed_at": "2026-03-08T12:00:00+00:00"}  # fmt: skip
    bad = run("followup", "check-contact", "--profile", "cn", "--channel", "sms", "--tz", "Asia/X",
              "--at", "2026-03-03T10:00:00+08:00", cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 1
    assert bad.stderr.strip() == "lienwatch: error: --tz: unknown IANA time zone 'Asia/X'"


def test_tick_queue_record_and_coverage(tmp_path):
    ann = User(username="ann", display_name="Ann", role="agent", team="east",
               skills={"mode": "phone"})  # fmt: skip
    url = factories.past_due_book(tmp_path / "f.sqlite3", ann)
    env = {"LIENWATCH_DATABASE_URL": url}
    for at in ("2026-02-17T08:30:00.25+08:00", "2026-02-18T08:30:00.75+08:00"):
        assert run("followup", "tick", "--at", at, cwd=tmp_path, env=env).returncode == 0
    queue = run("followup", "queue", "--by", "ann", "--json", cwd=tmp_path, env=env)
    [task] = json.loads(queue.stdout)
    assert task["channel"] == "call"
    shown = run("followup", "queue", "--by", "ann", cwd=tmp_path, env=env).stdout
    assert "." not in shown.split(" due ")[1]  # to the second: no microseconds of the tick
    for missing, line in ((("--promise-amount", "3000.00"), "--promise-date: a promise to pay "
                           "needs a date"),
                          (("--promise-date", "2026-02-25"), "--promise-amount: a promise to pay "
                           "needs a positive amount"),
                          (("--promise-amount", "30.001"), "--promise-amount: '30.001' has more "
                           "than two decimals")):  # fmt: skip
        refused = run("followup", "record", "--task", str(task["task"]), "--by", "ann",
                      "--outcome", "promise_to_pay", "--at", "2026-02-18T10:00:00+08:00",
                      *missing, cwd=tmp_path, env=env)  # fmt: skip
        assert refused.stderr.strip() == f"lienwatch: error: {line}"
    record = run("followup", "record", "--task", str(task["task"]), "--agent", "ann",
                 "--outcome", "promise_to_pay", "--at", "2026-02-18T10:00:00+08:00",
                 "--promise-date", "2026-02-25", "--promise-amount", "3000.00",
                 cwd=tmp_path, env=env)  # fmt: skip
    assert record.returncode == 0, record.stderr
    assert "promise of 3000.00 on 2026-02-25" in record.stdout
    cover = run("followup", "coverage", "--at", "2026-02-18T12:00:00.5+08:00", "--json",
                cwd=tmp_path, env=env)  # fmt: skip
    report = json.loads(cover.stdout)
    assert report["as_of"] == "2026-02-18T04:00:00+00:00"
    assert set(report) >= {"open_triggers", "covered", "coverage", "breaches"}
    # The reminder SMS went out at once and the call came within its SLA.
    assert (report["coverage"], report["breaches"]) == (1.0, [])
    assert report["covered"] == report["triggers"] >= 2


def test_the_scheduler_loop_ticks_and_stops(tmp_path):
    url = factories.past_due_book(tmp_path / "run.sqlite3")
    env = {"LIENWATCH_DATABASE_URL": url, "LIENWATCH_CLOCK": "2026-02-17T08:30:00+08:00"}
    result = run("followup", "run", "--every", "1", "--ticks", "2", "--json", cwd=tmp_path,
                 env=env)
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["tick"] == 1 and first["raised"]["missed_installment"] == 1
    assert second == {"tick": 2, "raised": {}}  # nothing new: every trigger was raised once


def test_tick_drains_the_due_steps_in_batches(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with Session(engine) as session, session.begin():
        for ref in ("L1", "L2", "L3"):
            factories.loan(session, ref)
        for day in (date(2026, 2, 15), date(2026, 2, 16)):
            run_nightly(session, ProductCatalogue(), as_of=day)
    engine.dispose()
    env = {"LIENWATCH_DATABASE_URL": url, "LIENWATCH_FOLLOWUP__STEP_BATCH": "2"}
    at = "2026-02-17T08:30:00+08:00"
    first = run("followup", "tick", "--at", at, "--json", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    # Three texts and three tracker reviews: the tick's batch of two, then two more batches
    # (and a fourth that found nothing).
    assert report["raised"] == {"missed_installment": 3, "tracker_review": 3}
    assert (report["steps"], report["executed"], report["batches"]) == (6, 6, 3)
    again = json.loads(run("followup", "tick", "--at", at, "--json", cwd=tmp_path, env=env).stdout)
    assert (again["steps"], again["executed"], again["batches"]) == (0, 0, 0)


@pytest.fixture
def book_url(store_url) -> str:
    """Loan L1, a day past its first due date, an agent (ann) and a supervisor (sam), with the
    nightly runs to 2026-02-16, in a database of the test's own on each backend."""
    engine = make_engine(store_url)
    with Session(engine) as session, session.begin():
        factories.loan(session)
        session.add_all([
            User(username="ann", display_name="Ann", role="agent", team="east",
                 skills={"mode": "phone"}),
            User(username="sam", display_name="Sam", role="supervisor", team="east"),
        ])  # fmt: skip
        for day in (date(2026, 2, 15), date(2026, 2, 16)):
            run_nightly(session, ProductCatalogue(), as_of=day)
    engine.dispose()
    return store_url


def test_a_refused_contact_is_recorded_though_the_command_fails(book_url, tmp_path):
    env = {"LIENWATCH_DATABASE_URL": book_url}
    for at in ("2026-02-17T08:30:00+08:00", "2026-02-18T08:30:00+08:00"):
        assert run("followup", "tick", "--at", at, cwd=tmp_path, env=env).returncode == 0
    [task] = json.loads(run("followup", "queue", "--agent", "ann", "--json", cwd=tmp_path,
                            env=env).stdout)  # fmt: skip

    def record(at: str) -> subprocess.CompletedProcess[str]:
        return run("followup", "record", "--task", str(task["task"]), "--agent", "ann",
                   "--outcome", "no_answer", "--at", at, cwd=tmp_path, env=env)  # fmt: skip

    refused = record("2026-02-18T23:30:00+08:00")  # a call at night
    assert refused.returncode == 1
    assert refused.stderr.strip() == "lienwatch: error: --at: contact refused (quiet_hours)"
    engine = make_engine(book_url)
    with Session(engine) as session:
        [attempt] = session.scalars(select(ContactAttempt).where(ContactAttempt.channel == "call"))
        assert (attempt.allowed, attempt.rule, attempt.action_id) == (False, "quiet_hours", None)
        assert attempt.at == datetime.fromisoformat("2026-02-18T23:30:00+08:00")
        # Only the refusal was kept: the task is still queued, no outcome was logged.
        assert session.get_one(Task, task["task"]).status == "queued"
        assert session.scalar(select(func.count()).where(Action.kind == "call")) == 0
        # ... and the refusal's ledger entry went in with it.
        [entry] = [json.loads(body) for body in session.scalars(
            select(LedgerEntry.body).where(LedgerEntry.kind == "contact_refused"))]  # fmt: skip
        assert (entry["subject"], entry["by"], entry["data"]["rule"]) == ("L1", "ann",
                                                                         "quiet_hours")  # fmt: skip
    assert record("2026-02-19T10:00:00+08:00").returncode == 0  # by day it is allowed
    with Session(engine) as session:
        rules = session.execute(select(ContactAttempt.allowed, ContactAttempt.rule)
                                .where(ContactAttempt.channel == "call")
                                .order_by(ContactAttempt.at)).all()  # fmt: skip
        assert rules == [(False, "quiet_hours"), (True, "ok")]
    engine.dispose()


def test_a_refused_tracker_command_stays_on_the_case_timeline(book_url, tmp_path):
    env = {"LIENWATCH_DATABASE_URL": book_url}
    at = "2026-02-17T08:30:00+08:00"
    assert run("followup", "tick", "--at", at, cwd=tmp_path, env=env).returncode == 0

    def command(*by: str) -> subprocess.CompletedProcess[str]:
        return run("followup", "tracker-command", "--loan", "L1", "--command", "fuel_cut",
                   "--at", at, *by, "--json", cwd=tmp_path, env=env)  # fmt: skip

    refused = command()
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "lienwatch: error: --command: refused (tracker_command_needs_supervisor)")
    assert command("--by", "ann").returncode == 1  # an agent cannot approve it either
    sent = command("--by", "sam")
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["outcome"] == "sent"
    engine = make_engine(book_url)
    with Session(engine) as session:
        timeline = session.execute(
            select(Action.outcome, User.username, Action.details["command"].as_string())
            .outerjoin(User, User.id == Action.performed_by)
            .where(Action.kind == "tracker_command").order_by(Action.id)
        ).all()  # fmt: skip
    engine.dispose()
    assert timeline == [
        ("tracker_command_needs_supervisor", None, "fuel_cut"),
        ("tracker_command_needs_supervisor", "ann", "fuel_cut"),
        ("sent", "sam", "fuel_cut"),
    ]
    # Every act is in the ledger, the refused ones too; sealed, it verifies.
    env["LIENWATCH_LEDGER__KEY_FILE"] = str(tmp_path / "ledger.key")
    sealed = run("ledger", "seal", "--at", at, "--json", cwd=tmp_path, env=env)
    assert sealed.returncode == 0, sealed.stderr
    verified = run("ledger", "verify", "--json", cwd=tmp_path, env=env)
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"]
    engine = make_engine(book_url)
    with Session(engine) as session:
        outcomes = [json.loads(body)["data"]["outcome"] for body in session.scalars(
            select(LedgerEntry.body).where(LedgerEntry.subject == "L1")
            .order_by(LedgerEntry.leaf_index))]  # fmt: skip
    engine.dispose()
    assert [o for o in outcomes if o in ("sent", "tracker_command_needs_supervisor")] == [
        "tracker_command_needs_supervisor", "tracker_command_needs_supervisor", "sent"]
    unknown = command("--by", "sam", "--loan", "NOPE")
    assert unknown.returncode != 0


def test_users_from_the_cli_and_only_the_assignee_or_a_supervisor_records(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.sqlite3'}"
    env = {"LIENWATCH_DATABASE_URL": url}
    unknown = run("user", "add", "ann", "--role", "agent", "--team", "east", cwd=tmp_path, env=env)
    assert unknown.stderr.splitlines()[-1] == (  # after "created a new database ..."
        "lienwatch: error: --team: no team 'east' (`lienwatch team add east` creates it)")
    for team in (("east", "--name", "East China"), ("west",)):
        assert run("team", "add", *team, cwd=tmp_path, env=env).returncode == 0
    again = run("team", "add", "west", cwd=tmp_path, env=env)
    assert again.stderr == "lienwatch: error: name: team 'west' exists\n"
    alike = run("team", "add", "West", cwd=tmp_path, env=env)
    assert alike.stderr == ("lienwatch: error: name: 'West' differs from the team 'west' only "
                            "in case\n")  # fmt: skip
    for user in (("ann", "--role", "agent", "--team", "east", "--name", "Ann Li"),
                 ("bob", "--role", "agent", "--team", "east"),
                 ("sam", "--role", "supervisor", "--team", "east"),
                 ("tom", "--role", "supervisor", "--team", "west"),
                 ("fay", "--role", "agent", "--team", "east", "--skill", "field",
                  "--regions", "31,32", "--capacity", "4")):  # fmt: skip
        added = run("user", "add", *user, cwd=tmp_path, env=env)
        assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "added fay: agent of team east (field, 4 a day, regions 31,32)"
    taken = run("user", "add", "ann", "--role", "agent", "--team", "east", cwd=tmp_path, env=env)
    assert taken.stderr.strip() == "lienwatch: error: username: 'ann' is taken"
    alike = run("user", "add", "Ann", "--role", "agent", "--team", "east", cwd=tmp_path, env=env)
    assert alike.stderr.strip() == ("lienwatch: error: username: 'Ann' differs from the user "
                                    "'ann' only in case")  # fmt: skip
    lonely = run("user", "add", "zed", "--role", "agent", cwd=tmp_path, env=env)
    assert lonely.stderr.strip() == "lienwatch: error: --team: an agent works in a team"
    assert run("user", "disable", "bob", cwd=tmp_path, env=env).returncode == 0
    listed = json.loads(run("user", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert [(u["username"], u["active"]) for u in listed] == [
        ("ann", True), ("bob", False), ("fay", True), ("sam", True), ("tom", True)]
    teams = run("team", "list", cwd=tmp_path, env=env)
    assert teams.stdout.splitlines() == [
        "east (East China): field fay; phone ann; supervisors sam; disabled bob",
        "west: supervisors tom",
    ]
    assert json.loads(run("team", "list", "--json", cwd=tmp_path, env=env).stdout)[1] == {
        "team": "west", "name": "west", "agents": {}, "supervisors": ["tom"], "disabled": []}
    assert run("user", "enable", "bob", cwd=tmp_path, env=env).returncode == 0

    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        factories.loan(session)
        for day in (date(2026, 2, 15), date(2026, 2, 16)):
            run_nightly(session, ProductCatalogue(), as_of=day)
    engine.dispose()
    for at in ("2026-02-17T08:30:00+08:00", "2026-02-18T08:30:00+08:00"):
        assert run("followup", "tick", "--at", at, cwd=tmp_path, env=env).returncode == 0
    holder = next(name for name in ("ann", "bob") if json.loads(run(
        "followup", "queue", "--agent", name, "--json", cwd=tmp_path, env=env).stdout))
    other = "bob" if holder == "ann" else "ann"
    [task] = json.loads(run("followup", "queue", "--agent", holder, "--json", cwd=tmp_path,
                            env=env).stdout)  # fmt: skip

    def record(agent: str) -> subprocess.CompletedProcess[str]:
        return run("followup", "record", "--task", str(task["task"]), "--agent", agent,
                   "--outcome", "rpc", "--at", "2026-02-18T10:00:00+08:00", cwd=tmp_path,
                   env=env)  # fmt: skip

    for intruder in (other, "tom"):  # another agent; a supervisor of another team
        refused = record(intruder)
        assert refused.returncode == 1
        assert refused.stderr.strip() == (
            f"lienwatch: error: --by: task {task['task']} is assigned to {holder}; only they or "
            "a supervisor of team east may record it")
    assert record("sam").returncode == 0  # the team's supervisor, recorded as such
    engine = make_engine(url)
    with Session(engine) as session:
        call = session.scalar(select(Action).where(Action.kind == "call"))
        assert call.details["for"] == holder
        assert session.get_one(User, call.performed_by).username == "sam"
    engine.dispose()


def test_coverage_as_of_a_business_day_is_the_end_of_that_day(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    env = {"LIENWATCH_DATABASE_URL": url}
    day = run("followup", "coverage", "--as-of", "2026-02-18", "--json", cwd=tmp_path, env=env)
    assert json.loads(day.stdout)["as_of"] == "2026-02-18T16:00:00+00:00"  # midnight in Shanghai
    both = run("followup", "coverage", "--as-of", "2026-02-18", "--at",
               "2026-02-18T12:00:00+08:00", cwd=tmp_path, env=env)  # fmt: skip
    assert both.stderr == "lienwatch: error: give --at or --as-of, not both\n"
    moment = run("followup", "coverage", "--as-of", "2026-02-18T12:00:00+08:00", cwd=tmp_path,
                 env=env)  # fmt: skip
    assert moment.returncode == 2 and moment.stderr == (
        "lienwatch: error: --as-of: '2026-02-18T12:00:00+08:00' is not a date YYYY-MM-DD\n")
