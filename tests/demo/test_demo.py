"""`lienwatch demo` end to end on a small portfolio: files, database and figures agree."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from lienwatch import clock
from lienwatch.access.policy import Scope
from lienwatch.access.principal import Viewer
from lienwatch.reports.archive import list_reports
from lienwatch.reports.daily import day_folder
from lienwatch.services.auth import AuthService, TokenKind
from lienwatch.services.lookup import case_queue
from lienwatch.sim import SimConfig, generate
from lienwatch.store.db import make_engine, session_factory, transaction
from tests.test_cli import run

LOANS, DAYS, SEED = 60, 14, 11


def run_demo(folder, *options: str, loans: int, days: int, seed: int) -> tuple[Path, dict]:
    """``lienwatch demo`` into ``folder/out``: the folder and the summary."""
    result = run(
        "demo", "--loans", str(loans), "--days", str(days), "--seed", str(seed),
        "--dir", str(folder / "out"), "--json", *options, cwd=folder,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return folder / "out", json.loads(result.stdout)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    # two phone agents (the forecast asks one of so small a book) to share the cases out
    return run_demo(tmp_path_factory.mktemp("demo"), "--phone-agents", "2", loans=LOANS,
                    days=DAYS, seed=SEED)  # fmt: skip


def test_summary_is_one_json_object_with_every_section(demo_run):
    _, summary = demo_run
    assert {"portfolio", "ground_truth", "loaded", "timings_s", "report"} <= set(summary)
    assert summary["loans"] == LOANS and summary["days"] == DAYS and summary["seed"] == SEED
    # each stage's wall and CPU seconds, and the machine's load beside them
    assert set(summary["cpu_s"]) == set(summary["timings_s"]) >= {"simulate", "load", "monitor"}
    assert all(seconds >= 0 for seconds in summary["cpu_s"].values())
    assert summary["machine"]["cpus"] >= 1 and len(summary["machine"]["load_average_at_end"]) == 3


def test_the_planted_fraud_rings_are_found(demo_run):
    _, summary = demo_run
    rings = summary["fraud_rings"]
    assert rings["planted_rings"] == summary["ground_truth"]["fraud_rings"]
    assert rings["recall"] == (1.0 if rings["planted_rings"] else None)


def test_figures_are_what_the_database_holds(demo_run):
    folder, summary = demo_run
    db = sqlite3.connect(folder / "lienwatch.sqlite3")
    count = lambda table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: E731
    book = summary["portfolio"]
    assert sum(book["loans"].values()) == count("loans") == LOANS
    gateway = summary["gateway"]
    assert book["positions"] == count("positions")
    assert count("positions") == summary["loaded"]["positions"] + gateway["stored"]
    assert book["payments"] == count("payments")
    assert book["payments_amount"] == db.execute("SELECT SUM(amount) FROM payments").fetchone()[0]
    assert (
        book["principal_disbursed"] == db.execute("SELECT SUM(principal) FROM loans").fetchone()[0]
    )
    assert sum(book["devices"].values()) == count("devices")


def test_delinquency_is_the_nightly_runs_snapshots(demo_run):
    folder, summary = demo_run
    db = sqlite3.connect(folder / "lienwatch.sqlite3")
    delinquency = summary["portfolio"]["delinquency"]
    rows = db.execute(
        "SELECT bucket, COUNT(*), SUM(outstanding_principal) FROM loan_snapshots "
        "WHERE as_of = ? GROUP BY bucket",
        (summary["as_of"],),
    ).fetchall()
    assert {b: (n, o) for b, n, o in rows} == {
        b: (row["loans"], row["outstanding"]) for b, row in delinquency["buckets"].items()
    }
    assert sum(row["loans"] for row in delinquency["buckets"].values()) == LOANS
    changes = db.execute("SELECT COUNT(*) FROM bucket_history").fetchone()[0]
    events = db.execute("SELECT COUNT(*) FROM events WHERE kind = 'bucket_changed'").fetchone()[0]
    assert changes == events == summary["servicing"]["bucket_changes"] >= LOANS


def test_alerts_are_stored_and_scored(demo_run):
    folder, summary = demo_run
    db = sqlite3.connect(folder / "lienwatch.sqlite3")
    stored = db.execute("SELECT type, COUNT(*) FROM alerts GROUP BY type").fetchall()
    collateral = sum(n for kind, n in stored if kind != "payment_anomaly")
    assert collateral == summary["monitoring"]["alerts"] > 0
    # the nightly runs' abnormal payments: raised, or added to a loan's open alert
    assert 0 < dict(stored)["payment_anomaly"] <= summary["servicing"]["payment_anomalies"]
    by_status = summary["portfolio"]["alerts"]
    assert {t: sum(s.values()) for t, s in by_status.items()} == dict(stored)
    scores = summary["monitoring"]["by_type"]
    alarmed = [t for t in ("power_cut", "device_removed") if scores.get(t, {}).get("expected")]
    assert alarmed, "the small portfolio should hold a removed tracker"
    assert all(scores[t]["recall"] == 1.0 for t in alarmed)


def test_followup_coverage_is_what_the_store_says(demo_run):
    folder, summary = demo_run
    followup = summary["followup"]
    db = sqlite3.connect(folder / "lienwatch.sqlite3")
    triggers = db.execute("SELECT COUNT(*) FROM triggers").fetchone()[0]
    assert followup["triggers"] == triggers > 0
    assert 0 < followup["coverage"] <= 1
    breached = {b["loan"] for b in followup["breaches"]}
    stored = {
        ref
        for (ref,) in db.execute(
            "SELECT DISTINCT l.ref FROM triggers t JOIN loans l ON l.id = t.loan_id "
            "WHERE t.breached_at IS NOT NULL UNION "
            # a repossession step the watchdog saw breached, or one done after its deadline
            "SELECT l.ref FROM repossession_steps s JOIN repossessions r "
            "ON r.id = s.repossession_id JOIN loans l ON l.id = r.loan_id "
            "WHERE s.breached_at IS NOT NULL OR s.done_at > s.deadline_at"
        )
    }
    assert breached <= stored
    report = json.loads((folder / "figures.json").read_text(encoding="utf-8"))
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert f"{100 * report['followup']['totals']['coverage']:.1f} %" in html


def test_figures_match_the_simulated_portfolio(demo_run):
    _, summary = demo_run
    portfolio = generate(SimConfig(loans=LOANS, days=DAYS, seed=SEED))
    # every simulated fix is stored: most by the bulk loader, a sample through the gateway
    gateway = summary["gateway"]
    assert summary["loaded"]["positions"] + gateway["stored"] == len(portfolio.positions)
    assert gateway["sent"] == gateway["acked"] == gateway["stored"] > 0
    assert gateway["rejected"] == gateway["device_errors"] == 0
    assert set(gateway["devices"]) == {"jt808", "gt06"}
    # the borrowers' payments, and the proceeds of the repossessed cars sold in the window
    proceeds = summary["followup"]["repossession"]["to_loan"]
    assert summary["portfolio"]["payments_amount"] - proceeds == sum(
        p.amount for p in portfolio.payments
    )
    profiles = summary["ground_truth"]["profiles"]
    assert sum(profiles.values()) == LOANS
    assert profiles == dict(Counter(str(p) for p in portfolio.truth.profiles.values()))


def test_report_and_ground_truth_are_written(demo_run):
    folder, summary = demo_run
    html = (folder / "report.html").read_text(encoding="utf-8")
    outstanding = summary["portfolio"]["delinquency"]["outstanding_principal"]
    assert f"¥{outstanding / 100:,.2f}" in html  # the daily report of the demo's business day
    assert summary["as_of"] in html and html.count("<svg") >= 4
    truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    assert len(truth["profiles"]) == LOANS
    assert json.loads((folder / "summary.json").read_text())["portfolio"] == summary["portfolio"]


def test_the_report_is_in_the_archive_the_console_lists(demo_run):
    """``[report] out`` (relative: below the folder the demo ran in) holds the report in its
    business day's folder, as ``lienwatch report`` and the daily job write it: the console's
    and the API's Reports list it on a fresh demo."""
    folder, summary = demo_run
    out = folder.parent / "lienwatch-reports"
    [listed] = list_reports(out, before=None, limit=10)
    assert listed["day"].isoformat() == summary["as_of"]
    archived = day_folder(out, summary["as_of"]) / "report.html"
    assert summary["report_archived"] == str(Path("lienwatch-reports") / summary["as_of"]
                                             / "report.html")  # fmt: skip
    assert archived.read_text(encoding="utf-8") == (folder / "report.html").read_text(
        encoding="utf-8")


