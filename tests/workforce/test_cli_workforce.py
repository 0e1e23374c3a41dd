"""``lienwatch followup capacity`` and ``incentives`` as a user runs them."""

from __future__ import annotations

import json

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
    [phone] = [p for p in plan["pools"] if p["skill"] == "phone"]
    assert phone["tasks"]["call"] >= 1 and phone["rostered"] == 1 and phone["needed"] == 1
    text = run("followup", "capacity", "--at", "2026-02-17T09:00:00+08:00", cwd=tmp_path, env=env)
    assert "any/phone:" in text.stdout and "needs 1 agents, has 1" in text.stdout
    league = run("followup", "incentives", "--month", "2026-02", "--at",
                 "2026-02-20T09:00:00+08:00", "--json", cwd=tmp_path, env=env)  # fmt: skip
    assert league.returncode == 0, league.stderr
    assert json.loads(league.stdout)["scheme"] == "incentives-default@1"
    bad = run("followup", "incentives", "--month", "2026-2x", cwd=tmp_path, env=env)
    assert bad.returncode == 1
    assert bad.stderr.strip() == "lienwatch: error: month: '2026-2x' is not a month like 2026-11"
