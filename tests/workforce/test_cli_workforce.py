"""``lienwatch followup capacity`` and ``incentives`` as a user runs them."""

from __future__ import annotations

import json
from importlib.resources import files

from lienwatch.store.tables import User
from tests import factories
from tests.test_cli import run


def test_capacity_forecasts_the_call_and_incentives_rank_the_month(tmp_path):
    ann = User(username="ann", display_name="Ann", role="agent", team="east",
               skills={"mode": "phone"})  # fmt: skip
    url = factories.past_due_book(tmp_path / "f.sqlite3", ann)
    env = {"LIENWATCH_DATABASE_URL": url}
    assert run("followup", "tick", "--at", "2026-02-17T08:30:00+08:00", cwd=tmp_path,
               env=env).returncode == 0  # fmt: skip
    forecast = run("followup", "capacity", "--days", "7", "--at", "2026-02-17T09:00:00+08:00",
                   "--json", cwd=tmp_path, env=env)  # fmt: skip
    assert forecast.returncode == 0, forecast.stderr
    plan = json.loads(forecast.stdout)
    assert plan["go_live"] is False  # ticked: the book as the engine works it
    [phone] = [p for p in plan["pools"] if p["skill"] == "phone"]
    assert phone["tasks"]["call"] >= 1 and phone["rostered"] == 1 and phone["needed"] == 1
    text = run("followup", "capacity", "--at", "2026-02-17T09:00:00+08:00", cwd=tmp_path, env=env)
    assert "any/phone:" in text.stdout and "needs 1 agent, has 1" in text.stdout
    league = run("followup", "incentives", "--month", "2026-02", "--at",
                 "2026-02-20T09:00:00+08:00", "--json", cwd=tmp_path, env=env)  # fmt: skip
    assert league.returncode == 0, league.stderr
    assert json.loads(league.stdout)["scheme"] == "incentives-default@1"
    bad = run("followup", "incentives", "--month", "2026-2x", cwd=tmp_path, env=env)
    assert bad.returncode == 1
    assert bad.stderr.strip() == "lienwatch: error: month: '2026-2x' is not a month like 2026-11"


def test_the_settings_name_the_incentives_scheme_and_the_capacity_rules(tmp_path):
    """``[workforce] incentives`` and ``capacity_rules``: a versioned file of one's own is the
    one in force, and the league and the forecast name its version; a bad file is named."""
    url = factories.past_due_book(tmp_path / "f.sqlite3")
    shipped = tmp_path / "shipped"
    mine = tmp_path / "my-scheme.toml"
    mine.write_text('name = "my-scheme"\nversion = 2\n[points]\ncure = 50\n', encoding="utf-8")
    rules = tmp_path / "my-capacity.toml"
    rules.write_text('name = "my-capacity"\nversion = 3\nworkday_start = "09:00"\n'
                     'workday_end = "17:00"\n[minutes]\ncall = 10\n[daily_capacity]\nphone = 40\n'
                     'field = 3\n', encoding="utf-8")  # fmt: skip
    env = {"LIENWATCH_DATABASE_URL": url, "LIENWATCH_WORKFORCE__INCENTIVES": str(mine),
           "LIENWATCH_WORKFORCE__CAPACITY_RULES": str(rules)}  # fmt: skip
    league = run("followup", "incentives", "--month", "2026-02", "--at",
                 "2026-02-20T09:00:00+08:00", "--json", cwd=tmp_path, env=env)  # fmt: skip
    assert league.returncode == 0, league.stderr
    assert json.loads(league.stdout)["scheme"] == "my-scheme@2"
    forecast = run("followup", "capacity", "--at", "2026-02-17T09:00:00+08:00", "--json",
                   cwd=tmp_path, env=env)  # fmt: skip
    planned = json.loads(forecast.stdout)
    assert planned["rules"] == "my-capacity@3", forecast.stderr
    # a book the engine never ticked: its go-live backlog (the past-due loan) is counted in
    assert planned["go_live"] is True
    assert any(p["tasks"].get("call") for p in planned["pools"] if p["skill"] == "phone")
    env["LIENWATCH_WORKFORCE__INCENTIVES"] = str(shipped)
    bad = run("followup", "incentives", "--month", "2026-02", cwd=tmp_path, env=env)
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith(f"lienwatch: error: {shipped}: cannot read")


