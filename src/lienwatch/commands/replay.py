"""``lienwatch replay``: run the collateral monitor over a positions file, print alerts as JSON."""

from __future__ import annotations

import csv
import json
import tomllib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from pydantic import ValidationError

from lienwatch.config import MonitorSettings
from lienwatch.data import china_provinces
from lienwatch.domain.provinces import ProvinceIndex
from lienwatch.errors import LienwatchError
from lienwatch.monitor import DeviceSpec, FixBatch, MonitorInputError, VehicleSpec, ZoneLibrary
from lienwatch.monitor.batch import run_monitor
from lienwatch.telematics.protocols import CANONICAL_ALARMS

_POSITION_COLUMNS = ("device_id", "time", "lat", "lon")
_TRUE, _FALSE = {"true", "1", "yes", ""}, {"false", "0", "no"}


class InputFileError(LienwatchError):
    """A malformed input file; the message names the file, line and column."""


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputFileError(f"{path}: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise InputFileError(f"{path} line 1: missing column {missing[0]!r}")
        for row in reader:
            yield reader.line_num, row


def _number(path: Path, line: int, column: str, text: str | None, low: float, high: float):
    try:
        value = float(text or "")
    except ValueError:
        raise InputFileError(
            f"{path} line {line}, column {column}: not a number {text!r}"
        ) from None
    if not low <= value <= high:
        raise InputFileError(f"{path} line {line}, column {column}: {value} outside {low}..{high}")
    return value


def _epoch(path: Path, line: int, text: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputFileError(f"{path} line {line}, column time: bad time {text!r}") from None
    if moment.tzinfo is None:
        raise InputFileError(f"{path} line {line}, column time: {text!r} has no UTC offset")
    return int(moment.timestamp())


def read_positions(path: Path) -> FixBatch:
    """A positions CSV (``device_id,time,lat,lon`` and optional ``alarms``, ``valid``)."""
    devices, times, lats, lons, valids, alarms = [], [], [], [], [], []
    for line, row in _rows(path, _POSITION_COLUMNS):
        if not row["device_id"]:
            raise InputFileError(f"{path} line {line}, column device_id: empty")
        devices.append(row["device_id"])
        times.append(_epoch(path, line, row["time"]))
        lats.append(_number(path, line, "lat", row["lat"], -90, 90))
        lons.append(_number(path, line, "lon", row["lon"], -180, 180))
        valid = (row.get("valid") or "").strip().lower()
        if valid not in _TRUE | _FALSE:
            raise InputFileError(f"{path} line {line}, column valid: not true/false {valid!r}")
        valids.append(valid in _TRUE)
        names = [n for n in (row.get("alarms") or "").split(";") if n]
        unknown = [n for n in names if n not in CANONICAL_ALARMS]
        if unknown:
            raise InputFileError(f"{path} line {line}, column alarms: unknown alarm {unknown[0]!r}")
        alarms.append(";".join(names))
    return FixBatch(
        np.array(devices, dtype=object),
        np.array(times, dtype=np.int64),
        np.array(lats, dtype=np.float64),
        np.array(lons, dtype=np.float64),
        np.array(valids, dtype=bool),
        np.array(alarms, dtype=object),
    )


def read_devices(
    path: Path, provinces: ProvinceIndex
) -> tuple[list[DeviceSpec], list[VehicleSpec]]:
    """A devices CSV: ``device_id,vehicle_id,kind`` (``vehicle_vin`` is accepted for
    ``vehicle_id``, as the simulator writes it) and optional ``loan_id,home_lat,home_lon,
    region,report_interval_s``."""
    names = {p.name_en.lower(): p.code for p in provinces.provinces}
    names |= {p.name_zh: p.code for p in provinces.provinces}
    names |= {p.code: p.code for p in provinces.provinces}
    devices: list[DeviceSpec] = []
    vehicles: dict[str, VehicleSpec] = {}
    for line, row in _rows(path, ("device_id", "kind")):
        vehicle = row.get("vehicle_id") or row.get("vehicle_vin")
        if not vehicle:
            raise InputFileError(f"{path} line {line}, column vehicle_id: empty")
        where = f"{path} line {line}"
        try:
            interval = int(row.get("report_interval_s") or 0)
            devices.append(DeviceSpec(row["device_id"], vehicle, row["kind"], interval))
        except (ValueError, MonitorInputError) as exc:
            raise InputFileError(f"{where}: {exc}") from None
        region = (row.get("region") or "").strip()
        if region and region.lower() not in names and region not in names:
            raise InputFileError(f"{where}, column region: unknown province {region!r}")
        home = None
        if row.get("home_lat") or row.get("home_lon"):
            home = (
                _number(path, line, "home_lat", row.get("home_lat"), -90, 90),
                _number(path, line, "home_lon", row.get("home_lon"), -180, 180),
            )
        vehicles[vehicle] = VehicleSpec(
            vehicle,
            loan_id=row.get("loan_id") or None,
            region=names.get(region.lower(), names.get(region)) if region else None,
            home=home,
        )
    return devices, list(vehicles.values())


def read_zones(path: Path) -> ZoneLibrary:
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputFileError(f"{path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{path} line {exc.lineno}: not JSON ({exc.msg})") from None
    try:
        return ZoneLibrary(document)
    except MonitorInputError as exc:
        raise InputFileError(f"{path}: {exc}") from None


def read_monitor_config(path: Path) -> MonitorSettings:
    """The ``[monitor]`` section of a TOML file."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
        return MonitorSettings.model_validate(document.get("monitor", {}))
    except OSError as exc:
        raise InputFileError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputFileError(f"{path}: {exc}") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        reason = error["msg"].removeprefix("Value error, ")
        raise InputFileError(f"{path}: monitor.{key}: {reason}".rstrip(".")) from None


def replay(
    positions: Annotated[Path, typer.Argument(help="Positions CSV: device_id,time,lat,lon,…")],
    devices: Annotated[
        Path | None, typer.Option("--devices", help="Devices CSV: device_id,vehicle_id,kind,…")
    ] = None,
    zones: Annotated[
        Path | None, typer.Option("--zones", help="Risk zones GeoJSON with a category each.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML file with a [monitor] section.")
    ] = None,
) -> None:
    """Run the collateral monitor over a positions file; print one JSON object per alert."""
    provinces = ProvinceIndex(china_provinces())
    device_specs, vehicle_specs = read_devices(devices, provinces) if devices else ([], [])
    result = run_monitor(
        read_positions(positions),
        device_specs,
        vehicle_specs,
        provinces=provinces,
        zones=read_zones(zones) if zones else None,
        settings=read_monitor_config(config) if config else None,
    )
    for alert in result.alerts:
        typer.echo(json.dumps(alert.as_json(), ensure_ascii=False))
    typer.echo(json.dumps({"summary": result.counts}), err=True)


def register(app: typer.Typer) -> None:
    """Add the ``replay`` command to the root ``lienwatch`` app."""
    app.command("replay")(replay)
