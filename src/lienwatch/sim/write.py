"""Writing a portfolio to CSV, GeoJSON and JSON files.

Positions are formatted without a Python loop per row: every field is rendered into a
fixed-width byte slot of a ``(rows, width)`` matrix (small lookup tables for times, speeds,
courses and flags; digit arithmetic for coordinates), and the NUL padding is then dropped.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, fields
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lienwatch.domain.money import format_yuan
from lienwatch.domain.positions import PositionColumns
from lienwatch.sim.records import Portfolio, TruthEvent

POSITIONS_HEADER = "device_id,time,lat,lon,speed_kmh,course,alarms,valid"
_CHUNK_ROWS = 250_000
_DAY_S = 86_400
_MONEY_FIELDS = {"purchase_price", "principal", "upfront_fee", "amount"}


def write_portfolio(
    portfolio: Portfolio, directory: Path, *, positions: bool = True
) -> dict[str, Path]:
    """Write the portfolio's files into ``directory`` (created if missing).

    Files: ``borrowers.csv``, ``vehicles.csv``, ``devices.csv``, ``loans.csv``,
    ``payments.csv``, ``positions.csv`` (unless ``positions`` is false),
    ``risk_zones.geojson`` and ``truth.json``. Amounts are yuan with two decimals, rates
    decimals, times ISO 8601 in UTC.

    Returns:
        The paths written, keyed by file stem (``"loans"``, ``"positions"``, ...).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "borrowers": _write_records(directory / "borrowers.csv", portfolio.borrowers),
        "vehicles": _write_records(directory / "vehicles.csv", portfolio.vehicles),
        "devices": _write_records(directory / "devices.csv", portfolio.devices),
        "loans": _write_records(directory / "loans.csv", portfolio.loans),
        "payments": _write_payments(directory / "payments.csv", portfolio),
    }
    if positions:
        paths["positions"] = write_positions(portfolio.positions, directory / "positions.csv")
    zones_path = directory / "risk_zones.geojson"
    zones_path.write_text(json.dumps(portfolio.truth.risk_zones, ensure_ascii=False), "utf-8")
    paths["risk_zones"] = zones_path
    paths["truth"] = _write_truth(directory / "truth.json", portfolio)
    return paths


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name in _MONEY_FIELDS:
        return format_yuan(value)
    if isinstance(value, float):
        return f"{value:.6f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _write_records(path: Path, records: list[Any]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if records:
            names = [f.name for f in fields(records[0])]
            writer.writerow(names)
            writer.writerows([_cell(n, getattr(r, n)) for n in names] for r in records)
    return path


def _write_payments(path: Path, portfolio: Portfolio) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "loan_ref", "date", "amount", "channel", "payer_account",
                         "payer_name"])  # fmt: skip
        writer.writerows(
            [p.external_id, p.loan_ref, p.paid_on.isoformat(), format_yuan(p.amount), p.channel,
             p.payer_account, p.payer_name]
            for p in portfolio.payments
        )  # fmt: skip
    return path


def _event_json(event: TruthEvent) -> dict[str, Any]:
    data = asdict(event)
    data["start"] = event.start.isoformat()
    data["end"] = event.end.isoformat() if event.end else None
    return data


def _write_truth(path: Path, portfolio: Portfolio) -> Path:
    truth = portfolio.truth
    document = {
        "start": portfolio.start.isoformat(),
        "as_of": portfolio.as_of.isoformat(),
        "profiles": {ref: profile.value for ref, profile in truth.profiles.items()},
        "rings": truth.rings,
        "events": [_event_json(e) for e in truth.events],
    }
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1), "utf-8")
    return path


def _table(strings: list[str]) -> np.ndarray:
    return np.array([s.encode("ascii") for s in strings])


