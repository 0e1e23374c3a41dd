"""``lienwatch gateway`` and ``lienwatch simulate-devices`` as a user runs them."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys

from sqlalchemy import create_engine, text

from tests.processes import environment
from tests.test_cli import run


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_simulated_devices_through_the_gateway_command(tmp_path):
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    jt808_port, gt06_port, http_port = free_port(), free_port(), free_port()
    env = environment({"LIENWATCH_GATEWAY__UNKNOWN_DEVICES": "quarantine",
                       "LIENWATCH_GATEWAY__HTTP_PORT": str(http_port)})  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "lienwatch", "gateway", "--host", "127.0.0.1",
         "--jt808-port", str(jt808_port), "--gt06-port", str(gt06_port)],
        cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stderr is not None
        ready = next(line for line in server.stderr if "Ctrl-C" in line)  # logs come first
        assert f"HTTP ingest on port {http_port}" in ready
        for protocol, port in (("jt808", jt808_port), ("gt06", gt06_port)):
            result = run("simulate-devices", "--protocol", protocol, "--count", "2", "--port",
                         str(port), "--loans", "20", "--fixes", "15", "--json",
                         cwd=tmp_path)  # fmt: skip
            assert result.returncode == 0, result.stdout + result.stderr
            *devices, total = [json.loads(line) for line in result.stdout.splitlines()]
            assert len(devices) == 2 and total["errors"] == 0
            assert total["positions"] == total["acked_positions"] == 30
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(10)
    assert server.returncode == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'lienwatch.sqlite3'}")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM positions")).scalar() == 60
        quarantined = "SELECT count(*) FROM devices WHERE quarantined AND status = 'offline'"
        assert connection.execute(text(quarantined)).scalar() == 4
    engine.dispose()



def test_an_operator_resets_a_terminals_registration(tmp_path):
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'lienwatch.sqlite3'}")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO devices (ident, protocol, kind, model, "
                                "report_interval_s, status, auth_code, quarantined, created_at) "
                                "VALUES ('013900000001', 'jt808', 'wired', '', 60, 'unknown', "
                                "'digest', false, '2026-11-01 00:00:00')"))  # fmt: skip
    result = run("device", "reset-auth", "013900000001", "--by", "ops1", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["by"] == "ops1"
    assert "device reset-auth: 013900000001 by ops1" in result.stderr  # the audit line
    with engine.connect() as connection:
        assert connection.execute(text("SELECT auth_code FROM devices")).scalar() is None
    assert run("device", "reset-auth", "013900000002", "--by", "ops1", cwd=tmp_path).returncode
    engine.dispose()


def test_an_operator_ties_a_device_to_a_partner_and_records_its_fitting_day(tmp_path):
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'lienwatch.sqlite3'}")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO devices (ident, protocol, kind, model, "
                                "report_interval_s, status, quarantined, created_at) "
                                "VALUES ('15900001111', 'osmand', 'wireless', '', 60, 'unknown', "
                                "false, '2026-11-01 00:00:00')"))  # fmt: skip
    env = {"LIENWATCH_GATEWAY__PARTNERS__ACME": "partner-token-0123456789"}
    result = run("device", "set-partner", "15900001111", "acme", "--by", "ops1", cwd=tmp_path,
                 env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "device set-partner: 15900001111 by ops1" in result.stderr  # the audit line
    with engine.connect() as connection:
        assert connection.execute(text("SELECT partner FROM devices")).scalar() == "acme"
    unknown = run("device", "set-partner", "15900001111", "zeta", "--by", "ops1", cwd=tmp_path,
                  env=env)  # fmt: skip
    assert unknown.returncode != 0 and "zeta" in unknown.stderr
    fitted = run("device", "set-fitted", "15900001111", "2026-10-30", "--by", "ops1", cwd=tmp_path)
    assert fitted.returncode == 0 and "device set-fitted: 15900001111 by ops1" in fitted.stderr
    with engine.connect() as connection:
        assert str(connection.execute(text("SELECT fitted_on FROM devices")).scalar()) == (
            "2026-10-30"
        )
    bad = run("device", "set-fitted", "15900001111", "30/10/2026", "--by", "ops1", cwd=tmp_path)
    assert bad.returncode != 0 and "YYYY-MM-DD" in bad.stderr
    engine.dispose()