def test_same_seed_same_figures(demo_run, tmp_path):
    _, first = demo_run
    result = run(
        "demo", "--loans", str(LOANS), "--days", str(DAYS), "--seed", str(SEED),
        "--dir", str(tmp_path / "again"), "--json", cwd=tmp_path,
    )  # fmt: skip
    second = json.loads(result.stdout)
    assert second["portfolio"] == first["portfolio"]
    assert second["ground_truth"] == first["ground_truth"]


def test_bad_option_is_a_one_line_error(tmp_path):
    result = run("demo", "--loans", "0", "--dir", str(tmp_path / "x"), cwd=tmp_path)
    assert result.returncode == 2  # refused at the option
    assert result.stderr.startswith("lienwatch: error: --loans:")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_every_act_of_the_operated_days_is_in_a_ledger_that_verifies(demo_run, tmp_path):
    folder, summary = demo_run
    ledger = summary["ledger"]
    db = sqlite3.connect(folder / "lienwatch.sqlite3")
    actions = db.execute("SELECT COUNT(*) FROM actions").fetchone()[0]
    refused = db.execute("SELECT COUNT(*) FROM contact_attempts WHERE NOT allowed").fetchone()[0]
    loans = db.execute("SELECT COUNT(*) FROM loans").fetchone()[0]
    payments = db.execute("SELECT COUNT(*) FROM payments").fetchone()[0]  # imported, proceeds
    kinds = dict(db.execute("SELECT kind, COUNT(*) FROM ledger_entries GROUP BY kind"))
    assert ledger["ok"] and ledger["heads"] == 1 and ledger["pending"] == 0
    assert kinds["case_action"] == actions > 0 and kinds.get("contact_refused", 0) == refused
    assert kinds["payment_posted"] == payments
    assert kinds["loan_disbursed"] == kinds["collateral_registered"] == loans
    assert ledger["entries"] == sum(kinds.values())
    outcome = db.execute("SELECT MIN(leaf_index) FROM ledger_entries "
                         "WHERE body LIKE '%\"outcome\":%'").fetchone()[0]  # fmt: skip
    copy = tmp_path / "copy.sqlite3"  # tampered with behind lienwatch's back
    shutil.copy(folder / "lienwatch.sqlite3", copy)
    db = sqlite3.connect(copy)
    db.execute("UPDATE ledger_entries SET body = replace(body, '\"outcome\":', '\"outcome\" :') "
               "WHERE leaf_index = ?", (outcome,))  # fmt: skip
    db.commit()
    env = {"LIENWATCH_DATABASE_URL": f"sqlite:///{copy}",
           "LIENWATCH_LEDGER__KEY_FILE": ledger["key_file"]}  # fmt: skip
    verified = run("ledger", "verify", cwd=tmp_path, env=env)
    assert verified.returncode == 1
    assert f"entry {outcome}: its content is not what was recorded" in verified.stdout


