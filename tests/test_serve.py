"""``lienwatch serve`` as a user runs it: one process with the gateway, HTTP ingest, the
health endpoint and the scheduler, on a real SQLite file; stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from lienwatch import clock
from lienwatch.adapters.ledger_key import load_or_create_key
from lienwatch.api.health import Report, health_router
from lienwatch.domain.calendar import ended_business_day
from lienwatch.monitor.model import iso_utc
from lienwatch.runtime import serving_http
from lienwatch.services.ledger import LedgerService
from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.repositories import DeviceRepository
from lienwatch.store.tables import Alert, Case, Device, Loan, Position, Trigger
from lienwatch.telematics.simulator import PlayOptions, play
from tests import factories
from tests.conftest import HEALTH_TOKEN
from tests.processes import start
from tests.telematics.support import make_track
from tests.test_cli import run

TOKEN = "partner-token-0123456789"
PHONE = "15900003333"
TRACKER = "013900007777"
ZONE = "Asia/Shanghai"  # time_zone: the nightly run's business days


def serve_on_free_ports(tmp_path: Path, env: dict[str, str]):
    """``lienwatch serve`` in ``tmp_path`` on free ports, once ready; its ports by name."""
    server = start("serve", "--host", "127.0.0.1", "--jt808-port", "0", "--gt06-port", "0",
                   "--http-port", "0", cwd=tmp_path, env=env)  # fmt: skip
    ports = {name: int(port) for name, port in re.findall(r"(\w+) port (\d+)", server.ready)}
    return server, ports


def book_with_a_loan_falling_due(factory) -> tuple[int, date]:
    """A loan whose first installment fell due a few days ago, unpaid, and the nightly run
    of the day before that due date: the days since are missing. (loan id, first due)"""
    today = ended_business_day(clock.now(), ZONE) + timedelta(days=1)
    with transaction(factory) as session:
        loan = factories.loan_fallen_due(session, "L1", today=today)
        first_due = min(i.due_date for i in loan.installments)
        run_nightly(session, ProductCatalogue(), as_of=first_due - timedelta(days=1))
        session.add(Device(ident=PHONE, protocol="osmand", kind="wireless"))
        factories.device(session, TRACKER)
        return loan.id, first_due


def test_serve_ingests_positions_runs_the_jobs_and_stops_on_sigterm(tmp_path):
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'lienwatch.sqlite3'}")
    factory = session_factory(engine)
    loan_id, first_due = book_with_a_loan_falling_due(factory)
    env = {
        "LIENWATCH_SCHEDULER__FOLLOWUP_TICK_S": "0.3",
        "LIENWATCH_SCHEDULER__NIGHTLY_CATCH_UP_DAYS": "10",
        "LIENWATCH_LEDGER__SEAL_EVERY_S": "1",
        "LIENWATCH_GATEWAY__PARTNERS__ACME": TOKEN,
        "LIENWATCH_GATEWAY__HEALTH_TOKEN": HEALTH_TOKEN,
    }
    server, ports = serve_on_free_ports(tmp_path, env)
    try:
        assert set(ports) == {"jt808", "gt06", "http"} and 0 not in ports.values()
        assert "bus inprocess" in server.ready
        assert "jobs followup_tick, nightly, ledger_seal" in server.ready
        # A tracker registers, authenticates and reports over JT/T 808; a phone posts a fix.
        report = asyncio.run(play([make_track(TRACKER, 3)], "jt808", "127.0.0.1",
                                  ports["jt808"], PlayOptions()))  # fmt: skip
        assert (report.errors, report.acked_positions) == (0, 3)
        base = f"http://127.0.0.1:{ports['http']}"
        fix = {"id": PHONE, "lat": 31.23, "lon": 121.47, "timestamp": int(clock.timestamp()),
               "token": TOKEN}  # fmt: skip
        response = httpx.post(f"{base}/api/v1/ingest/osmand", params=fix, timeout=10)
        assert response.json() == {"accepted": 1, "archived": 0, "duplicates": 0, "conflicts": 0}
        health = wait_for_health(
            base, lambda jobs: jobs["nightly"]["runs"] >= 1 and jobs["followup_tick"]["runs"] >= 3
            and jobs["ledger_seal"]["runs"] >= 2,
        )
    finally:
        code, seconds = server.stop()
    assert code == 0 and seconds < 10, "".join(server.stderr)
    assert "serve: stopped" in server.stderr[-1]

    assert health["status"] == "ok" and health["database"] == {"reachable": True,
                                                               "backend": "sqlite"}  # fmt: skip
    assert health["gateway"]["ports"] == {"jt808": ports["jt808"], "gt06": ports["gt06"]}
    assert health["gateway"]["stats"]["positions"] == 3 and health["bus"] == {"kind": "inprocess"}
    nightly, tick = health["jobs"]["nightly"], health["jobs"]["followup_tick"]
    assert nightly["failures"] == tick["failures"] == 0
    through = ended_business_day(clock.now(), ZONE)
    missing = [first_due + timedelta(days=n) for n in range((through - first_due).days + 1)]
    assert nightly["last_result"]["days"] == [day.isoformat() for day in missing]
    assert nightly["timetable"] == f"daily at 01:00 {ZONE}"
    with transaction(factory) as session:
        stored = session.scalars(
            select(Device.ident).join(Position, Position.device_id == Device.id)
        )
        assert sorted(stored) == [TRACKER, TRACKER, TRACKER, PHONE]
        # The nightly run found the installment unpaid; a tick turned it into a case.
        kinds = session.scalars(select(Trigger.kind).where(Trigger.loan_id == loan_id)).all()
        assert "missed_installment" in kinds
        assert session.scalar(select(Case.status).where(Case.loan_id == loan_id)) is not None
        # Its acts are in the ledger, sealed under signed heads that verify.
        key = load_or_create_key(tmp_path / "lienwatch-ledger.key").public_key()
        report = LedgerService(session, public_key=key).verify()
        assert report.ok and report.heads >= 1 and report.entries >= 1, report.problems
    engine.dispose()


def bind_tracker(factory, loan_id: int) -> None:
    """Fit TRACKER to the loan's car, reporting once a minute as ``make_track`` plays it."""
    with transaction(factory) as session:
        repository = DeviceRepository(session)
        tracker = repository.get_by_ident(TRACKER)
        tracker.report_interval_s = 60
        repository.bind(device=tracker, vehicle=session.get_one(Loan, loan_id).vehicle)


