from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import numpy as np

from lienwatch.domain.money import parse_yuan
from lienwatch.domain.positions import PositionColumns
from lienwatch.sim.generate import SimConfig, generate
from lienwatch.sim.records import Portfolio
from lienwatch.sim.write import POSITIONS_HEADER, write_portfolio, write_positions

from .conftest import SMALL

FILES = {
    "borrowers",
    "vehicles",
    "devices",
    "loans",
    "payments",
    "positions",
    "risk_zones",
    "truth",
}


def test_same_config_gives_byte_identical_files(portfolio: Portfolio, tmp_path: Path) -> None:
    first = write_portfolio(portfolio, tmp_path / "a")
    second = write_portfolio(generate(SMALL), tmp_path / "b")
    assert set(first) == FILES
    for name, path in first.items():
        assert path.read_bytes() == second[name].read_bytes(), name


def test_another_seed_gives_another_portfolio(portfolio: Portfolio) -> None:
    other = generate(SimConfig(loans=100, days=20, seed=12))
    assert [b.name for b in other.borrowers] != [b.name for b in portfolio.borrowers]
    n = min(len(other.positions), len(portfolio.positions))
    assert not np.array_equal(other.positions.lat[:n], portfolio.positions.lat[:n])


def read_positions(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="ascii", newline="") as handle:
        assert handle.readline().rstrip("\n") == POSITIONS_HEADER
        handle.seek(0)
        return list(csv.DictReader(handle))


def test_positions_round_trip(portfolio: Portfolio, tmp_path: Path) -> None:
    rows = read_positions(write_positions(portfolio.positions, tmp_path / "p.csv"))
    p = portfolio.positions
    assert len(rows) == len(p)
    assert [r["device_id"] for r in rows] == p.device_id.tolist()
    times = [int(datetime.fromisoformat(r["time"]).timestamp()) for r in rows]
    assert times == p.time.tolist()
    assert all(r["time"].endswith("Z") for r in rows[:100])
    np.testing.assert_allclose([float(r["lat"]) for r in rows], p.lat, atol=5.1e-7)
    np.testing.assert_allclose([float(r["lon"]) for r in rows], p.lon, atol=5.1e-7)
    np.testing.assert_allclose([float(r["speed_kmh"]) for r in rows], p.speed_kmh, atol=0.051)
    assert [int(r["course"]) for r in rows] == p.course.tolist()
    assert [r["alarms"] for r in rows] == p.alarms.tolist()
    assert [r["valid"] == "true" for r in rows] == p.valid.tolist()
    assert "power_cut" in {r["alarms"] for r in rows}


def test_coordinate_formatting_edge_cases(tmp_path: Path) -> None:
    lat = np.array([0.0, -0.0000004, -33.8688197, 9.9999996, 45.5])
    lon = np.array([0.0000004, -179.9999999, 151.2092955, 100.0, 7.25])
    n = len(lat)
    positions = PositionColumns(
        device_id=np.array(["a", "a", "b", "b", "c"], dtype=object),
        time=np.arange(n, dtype=np.int64) + 1_790_000_000,
        lat=lat,
        lon=lon,
        speed_kmh=np.array([0, 12.34, 99.96, 135, 0.04], dtype=np.float32),
        course=np.array([0, 359, 1, 180, 90], dtype=np.int16),
        valid=np.array([True, False, True, True, True]),
        alarms=np.array(["", "power_cut", "", "power_cut;vibration", ""], dtype=object),
    )
    rows = read_positions(write_positions(positions, tmp_path / "edge.csv"))
    assert [r["lat"] for r in rows] == [
        "0.000000",
        "0.000000",
        "-33.868820",
        "10.000000",
        "45.500000",
    ]
    assert [r["lon"] for r in rows][:3] == ["0.000000", "-180.000000", "151.209296"]
    assert [r["speed_kmh"] for r in rows] == ["0.0", "12.3", "100.0", "135.0", "0.0"]
    assert [r["alarms"] for r in rows] == ["", "power_cut", "", "power_cut;vibration", ""]
    assert rows[0]["time"] == "2026-09-21T14:13:20Z"


def test_tables_round_trip(portfolio: Portfolio, tmp_path: Path) -> None:
    paths = write_portfolio(portfolio, tmp_path, positions=False)
    assert "positions" not in paths
    with paths["loans"].open(encoding="utf-8") as handle:
        loans = list(csv.DictReader(handle))
    assert [parse_yuan(r["principal"]) for r in loans] == [x.principal for x in portfolio.loans]
    assert [r["annual_rate"] for r in loans] == [str(x.annual_rate) for x in portfolio.loans]
    with paths["payments"].open(encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    assert header[:4] == ["id", "loan_ref", "date", "amount"]
    truth = json.loads(paths["truth"].read_text("utf-8"))
    assert truth["profiles"] == {k: v.value for k, v in portfolio.truth.profiles.items()}
    assert len(truth["events"]) == len(portfolio.truth.events)
    zones = json.loads(paths["risk_zones"].read_text("utf-8"))
    assert zones == portfolio.truth.risk_zones
    with paths["borrowers"].open(encoding="utf-8") as handle:
        names = [r["name"] for r in csv.DictReader(handle)]
    assert names == [b.name for b in portfolio.borrowers]
