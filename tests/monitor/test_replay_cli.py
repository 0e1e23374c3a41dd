"""``lienwatch replay`` on files the simulator writes, and its errors for bad input."""

from __future__ import annotations

import json
import re
from datetime import date, datetime

import pytest
from typer.testing import CliRunner

from lienwatch.cli import app
from lienwatch.commands.replay import InputFileError, read_positions
from lienwatch.sim import SimConfig, generate, write_portfolio

runner = CliRunner()


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sim")
    mix = {"on_time": 1, "tracker_removed": 1, "secondary_pledge": 1}
    config = SimConfig(loans=12, days=14, seed=5, as_of=date(2026, 10, 1), profile_mix=mix)
    write_portfolio(generate(config), directory)
    return directory


def test_replays_simulator_files(sim_dir):
    result = runner.invoke(
        app,
        [
            "replay",
            str(sim_dir / "positions.csv"),
            "--devices",
            str(sim_dir / "devices.csv"),
            "--zones",
            str(sim_dir / "risk_zones.geojson"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    alerts = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"id')]
    kinds = {a["type"] for a in alerts}
    assert {"power_cut", "device_removed", "long_stay", "risk_zone_visit"} <= kinds
    keys = {"type", "severity", "vehicle_id", "device_id", "loan_id", "start", "end", "lat"}
    assert all(keys | {"lon", "province", "evidence"} <= set(a) for a in alerts)
    shape = {"rule", "why", "thresholds", "fixes"}
    assert all(shape <= set(a["evidence"]) and a["evidence"]["fixes"] for a in alerts)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "D1,2026-07-01T08:00:00,30.1,120.1,,true",
            "line 3, column time: '2026-07-01T08:00:00' has no UTC offset",
        ),
        ("D1,yesterday,30.1,120.1,,true", "line 3, column time: bad time 'yesterday'"),
        ("D1,2026-07-01T08:00:00Z,95,120.1,,true", "line 3, column lat: 95.0 outside -90..90"),
        ("D1,2026-07-01T08:00:00Z,30.1,abc,,true", "line 3, column lon: not a number 'abc'"),
        (
            "D1,2026-07-01T08:00:00Z,30.1,120.1,meteor,true",
            "line 3, column alarms: unknown alarm 'meteor'",
        ),
    ],
)
def test_bad_rows_are_reported_with_line_and_column(tmp_path, row, message):
    path = tmp_path / "p.csv"
    path.write_text(
        f"device_id,time,lat,lon,alarms,valid\nD1,2026-07-01T07:00:00Z,30,120,,true\n{row}\n"
    )
    result = runner.invoke(app, ["replay", str(path)])
    assert result.exit_code == 1
    assert message in str(result.exception)


def test_bad_zones_name_the_feature(tmp_path, sim_dir):
    zones = json.loads((sim_dir / "risk_zones.geojson").read_text())
    zones["features"][2]["properties"]["category"] = "car_wash"
    path = tmp_path / "z.geojson"
    path.write_text(json.dumps(zones))
    result = runner.invoke(app, ["replay", str(sim_dir / "positions.csv"), "--zones", str(path)])
    assert result.exit_code == 1 and "feature 2: category 'car_wash'" in str(result.exception)


def _replay(positions, sim_dir):
    return runner.invoke(
        app,
        ["replay", str(positions), "--devices", str(sim_dir / "devices.csv"), "--json"],
    )


def test_parquet_with_typed_columns_replays_like_the_csv(tmp_path, sim_dir):
    polars = pytest.importorskip("polars")
    fixes = read_positions(sim_dir / "positions.csv")
    path = tmp_path / "positions.parquet"
    polars.DataFrame(
        {
            "device_id": fixes.device_id.tolist(),
            "time": polars.Series(fixes.time * 1_000_000).cast(polars.Datetime("us", "UTC")),
            "lat": fixes.lat,
            "lon": fixes.lon,
            "alarms": fixes.alarms.tolist(),
            "valid": fixes.valid,
        }
    ).write_parquet(path)
    from_csv, from_parquet = _replay(sim_dir / "positions.csv", sim_dir), _replay(path, sim_dir)
    assert from_parquet.exit_code == 0, from_parquet.output
    assert from_parquet.stdout == from_csv.stdout
    assert from_parquet.stdout.count('{"id"') > 5


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("lat", [30.0, 95.0], "row 2, column lat: 95.0 outside -90..90"),
        ("lon", ["120", "abc"], "row 2, column lon: not a number 'abc'"),
        ("time", ["2026-07-01T07:00:00Z", "soon"], "row 2, column time: bad time 'soon'"),
        ("alarms", ["", "meteor"], "row 2, column alarms: unknown alarm 'meteor'"),
    ],
)
def test_bad_parquet_rows_are_reported_with_row_and_column(tmp_path, column, values, message):
    polars = pytest.importorskip("polars")
    rows = {
        "device_id": ["D1", "D1"],
        "time": ["2026-07-01T07:00:00Z", "2026-07-01T08:00:00Z"],
        "lat": [30.0, 30.1],
        "lon": [120.0, 120.1],
        "alarms": ["", ""],
    }
    path = tmp_path / "p.parquet"
    polars.DataFrame(rows | {column: values}).write_parquet(path)
    with pytest.raises(InputFileError, match=re.escape(f"{path} {message}")):
        read_positions(path)