def wait_for_health(base: str, ready, timeout: float = 20) -> dict:
    """Poll ``GET /api/v1/health`` until ``ready(jobs)``; the last answer."""
    deadline = time.monotonic() + timeout
    anonymous = httpx.get(f"{base}/api/v1/health", timeout=10)
    assert anonymous.json() == {"status": "ok"}  # liveness only: no ports, traffic or jobs
    while True:
        auth = {"Authorization": f"Bearer {HEALTH_TOKEN}"}
        response = httpx.get(f"{base}/api/v1/health", headers=auth, timeout=10)
        assert response.status_code == 200, response.text
        body = response.json()
        if ready(body["jobs"]) or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_health_is_503_naming_the_problem_when_the_database_is_unreachable(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'gone' / 'lienwatch.sqlite3'}")
    app = FastAPI()

    async def report() -> Report:
        return Report({"jobs": {}})

    app.include_router(health_router(engine, report, detail_token=HEALTH_TOKEN))

    async def ask() -> httpx.Response:
        async with serving_http(app, "127.0.0.1", 0) as port, httpx.AsyncClient() as client:
            auth = {"Authorization": f"Bearer {HEALTH_TOKEN}"}
            return await client.get(f"http://127.0.0.1:{port}/api/v1/health", headers=auth)

    response = asyncio.run(ask())
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"]["reachable"], body["jobs"]) == ("unavailable", False,
                                                                             {})  # fmt: skip
    assert "unable to open database file" in body["database"]["error"]
    assert body["problems"] == [f"database: {body['database']['error']}"]
    engine.dispose()


def test_serve_worker_and_gateway_refuse_a_database_that_is_not_migrated(tmp_path):
    assert run("db", "upgrade", "0008", cwd=tmp_path).returncode == 0  # an older lienwatch's
    for command in (("serve", "--jt808-port", "0", "--gt06-port", "0", "--http-port", "0"),
                    ("worker", "--http-port", "0"),
                    ("gateway", "--jt808-port", "0", "--gt06-port", "0")):  # fmt: skip
        result = run(*command, cwd=tmp_path, env={"LIENWATCH_GATEWAY__HTTP_INGEST": "false"})
        assert result.returncode == 1
        assert result.stderr.splitlines()[-1] == (
            "lienwatch: error: database at revision 0008, this lienwatch needs "
            f"{migrate.head_revision()}: run `lienwatch db upgrade`"
        )
        assert "Traceback" not in result.stderr


