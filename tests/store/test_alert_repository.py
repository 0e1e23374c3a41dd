"""Alerts persisted through AlertRepository on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from lienwatch.config import MonitorThresholds
from lienwatch.data import china_provinces
from lienwatch.domain.provinces import ProvinceIndex
from lienwatch.errors import ConflictError, NotFoundError
from lienwatch.monitor import AlertBook, AlertType, VehicleSpec
from lienwatch.monitor.detectors.base import evidence_of
from lienwatch.monitor.model import Fix
from lienwatch.services.alerts import decide_alert
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.monitoring import open_monitor_alerts
from lienwatch.store.repositories import AlertRepository
from lienwatch.store.tables import Alert, LedgerEntry
from tests import factories
from tests.test_cli import run

T0 = int(datetime(2026, 7, 1, tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def book_factory():
    provinces = ProvinceIndex(china_provinces()).provinces
    return lambda: AlertBook(provinces)


def test_save_updates_resolves_and_enforces_one_open_alert(db_session, book_factory):
    loan = factories.loan(db_session, "L9")
    tracker = factories.device(db_session, "013800000009")
    spec = VehicleSpec(loan.vehicle.vin, loan_id="L9", exposure=5_000_00)
    book = book_factory()
    alert = book.raise_alert(
        AlertType.DEVICE_OFFLINE,
        spec,
        severity="warning",
        start=T0,
        at=T0,
        device_id=tracker.ident,
        position=(30.27, 120.15, 10),
        evidence={"silent_h": 25},
    )
    repo = AlertRepository(db_session)
    row = repo.save(alert)
    assert (row.vehicle_id, row.device_id, row.loan_id) == (loan.vehicle_id, tracker.id, loan.id)
    assert row.status == "open" and row.exposure == 500_000 and row.evidence == {"silent_h": 25}

    book.raise_alert(
        AlertType.DEVICE_OFFLINE,
        spec,
        severity="warning",
        start=T0,
        at=T0 + 60,
        device_id=None,
        position=None,
        evidence={"silent_h": 26},
    )
    book.resolve_cause(spec.vehicle_id, AlertType.DEVICE_OFFLINE, T0 + 120)
    row = repo.save(alert)
    assert row.repeats == 1 and row.status == "resolved"
    assert row.ended_at == datetime.fromtimestamp(T0 + 120, UTC)
    assert repo.open_alerts() == []

    second = book.raise_alert(
        AlertType.DEVICE_OFFLINE,
        spec,
        severity="warning",
        start=T0 + 200,
        at=T0 + 200,
        device_id=None,
        position=None,
        evidence={},
    )
    repo.save(second)
    rogue = book_factory().raise_alert(
        AlertType.DEVICE_OFFLINE,
        spec,
        severity="warning",
        start=T0 + 300,
        at=T0 + 300,
        device_id=None,
        position=None,
        evidence={},
    )
    with pytest.raises(ConflictError, match="already has an open device_offline"):
        repo.save(rogue)


def test_people_acknowledge_and_mark_false_positive(db_session, book_factory):
    loan = factories.loan(db_session, "L10")
    spec = VehicleSpec(loan.vehicle.vin)
    alert = book_factory().raise_alert(
        AlertType.LONG_STAY,
        spec,
        severity="warning",
        start=T0,
        at=T0,
        device_id=None,
        position=None,
        evidence={},
    )
    repo = AlertRepository(db_session)
    row = repo.save(alert)
    when = datetime(2026, 7, 2, 9, tzinfo=UTC)
    repo.acknowledge(row.id, by="agent7", at=when)
    assert [r.id for r in repo.open_alerts(loan.vehicle_id)] == [row.id]
    repo.mark_false_positive(row.id, by="analyst", at=when)
    assert (row.status, row.status_by, row.status_at) == ("false_positive", "analyst", when)
    with pytest.raises(ConflictError, match="already false_positive"):
        repo.resolve(row.id, by="agent7", at=when)
    with pytest.raises(NotFoundError):
        repo.save(
            book_factory().raise_alert(
                AlertType.LONG_STAY,
                VehicleSpec("NOPE"),
                severity="warning",
                start=T0,
                at=T0,
                device_id=None,
                position=None,
                evidence={},
            )
        )


def test_a_refused_alert_leaves_the_transaction_usable(db_session, book_factory):
    loan = factories.loan(db_session, "L11")
    spec = VehicleSpec(loan.vehicle.vin, loan_id="L11")
    repo = AlertRepository(db_session)

    def power_cut(start: int):
        return book_factory().raise_alert(
            AlertType.POWER_CUT, spec, severity="critical", start=start, at=start,
            device_id=None, position=None, evidence={},
        )  # fmt: skip

    kept = repo.save(power_cut(T0))
    with pytest.raises(ConflictError):
        repo.save(power_cut(T0 + 60))
    assert [row.id for row in repo.open_alerts(loan.vehicle_id)] == [kept.id]


def test_people_decisions_stand_when_the_monitor_saves_again(db_session, book_factory):
    loan = factories.loan(db_session, "L12")
    spec = VehicleSpec(loan.vehicle.vin, loan_id="L12")
    book = book_factory()
    repo = AlertRepository(db_session)

    def repeat(alert_type: AlertType, at: int):
        return book.raise_alert(
            alert_type, spec, severity="warning", start=T0, at=at, device_id=None,
            position=None, evidence={"at": at},
        )  # fmt: skip

    stay, cut = repeat(AlertType.LONG_STAY, T0), repeat(AlertType.POWER_CUT, T0)
    stay_row, cut_row = repo.save(stay), repo.save(cut)
    when = datetime(2026, 7, 2, 9, tzinfo=UTC)
    repo.acknowledge(stay_row.id, by="agent7", at=when)
    repo.resolve(cut_row.id, by="agent7", at=when)
    assert repo.save(repeat(AlertType.LONG_STAY, T0 + 60)).status == "acknowledged"
    assert (stay_row.repeats, stay_row.evidence, stay_row.status_by) == (
        1,
        {"at": T0 + 60},
        "agent7",
    )
    assert repo.save(repeat(AlertType.POWER_CUT, T0 + 60)) is cut_row
    assert (cut_row.status, cut_row.repeats, cut_row.ended_at) == ("resolved", 0, when)
    book.resolve_cause(spec.vehicle_id, AlertType.LONG_STAY, T0 + 120)
    assert repo.save(stay).status == "resolved" and stay_row.status_by == "monitor"


def test_a_decision_is_in_the_ledger_and_a_second_one_records_nothing(store_url, book_factory):
    engine = make_engine(store_url)
    factory = session_factory(engine)
    when = datetime(2026, 7, 2, 9, tzinfo=UTC)
    with transaction(factory) as session:
        loan = factories.loan(session, "L11")
        alert = book_factory().raise_alert(
            AlertType.DEVICE_REMOVED, VehicleSpec(loan.vehicle.vin, loan_id="L11"),
            severity="critical",
            start=T0, at=T0, device_id=None, position=None, evidence={},
        )  # fmt: skip
        alert_id = AlertRepository(session).save(alert).id
    with transaction(factory) as session:
        decide_alert(session, alert_id=alert_id, decision="resolved", by="sam", at=when,
                     why="tracker refitted by the dealer")  # fmt: skip
    with pytest.raises(ConflictError), transaction(factory) as session:
        decide_alert(session, alert_id=alert_id, decision="false_positive", by="ann", at=when)
    with factory() as session:
        entries = [json.loads(body) for body in session.scalars(
            select(LedgerEntry.body).where(LedgerEntry.kind == "alert_decided"))]  # fmt: skip
    engine.dispose()
    assert [(e["subject"], e["by"], e["data"]["decision"], e["data"]["why"]) for e in entries] == [
        ("L11", "sam", "resolved", "tracker refitted by the dealer")]


def test_alerts_from_the_command_line(tmp_path, book_factory):
    url = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    cut = Fix(T0, "013800000012", True, 31.2, 121.4, 0.0, 0.0, 0.0, 8, -1, T0, 0, "power_cut",
              True)  # fmt: skip
    with transaction(session_factory(engine)) as session:
        loan = factories.loan(session, "L12")
        alert = book_factory().raise_alert(
            AlertType.POWER_CUT, VehicleSpec(loan.vehicle.vin, loan_id="L12", exposure=3_000_00),
            severity="critical", start=T0, at=T0, device_id=None, position=None,
            evidence=evidence_of("power_cut", MonitorThresholds(), fixes=[cut]),
        )  # fmt: skip
        alert_id = AlertRepository(session).save(alert).id
        other = factories.loan(session, "L13")
        stay = book_factory().raise_alert(
            AlertType.LONG_STAY, VehicleSpec(other.vehicle.vin, loan_id="L13", exposure=0),
            severity="warning", start=T0, at=T0, device_id=None, position=None, evidence={},
        )  # fmt: skip
        AlertRepository(session).save(stay)
    engine.dispose()
    env = {"LIENWATCH_DATABASE_URL": url}
    [listed] = json.loads(run("alert", "list", "--type", "power_cut", "--json", cwd=tmp_path,
                              env=env).stdout)  # fmt: skip
    assert (listed["alert"], listed["loan"], listed["exposure_fen"]) == (alert_id, "L12", 300_000)
    [line] = run("alert", "list", "--loan", "L13", cwd=tmp_path, env=env).stdout.splitlines()
    assert line.startswith(f"#{alert_id + 1} long_stay (warning, open) loan L13")
    for option, error in ((("--type", "power"), "Invalid value for --type: 'power' is no alert "
                           "type (power_cut, "), (("--loan", "L99"), "--loan: no loan 'L99'")):
        refused = run("alert", "list", *option, cwd=tmp_path, env=env)  # fmt: skip
        assert refused.returncode != 0 and error in refused.stderr

    shown = run("alert", "show", str(alert_id), cwd=tmp_path, env=env).stdout.splitlines()
    assert shown == [
        f"#{alert_id} power_cut (critical, open) loan L12 {listed['vin']} since "
        "2026-07-01T00:00:00+00:00, exposure ¥3,000.00",
        "because power_cut on 013800000012 2026-07-01T00:00:00Z 31.2,121.4",
        "the tracker reported a main-power-cut alarm",
    ]
    done = run("alert", "false-positive", str(alert_id), "--by", "sam", "--why", "a fuse, fixed",
               "--at", "2026-07-02T09:00:00+08:00", cwd=tmp_path, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"alert {alert_id} false_positive by sam: #{alert_id} power_cut")
    detail = json.loads(run("alert", "show", str(alert_id), "--json", cwd=tmp_path,
                            env=env).stdout)  # fmt: skip
    assert (detail["decided_by"], detail["decided_at"]) == ("sam", "2026-07-02T01:00:00+00:00")
    assert detail["evidence"]["fixes"] == [{"device": "013800000012", "time":
                                            "2026-07-01T00:00:00Z", "lat": 31.2, "lon": 121.4,
                                            "alarms": "power_cut"}]  # fmt: skip
    again = run("alert", "resolve", str(alert_id), "--by", "ann", cwd=tmp_path, env=env)
    assert again.returncode == 1
    assert again.stderr.strip() == f"lienwatch: error: alert {alert_id} is already false_positive"
    assert run("alert", "list", "--type", "power_cut", cwd=tmp_path,
               env=env).stdout.strip() == "no open alerts"  # fmt: skip
    missing = run("alert", "show", "999", cwd=tmp_path, env=env)
    assert (missing.returncode, missing.stderr.strip()) == (
        1, "lienwatch: error: alert 999 does not exist")


def test_the_monitor_warms_up_without_the_nightly_runs_payment_anomalies(db_session):
    """``lienwatch serve`` on the demo's database once stopped at start: the nightly run's
    open ``payment_anomaly`` alert is no alert type of the live monitor's."""
    loan = factories.loan(db_session, "L8")
    at = datetime.fromtimestamp(T0, UTC)
    db_session.add(Alert(key="payment_anomaly:P1", type="payment_anomaly", severity="warning",
                         status="open", vehicle_id=loan.vehicle_id, loan_id=loan.id,
                         started_at=at, raised_at=at, updated_at=at, evidence={}))  # fmt: skip
    db_session.flush()
    provinces = ProvinceIndex(china_provinces())
    assert open_monitor_alerts(db_session, provinces=provinces) == []