def _slots(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Rows of ``table[codes]`` as a ``(rows, width)`` uint8 matrix, NUL-padded."""
    picked = table[codes]
    return picked.view(np.uint8).reshape(len(codes), table.dtype.itemsize)


def _coordinate(values: np.ndarray, whole_digits: int) -> np.ndarray:
    """Degrees as ``[-]d.dddddd,`` in byte slots: sign and whole part by table, digits by math."""
    micro = np.round(np.abs(values) * 1e6).astype(np.int64)
    negative = (values < 0) & (micro > 0)
    whole = micro // 1_000_000
    top = 10**whole_digits
    wholes = _table([f"{w}." for w in range(top)] + [f"-{w}." for w in range(top)])
    head = _slots(wholes, whole + top * negative)
    frac = micro % 1_000_000
    digits = np.empty((len(values), 7), dtype=np.uint8)
    for k in range(6):
        digits[:, 5 - k] = frac // 10**k % 10 + ord("0")
    digits[:, 6] = ord(",")
    return np.hstack([head, digits])


def _device_codes(device_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of a device column sorted by device, and the table of ``id,`` strings."""
    if not len(device_id):
        return np.zeros(0, dtype=np.int64), _table([","])
    change = np.r_[True, device_id[1:] != device_id[:-1]]
    codes = np.cumsum(change) - 1
    return codes, _table([f"{d}," for d in device_id[change]])


def write_positions(positions: PositionColumns, path: Path) -> Path:
    """Write ``positions`` as CSV with the header ``device_id,time,lat,lon,...`` (vectorized).

    Times are ISO 8601 UTC (``2026-07-04T08:30:00Z``), coordinates have six decimals, speed one,
    ``alarms`` holds ``;``-joined canonical names and ``valid`` is ``true`` or ``false``.
    """
    path = Path(path)
    n = len(positions)
    device_codes, devices = _device_codes(positions.device_id)
    t0 = int(positions.time.min()) // _DAY_S * _DAY_S if n else 0
    day_count = int((positions.time.max() - t0) // _DAY_S) + 1 if n else 1
    days = _table(
        [f"{datetime.fromtimestamp(t0 + d * _DAY_S, UTC):%Y-%m-%d}T" for d in range(day_count)]
    )
    seconds = np.arange(_DAY_S)
    clock = _table(
        [
            f"{h:02d}:{m:02d}:{s:02d}Z,"
            for h, m, s in zip(seconds // 3600, seconds // 60 % 60, seconds % 60, strict=True)
        ]
    )
    speed_tenths = np.round(positions.speed_kmh.astype(np.float64) * 10).astype(np.int64)
    speeds = _table([f"{v // 10}.{v % 10}," for v in range(int(speed_tenths.max(initial=0)) + 1)])
    courses = _table([f"{c}," for c in range(360)])
    alarm_mask = positions.alarms != ""
    alarm_names = sorted(set(positions.alarms[alarm_mask].tolist()))
    alarm_codes = np.zeros(n, dtype=np.int64)
    alarm_codes[alarm_mask] = [alarm_names.index(a) + 1 for a in positions.alarms[alarm_mask]]
    alarms = _table([","] + [f"{a}," for a in alarm_names])
    flags = _table(["false\n", "true\n"])
    with path.open("wb") as handle:
        handle.write((POSITIONS_HEADER + "\n").encode("ascii"))
        for lo in range(0, n, _CHUNK_ROWS):
            rows = slice(lo, min(lo + _CHUNK_ROWS, n))
            t = positions.time[rows] - t0
            matrix = np.hstack(
                [
                    _slots(devices, device_codes[rows]),
                    _slots(days, t // _DAY_S),
                    _slots(clock, t % _DAY_S),
                    _coordinate(positions.lat[rows], 2),
                    _coordinate(positions.lon[rows], 3),
                    _slots(speeds, speed_tenths[rows]),
                    _slots(courses, positions.course[rows].astype(np.int64) % 360),
                    _slots(alarms, alarm_codes[rows]),
                    _slots(flags, positions.valid[rows].astype(np.int64)),
                ]
            )
            flat = matrix.ravel()
            handle.write(flat[flat != 0].tobytes())
    return path