def test_a_tracker_alarm_becomes_an_alert_and_a_follow_up_within_seconds(tmp_path):
    """The embedded chain over real TCP: tracker → gateway → bus → live monitor → alert →
    follow-up trigger, without waiting for the reorder window (a day) or the next follow-up
    tick (an hour): an alarm is an event."""
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'lienwatch.sqlite3'}")
    factory = session_factory(engine)
    loan_id, _ = book_with_a_loan_falling_due(factory)
    bind_tracker(factory, loan_id)
    env = {
        "LIENWATCH_SCHEDULER__FOLLOWUP_TICK_S": "3600",  # the first tick at start, then none
        "LIENWATCH_MONITOR__REORDER_WINDOW_S": "86400",
        "LIENWATCH_MONITOR__ADVANCE_S": "3600",
        "LIENWATCH_GATEWAY__HEALTH_TOKEN": HEALTH_TOKEN,
    }
    server, ports = serve_on_free_ports(tmp_path, env)
    try:
        assert "monitor on 1 vehicles" in server.ready
        wait_for_health(f"http://127.0.0.1:{ports['http']}",
                        lambda jobs: jobs["followup_tick"]["runs"] >= 1)  # fmt: skip
        track = make_track(TRACKER, 3, alarm_at=1, start=int(clock.timestamp()) - 600)
        report = asyncio.run(play([track], "jt808", "127.0.0.1", ports["jt808"], PlayOptions()))
        assert (report.errors, report.acked_positions) == (0, 3)
        sent = time.monotonic()
        alert_id = wait_for(lambda: alert_of(factory, loan_id, "power_cut"), timeout=5)
        trigger = wait_for(lambda: trigger_of(factory, alert_id), timeout=5)
        took = time.monotonic() - sent
    finally:
        code, _ = server.stop()
    assert code == 0, "".join(server.stderr)
    assert trigger == "collateral_alert" and took < 5
    engine.dispose()


def alert_of(factory, loan_id: int, alert_type: str) -> int | None:
    with transaction(factory) as session:
        return session.scalar(
            select(Alert.id).where(Alert.loan_id == loan_id, Alert.type == alert_type)
        )


def trigger_of(factory, alert_id: int) -> str | None:
    with transaction(factory) as session:
        return session.scalar(select(Trigger.kind).where(Trigger.alert_id == alert_id))


