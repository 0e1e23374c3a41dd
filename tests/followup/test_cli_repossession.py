"""``lienwatch repossession`` as a user runs it: a refused order, an order, approval, overdue;
the step past its SLA breached by the follow-up tick and named by ``followup coverage``."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy.orm import Session

from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import make_engine
from lienwatch.store.tables import User
from tests import factories
from tests.test_cli import run


def test_order_approve_overdue_and_the_breach_in_coverage(tmp_path):
    staff = [User(username=name, display_name=name, role=role, team="east")
             for name, role in (("ann", "agent"), ("sam", "supervisor"), ("rex", "agent"))]
    url = factories.past_due_book(tmp_path / "r.sqlite3", *staff)
    env = {"LIENWATCH_DATABASE_URL": url}
    assert run("followup", "tick", "--at", "2026-02-17T08:30:00+08:00", cwd=tmp_path,
               env=env).returncode == 0  # fmt: skip
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        run_nightly(session, ProductCatalogue(), as_of=date(2026, 5, 20))
    engine.dispose()
    order = ("repossession", "order", "--loan", "L1", "--legal-ref", "(2026)京0105民初123号",
             "--why", "unreachable", "--by", "ann",
             "--at", "2026-05-21T09:00:00+08:00")  # fmt: skip
    refused = run(*order, "--route", "self_help", cwd=tmp_path, env=env)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "lienwatch: error: --route: refused (repossession_self_help_forbidden)"
    )
    unregistered = run(*order, "--route", "court_order", cwd=tmp_path, env=env)
    assert unregistered.returncode == 1
    assert "(repossession_unregistered_collateral: vehicle " in unregistered.stderr
    vin = factories.vin_of("L1")
    assert run("collateral", "register", "--vin", vin, "--plate", "京A12345", "--authority",
               "北京市车辆管理所", "--certificate", "110000000001", "--registered-on",
               "2026-01-14", "--loan", "L1", "--by", "sam", "--at", "2026-01-14T10:00:00+08:00",
               cwd=tmp_path, env=env).returncode == 0  # fmt: skip
    ordered = run(*order, "--route", "court_order", cwd=tmp_path, env=env)
    assert ordered.returncode == 0, ordered.stderr
    assert ordered.stdout.strip() == (
        "repossession 1 ordered; next step due by 2026-05-22T01:00:00+00:00 (approve)"
    )
    approved = run("repossession", "approve", "--id", "1", "--by", "sam", "--assignee", "rex",
                   "--at", "2026-05-21T10:00:00+08:00", cwd=tmp_path, env=env)  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    late = run("repossession", "overdue", "--at", "2026-06-05T10:00:00+08:00", cwd=tmp_path,
               env=env)  # fmt: skip
    assert late.stdout.strip() == (
        "repossession 1 loan L1 approved: recover due by 2026-06-04T02:00:00+00:00, held by rex"
    )
    tick = run("followup", "tick", "--at", "2026-06-05T10:00:00+08:00", "--json", cwd=tmp_path,
               env=env)  # fmt: skip
    assert json.loads(tick.stdout)["breached"] >= 1, tick.stderr
    late = run("repossession", "overdue", "--at", "2026-06-05T10:00:00+08:00", cwd=tmp_path,
               env=env)  # fmt: skip
    assert late.stdout.strip().endswith("held by rex (breached)")
    cover = run("followup", "coverage", "--since", "2026-05-21T00:00:00+08:00", "--at",
                "2026-06-05T12:00:00+08:00", "--json", cwd=tmp_path, env=env)  # fmt: skip
    report = json.loads(cover.stdout)
    assert (report["repossession_steps"], report["open_repossession_steps"]) == (2, 1)
    assert [b for b in report["breaches"] if b["repossession_id"]] == [
        {"loan": "L1", "trigger_id": None, "repossession_id": 1, "kind": "repossession:recover",
         "deadline_at": "2026-06-04T02:00:00+00:00", "team": "east"},
    ]  # fmt: skip