def test_parquet_time_without_zone_and_unreadable_file_are_refused(tmp_path):
    polars = pytest.importorskip("polars")
    naive = tmp_path / "naive.parquet"
    polars.DataFrame(
        {"device_id": ["D1"], "time": [datetime(2026, 7, 1, 8)], "lat": [30.0], "lon": [120.0]}
    ).write_parquet(naive)
    with pytest.raises(InputFileError, match="row 1, column time: '2026-07-01 08:00:00' has no"):
        read_positions(naive)
    broken = tmp_path / "broken.parquet"
    broken.write_text("device_id,time\n")
    with pytest.raises(InputFileError, match=r"broken\.parquet: not a readable Parquet file"):
        read_positions(broken)


def test_without_json_one_readable_line_per_alert(sim_dir):
    args = ["replay", str(sim_dir / "positions.csv"), "--devices", str(sim_dir / "devices.csv")]
    lines = runner.invoke(app, args).stdout.splitlines()
    alerts = [json.loads(x) for x in runner.invoke(app, [*args, "--json"]).stdout.splitlines()]
    assert len(lines) == len(alerts) > 0
    first = alerts[0]
    assert lines[0].startswith(f"{first['start']} {first['type']} {first['severity']} vehicle "
                               f"{first['vehicle_id']} device {first['device_id']}")  # fmt: skip
    # and why: the rule, its thresholds and the fixes, as the JSON's evidence has them
    evidence = first["evidence"]
    assert f" because {evidence['rule']}" in lines[0]
    assert all(f"{name}={value}" in lines[0] for name, value in evidence["thresholds"].items())
    assert all(f"{f['device']} {f['time']}" in lines[0] for f in evidence["fixes"])


def test_loans_tie_vehicles_to_their_borrowers(tmp_path):
    """A company's five cars at its depot are one borrower's, not a cluster: without the
    loans file each vehicle is its own owner and they group; with it, no cluster, and every
    alert carries its loan."""
    config = SimConfig(loans=60, days=14, seed=2, as_of=date(2026, 10, 1))
    portfolio = generate(config)
    write_portfolio(portfolio, tmp_path)
    borrower_of = {loan.vehicle_vin: loan.borrower_ref for loan in portfolio.loans}
    args = ["replay", str(tmp_path / "positions.csv"), "--devices", str(tmp_path / "devices.csv"),
            "--json"]  # fmt: skip

    def clusters(result) -> list[dict]:
        assert result.exit_code == 0, result.output
        alerts = [json.loads(line) for line in result.stdout.splitlines()]
        return [a for a in alerts if a["type"] == "cluster"], alerts

    alone, _ = clusters(runner.invoke(app, args))
    assert alone and all(
        len({borrower_of[v] for v in a["evidence"]["vehicles"]}) == 1 for a in alone
    )  # one borrower's cars
    tied, alerts = clusters(runner.invoke(app, [*args, "--loans", str(tmp_path / "loans.csv")]))
    assert tied == []
    loan_of = {loan.vehicle_vin: loan.ref for loan in portfolio.loans}
    assert alerts and all(a["loan_id"] == loan_of[a["vehicle_id"]] for a in alerts)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("L1,,V1,Shanghai,Asia/Shanghai", "line 2, column borrower_ref: empty"),
        ("L1,B1,V1,Atlantis,Asia/Shanghai", "line 2, column booked_province: unknown province"),
        ("L1,B1,V1,31,Mars/Olympus", "line 2, column time_zone: unknown time zone 'Mars/Olympus'"),
    ],
)
def test_bad_loans_rows_are_reported_with_line_and_column(tmp_path, sim_dir, row, message):
    path = tmp_path / "loans.csv"
    path.write_text(f"ref,borrower_ref,vehicle_vin,booked_province,time_zone\n{row}\n")
    args = ["replay", str(sim_dir / "positions.csv"), "--devices", str(sim_dir / "devices.csv"),
            "--loans", str(path)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and message in str(result.exception)
    result = runner.invoke(app, ["replay", str(sim_dir / "positions.csv"), "--loans", str(path)])
    assert result.exit_code == 1 and "--loans: give --devices too" in str(result.exception)