def test_the_morning_plan_job_runs_once_a_day_across_workers(tmp_path):
    """``[workforce] plan_at``: the scheduler's capacity plan acts once per business day (a
    second worker, or a rerun, finds the day claimed), and unset there is no such job."""
    from lienwatch.config import Settings
    from lienwatch.jobs import CAPACITY_PLAN, capacity_plan, scheduler_jobs
    from lienwatch.store.db import make_engine, session_factory

    url = factories.past_due_book(tmp_path / "f.sqlite3")
    ledger = {"key_file": tmp_path / "ledger.key"}  # scheduler_jobs makes the ledger's key
    settings = Settings(database_url=url, ledger=ledger)
    factory = session_factory(make_engine(url))
    first = capacity_plan(factory, settings)()
    assert set(first) == {"day", "reassigned", "substituted", "ordered"}
    assert capacity_plan(factory, settings)() == {"day": first["day"], "already_planned": True}
    names = {job.name for job in scheduler_jobs(factory, settings)}
    assert CAPACITY_PLAN in names
    unset = Settings(database_url=url, ledger=ledger, workforce={"plan_at": None})
    assert CAPACITY_PLAN not in {job.name for job in scheduler_jobs(factory, unset)}


def test_a_roster_of_skills_and_pace_and_a_scheme_published_from_a_file(tmp_path):
    """``user roster --skills --per-hour --capacity`` is stored and shown as the forecast
    reads it; ``followup incentives-publish`` puts a new scheme version in force from --at,
    and the league names the versions of the month (January's keeps the first alone)."""
    ann = User(username="ann", display_name="Ann", role="agent", team="east",
               skills={"mode": "phone"})  # fmt: skip
    url = factories.past_due_book(tmp_path / "f.sqlite3", ann)
    env = {"LIENWATCH_DATABASE_URL": url}
    roster = run("user", "roster", "ann", "--skills", "phone,field", "--per-hour", "call=12",
                 "--per-hour", "visit=1.5", "--capacity", "30", "--json", cwd=tmp_path, env=env)
    assert roster.returncode == 0, roster.stderr
    row = json.loads(roster.stdout)
    assert (row["skills"], row["per_hour"], row["capacity"]) == (
        ["phone", "field"], {"call": 12.0, "visit": 1.5}, 30)  # fmt: skip
    listed = run("user", "list", cwd=tmp_path, env=env).stdout
    assert "ann: agent of team east (phone+field, 30 a day, call 12/h, visit 1.5/h)" in listed
    assert run("team", "add", "east", cwd=tmp_path, env=env).returncode == 0
    teams = run("team", "list", cwd=tmp_path, env=env).stdout  # under each of her skills
    assert teams.strip() == "east: field ann; phone ann"
    bad = run("user", "roster", "ann", "--per-hour", "call=fast", cwd=tmp_path, env=env)
    assert bad.stderr.strip() == "lienwatch: error: --per-hour: 'call=fast' is not like call=10"
    assert run("user", "add", "nia", "--role", "analyst", cwd=tmp_path,
               env=env).returncode == 0  # fmt: skip
    shipped = files("lienwatch.workforce").joinpath("rules/incentives.toml").read_text("utf-8")
    second = tmp_path / "incentives-v2.toml"
    second.write_text(shipped.replace("version = 1", "version = 2"), encoding="utf-8")
    by_agent = run("followup", "incentives-publish", str(second), "--by", "ann", cwd=tmp_path,
                   env=env)  # fmt: skip
    assert by_agent.returncode == 1 and "may not publish" in by_agent.stderr
    published = run("followup", "incentives-publish", str(second), "--by", "nia", "--at",
                    "2026-02-10T00:00:00+08:00", "--json", cwd=tmp_path, env=env)  # fmt: skip
    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout)["scheme"] == "incentives-default@2"

    def scheme_of(month: str) -> str:
        league = run("followup", "incentives", "--month", month, "--at",
                     "2026-02-20T09:00:00+08:00", "--json", cwd=tmp_path, env=env)  # fmt: skip
        return json.loads(league.stdout)["scheme"]

    assert scheme_of("2026-01") == "incentives-default@1"
    assert scheme_of("2026-02") == "incentives-default@1, incentives-default@2"