def test_serve_as_the_demo_prints_it_signs_the_ledger_with_the_demos_key(demo_run):
    folder, summary = demo_run
    assignments, command = summary["console"]["open"].split(" lienwatch ")
    assert command == "serve"
    env = dict(a.split("=", 1) for a in assignments.split())
    # in the folder the demo ran in (its --dir is folder/out), where the paths were typed
    key = run("ledger", "key", "--json", cwd=folder.parent, env=env)
    assert key.returncode == 0, key.stderr
    assert json.loads(key.stdout)["key_id"] == summary["ledger"]["key_id"]
    assert not (folder.parent / "lienwatch-ledger.key").exists()  # no other key made
    verified = run("ledger", "verify", cwd=folder.parent, env=env)
    assert verified.returncode == 0 and verified.stdout.startswith("ok: "), verified.stdout


def test_the_demo_opens_the_consoles_accounts_with_one_password_printed_once(demo_run):
    folder, summary = demo_run
    password = summary["demo_password"]
    console = summary["console"]
    assert {"admin", "supervisor1", "collector1", "analyst1", "auditor1"} <= set(console["users"])
    assert console["open"].startswith("LIENWATCH_DATABASE_URL=sqlite:///")
    assert console["open"].endswith("ledger.key lienwatch serve")
    assert password not in (folder / "summary.json").read_text()
    engine = make_engine(f"sqlite:///{folder / 'lienwatch.sqlite3'}")
    with transaction(session_factory(engine)) as session:
        auth = AuthService(session)
        for user in console["users"]:
            auth.login(username=user, password=password, at=clock.now(), kind=TokenKind.SESSION)
        collector = auth.authenticate(
            auth.login(username="collector1", password=password, at=clock.now()).token,
            at=clock.now())  # fmt: skip
        mine = case_queue(session, Viewer(collector, Scope.OWN), limit=500)
        every = case_queue(session, Viewer(collector, Scope.ALL), limit=500)
    engine.dispose()
    assert mine and len(mine) < len(every)  # the demo's cases were shared out
    db = sqlite3.connect(folder / "lienwatch.sqlite3")
    split = db.execute("SELECT COUNT(*) FROM tasks JOIN cases ON cases.id = tasks.case_id "
                       "WHERE tasks.status = 'queued' AND cases.status != 'closed' "
                       "AND tasks.assignee_id IS NOT cases.assignee_id").fetchone()[0]
    assert split == 0  # each open case is one collector's, its queued tasks too


def test_the_loans_carry_the_grades_of_their_applications_and_outcomes_by_grade(demo_run):
    folder, summary = demo_run
    origination = summary["origination"]
    db = sqlite3.connect(folder / "lienwatch.sqlite3")
    graded = dict(db.execute("SELECT grade, COUNT(*) FROM loans WHERE grade IS NOT NULL "
                             "GROUP BY grade").fetchall())  # fmt: skip
    assert graded == {g: m["loans"] for g, m in origination["by_grade"].items()}
    assert sum(graded.values()) == origination["applications"] == sum(
        origination["decisions"].values()) == LOANS - origination["unscored_company_loans"]
    assert set(graded) <= set("ABCDE") and origination["scorecard_fit_rows"] == 500
    defaulted = db.execute(
        "SELECT COUNT(*) FROM loans l WHERE grade IS NOT NULL AND (status IN ('charged-off', "
        "'repossessed', 'written-off') OR (SELECT MAX(dpd) FROM loan_snapshots s "
        "WHERE s.loan_id = l.id) > 90)").fetchone()[0]  # fmt: skip
    assert defaulted == sum(m["defaulted"] for m in origination["by_grade"].values())