def wait_for(found, timeout: float = 20):
    """Poll ``found()`` until it returns something; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (value := found()) is None:
        assert time.monotonic() < deadline, "not found in time"
        time.sleep(0.2)
    return value


def test_serve_workers_answer_http_in_several_processes_and_stop_with_it(tmp_path):
    refused = run("serve", "--workers", "2", "--no-gateway", "--no-scheduler", "--no-monitor",
                  "--http-port", "0", cwd=tmp_path)  # fmt: skip
    assert refused.returncode == 2
    assert "--workers" in refused.stderr and 'kind = "jetstream"' in refused.stderr

    server = start("serve", "--workers", "3", "--no-gateway", "--no-scheduler", "--no-monitor",
                   "--http-port", "0", cwd=tmp_path,
                   env={"LIENWATCH_GATEWAY__HTTP_INGEST": "false"})  # fmt: skip
    try:
        assert "(3 processes)" in server.ready
        port = int(re.search(r"http port (\d+)", server.ready).group(1))
        pid = server.process.pid
        children = [child for task in Path(f"/proc/{pid}/task").iterdir()
                    for child in (task / "children").read_text().split()]  # fmt: skip
        assert len(children) >= 2  # the two more HTTP processes (and spawn's tracker)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            answers = [client.get("/api/v1/health", headers={"Connection": "close"})
                       for _ in range(20)]  # fmt: skip
        assert {answer.status_code for answer in answers} == {200}
    finally:
        code, _ = server.stop(timeout=60)
    assert code == 0
    assert not any(Path(f"/proc/{child}").exists() and "lienwatch" in Path(
        f"/proc/{child}/cmdline").read_text(errors="replace") for child in children)


def test_serve_leaves_the_monitor_to_the_workers_that_run_it(tmp_path):
    """With [worker] monitor = true, serve runs no monitor unless asked, and refuses to be
    asked: two monitors over one fleet would raise every alert twice."""
    from lienwatch.commands.serve import runs_monitor
    from lienwatch.config import Settings, WorkerSettings

    workers = Settings(worker=WorkerSettings(monitor=True))
    assert [runs_monitor(Settings(), asked) for asked in (None, True, False)] == [True, True, False]
    assert [runs_monitor(workers, asked) for asked in (None, False)] == [False, False]
    result = run("serve", "--monitor", "--http-port", "0", cwd=tmp_path,
                 env={"LIENWATCH_WORKER__MONITOR": "true"})  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith(
        "lienwatch: error: Invalid value for --monitor: [worker] monitor = true: the workers run"
    )
    assert not (tmp_path / "lienwatch.sqlite3").exists()  # refused before opening anything


def test_a_running_serve_judges_by_alert_rules_published_while_it_runs(tmp_path):
    """An analyst publishes alert rules while ``lienwatch serve`` runs: the live monitor takes
    them at its next fleet reload, without a restart, and a tracker silent since before the
    change (its clock kept) goes offline by the new limit, the alert recording the version."""
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'lienwatch.sqlite3'}")
    factory = session_factory(engine)
    loan_id, _ = book_with_a_loan_falling_due(factory)
    bind_tracker(factory, loan_id)
    assert run("user", "add", "nia", "--role", "analyst", cwd=tmp_path).returncode == 0
    (tmp_path / "rules.toml").write_text(
        "version = 1\n[thresholds]\noffline_wired_h = 0.05\noffline_min_intervals = 1\n")
    env = {
        "LIENWATCH_SCHEDULER__FOLLOWUP_TICK_S": "3600",
        "LIENWATCH_MONITOR__REORDER_WINDOW_S": "0",
        "LIENWATCH_MONITOR__ADVANCE_S": "0.3",
        "LIENWATCH_MONITOR__FLEET_REFRESH_S": "0.3",
        "LIENWATCH_GATEWAY__HEALTH_TOKEN": HEALTH_TOKEN,
    }
    server, ports = serve_on_free_ports(tmp_path, env)
    try:
        base = f"http://127.0.0.1:{ports['http']}"
        track = make_track(TRACKER, 3, start=int(clock.timestamp()) - 900)  # last fix 13 min ago
        report = asyncio.run(play([track], "jt808", "127.0.0.1", ports["jt808"], PlayOptions()))
        assert (report.errors, report.acked_positions) == (0, 3)
        monitor = wait_for(lambda: monitor_status(base, lambda m: m["fixes_ingested"] >= 3))
        time.sleep(1)  # ticks under the configured 24 h: nothing offline
        assert monitor["alert_rules"] is None
        assert alert_of(factory, loan_id, "device_offline") is None
        # in force from a minute back: each process runs its own clock from the test's
        since = (clock.now() - timedelta(minutes=1)).isoformat()
        published = run("alert", "rules-publish", "rules.toml", "--by", "nia", "--at", since,
                        cwd=tmp_path)  # fmt: skip
        assert published.returncode == 0, published.stderr
        alert_id = wait_for(lambda: alert_of(factory, loan_id, "device_offline"), timeout=10)
        monitor = monitor_status(base, lambda m: True)
    finally:
        code, _ = server.stop()
    assert code == 0, "".join(server.stderr)
    assert monitor["alert_rules"] == 1 and monitor["fleet_reloads"] >= 2
    with transaction(factory) as session:
        alert = session.get_one(Alert, alert_id)
        assert alert.evidence["rule_set"] == 1
        assert alert.evidence["thresholds"]["offline_wired_h"] == 0.05
        last = track.fixes.time[-1]  # the clock ran from the fix before the change
        assert alert.evidence["fixes"][0]["time"] == iso_utc(int(last))
    engine.dispose()


def monitor_status(base: str, ready) -> dict | None:
    """The live monitor's figures in ``GET /api/v1/health`` when ``ready(them)``, else None."""
    auth = {"Authorization": f"Bearer {HEALTH_TOKEN}"}
    monitor = httpx.get(f"{base}/api/v1/health", headers=auth, timeout=10).json()["monitor"]
    return monitor if monitor and ready(monitor) else None
