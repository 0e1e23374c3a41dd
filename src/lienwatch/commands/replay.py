"""``lienwatch replay``: run the collateral monitor over a positions file, print alerts as JSON."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from pydantic import ValidationError

from lienwatch.adapters.references import read_regions, read_zones
from lienwatch.config import MonitorSettings
from lienwatch.data import province_index
from lienwatch.domain.positions import PositionColumns
from lienwatch.domain.provinces import ProvinceIndex
from lienwatch.monitor import (
    DeviceSpec,
    MonitorInputError,
    RegionLibrary,
    VehicleSpec,
)
from lienwatch.monitor.batch import run_monitor
from lienwatch.monitor.detectors.base import evidence_text
from lienwatch.tabular import InputFileError, csv_rows, is_parquet, parquet_frame, require_file
from lienwatch.telematics.protocols import CANONICAL_ALARMS

_POSITION_COLUMNS = ("device_id", "time", "lat", "lon")
_TRUE, _FALSE = {"true", "1", "yes", ""}, {"false", "0", "no"}


def _bounded(where: str, column: str, value: object, low: float, high: float) -> float:
    try:
        number = float(value if isinstance(value, int | float) else str(value or ""))
    except ValueError:
        raise InputFileError(f"{where}, column {column}: not a number {value!r}") from None
    if not low <= number <= high:
        raise InputFileError(f"{where}, column {column}: {number} outside {low}..{high}")
    return number


def _epoch(where: str, value: object) -> int:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise InputFileError(f"{where}, column time: bad time {value!r}") from None
    if moment.tzinfo is None:
        raise InputFileError(f"{where}, column time: {str(value)!r} has no UTC offset")
    return int(moment.timestamp())


def _position(where: str, row: dict[str, Any]) -> tuple[str, int, float, float, bool, str]:
    """One validated position row (CSV strings or typed Parquet values) as
    (device_id, epoch seconds, lat, lon, valid, alarms)."""
    device = str(row["device_id"] or "")
    if not device:
        raise InputFileError(f"{where}, column device_id: empty")
    valid = row.get("valid")
    if not isinstance(valid, bool):
        text = str(valid or "").strip().lower()
        if text not in _TRUE | _FALSE:
            raise InputFileError(f"{where}, column valid: not true/false {text!r}")
        valid = text in _TRUE
    names = [n for n in str(row.get("alarms") or "").split(";") if n]
    unknown = [n for n in names if n not in CANONICAL_ALARMS]
    if unknown:
        raise InputFileError(f"{where}, column alarms: unknown alarm {unknown[0]!r}")
    return (
        device,
        _epoch(where, row["time"]),
        _bounded(where, "lat", row["lat"], -90, 90),
        _bounded(where, "lon", row["lon"], -180, 180),
        valid,
        ";".join(names),
    )


def _parquet_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    frame = parquet_frame(path)
    missing = [c for c in _POSITION_COLUMNS if c not in frame.columns]
    if missing:
        raise InputFileError(f"{path}: missing column {missing[0]!r}")
    for row, values in enumerate(frame.iter_rows(named=True), start=1):
        yield f"{path} row {row}", values


def read_positions(path: Path) -> PositionColumns:
    """A positions file: CSV, or Parquet (``.parquet``/``.pq``), with ``device_id,time,lat,
    lon`` and optional ``alarms``, ``valid``. Errors name the CSV line or the Parquet row."""
    if is_parquet(path):
        rows: Iterator[tuple[str, dict[str, Any]]] = _parquet_rows(path)
    else:
        _, lines = csv_rows(path, required=_POSITION_COLUMNS)
        rows = ((f"{path} line {line}", row) for line, row in lines)
    parsed = [_position(where, row) for where, row in rows]
    devices, times, lats, lons, valids, alarms = zip(*parsed, strict=True) if parsed else [()] * 6
    return PositionColumns.of(devices, times, lats, lons, valid=valids, alarms=alarms)


def read_devices(
    path: Path, provinces: ProvinceIndex, regions: RegionLibrary | None = None
) -> tuple[list[DeviceSpec], list[VehicleSpec]]:
    """A devices CSV: ``device_id,vehicle_id,kind`` (``vehicle_vin`` is accepted for
    ``vehicle_id``, as the simulator writes it) and optional ``loan_id,home_lat,home_lon,
    region,report_interval_s``. ``region`` names a lender-defined region of ``regions`` or,
    failing that, a province (zh or en name, or code)."""
    names = _province_codes(provinces)
    devices: list[DeviceSpec] = []
    vehicles: dict[str, VehicleSpec] = {}
    for line, row in csv_rows(path, required=("device_id", "kind"))[1]:
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
        area = region if regions is not None and region in regions else None
        if region and not area and region.lower() not in names and region not in names:
            raise InputFileError(f"{where}, column region: unknown province or region {region!r}")
        home = None
        if row.get("home_lat") or row.get("home_lon"):
            home = (
                _bounded(where, "home_lat", row.get("home_lat"), -90, 90),
                _bounded(where, "home_lon", row.get("home_lon"), -180, 180),
            )
        vehicles[vehicle] = VehicleSpec(
            vehicle,
            loan_id=row.get("loan_id") or None,
            region=names.get(region.lower(), names.get(region)) if region and not area else None,
            area=area,
            home=home,
        )
    return devices, list(vehicles.values())


def _province_codes(provinces: ProvinceIndex) -> dict[str, str]:
    """Province code by lower-case English name, Chinese name and code."""
    names = {p.name_en.lower(): p.code for p in provinces.provinces}
    names |= {p.name_zh: p.code for p in provinces.provinces}
    return names | {p.code: p.code for p in provinces.provinces}


def read_loans(path: Path, provinces: ProvinceIndex) -> dict[str, dict[str, Any]]:
    """A loans CSV as ``lienwatch import --loans`` takes it: ``vehicle_vin,borrower_ref`` and
    optional ``ref,product,booked_province,time_zone``; by vehicle, the :class:`VehicleSpec`
    fields it gives (the loan listed last for a vehicle applies)."""
    codes = _province_codes(provinces)
    loans: dict[str, dict[str, Any]] = {}
    for line, row in csv_rows(path, required=("vehicle_vin", "borrower_ref"))[1]:
        where = f"{path} line {line}"
        vehicle, borrower = row["vehicle_vin"].strip(), row["borrower_ref"].strip()
        for column, value in (("vehicle_vin", vehicle), ("borrower_ref", borrower)):
            if not value:
                raise InputFileError(f"{where}, column {column}: empty")
        fields: dict[str, Any] = {"borrower_id": borrower}
        for column, field in (("ref", "loan_id"), ("product", "product")):
            if (row.get(column) or "").strip():
                fields[field] = row[column].strip()
        province = (row.get("booked_province") or "").strip()
        if province:
            code = codes.get(province.lower(), codes.get(province))
            if code is None:
                raise InputFileError(f"{where}, column booked_province: unknown province "
                                     f"{province!r}")  # fmt: skip
            fields["region"] = code
        zone = (row.get("time_zone") or "").strip()
        if zone:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise InputFileError(f"{where}, column time_zone: unknown time zone "
                                     f"{zone!r}") from None  # fmt: skip
            fields["time_zone"] = zone
        loans[vehicle] = fields
    return loans


def with_loans(vehicles: list[VehicleSpec], loans: dict[str, dict[str, Any]]) -> list[VehicleSpec]:
    """The vehicles with their loan's borrower, product and time zone, and its loan id and
    booked province unless the devices file gave them (a lender region there wins)."""
    tied = []
    for vehicle in vehicles:
        fields = dict(loans.get(vehicle.vehicle_id, {}))
        if vehicle.loan_id:
            fields.pop("loan_id", None)
        if vehicle.region or vehicle.area:
            fields.pop("region", None)
        tied.append(dataclasses.replace(vehicle, **fields))
    return tied


def read_monitor_config(path: Path) -> MonitorSettings:
    """The ``[monitor]`` section of a TOML file; a relative ``regions_file`` is taken from the
    TOML file's folder."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
        settings = MonitorSettings.model_validate(document.get("monitor", {}))
        if settings.regions_file is not None:
            regions_file = path.parent / settings.regions_file
            settings = settings.model_copy(update={"regions_file": regions_file})
        return settings
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
    loans: Annotated[
        Path | None,
        typer.Option(
            "--loans",
            help="Loans CSV (lienwatch import's: vehicle_vin,borrower_ref,…): each vehicle's "
            "borrower (cluster compares borrowers), loan, product, province and time zone.",
        ),
    ] = None,
    zones: Annotated[
        Path | None, typer.Option("--zones", help="Risk zones GeoJSON with a category each.")
    ] = None,
    regions: Annotated[
        Path | None,
        typer.Option(
            "--regions",
            help="Permitted regions GeoJSON (named polygons, points with radius_m) that the "
            "devices file's region column may name; default: [monitor] regions_file.",
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML file with a [monitor] section.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per alert (JSON lines).")
    ] = False,
) -> None:
    """Run the collateral monitor over a positions file (CSV or Parquet); print one line per
    alert (one JSON object with --json) and the counts on stderr."""
    for path, option in ((positions, "POSITIONS"), (devices, "--devices"), (loans, "--loans"),
                         (zones, "--zones"), (regions, "--regions"),
                         (config, "--config")):  # fmt: skip
        if path is not None:
            require_file(path, option)
    provinces = province_index()
    settings = read_monitor_config(config) if config else MonitorSettings()
    regions_path = regions or settings.regions_file
    permitted = read_regions(regions_path) if regions_path else None
    device_specs, vehicle_specs = (
        read_devices(devices, provinces, permitted) if devices else ([], [])
    )
    if loans is not None:
        if devices is None:
            raise InputFileError("--loans: give --devices too (the loans' vehicles' trackers)")
        vehicle_specs = with_loans(vehicle_specs, read_loans(loans, provinces))
    result = run_monitor(
        read_positions(positions),
        device_specs,
        vehicle_specs,
        provinces=provinces,
        zones=read_zones(zones) if zones else None,
        regions=permitted,
        settings=settings,
    )
    for alert in result.alerts:
        typer.echo(json.dumps(alert.as_json(), ensure_ascii=False) if as_json
                   else _alert_line(alert.as_json()))  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"summary": result.counts}), err=True)
    else:
        counts = ", ".join(f"{key} {value}" for key, value in result.counts.items())
        typer.echo(f"summary: {counts}", err=True)


def _alert_line(alert: dict[str, Any]) -> str:
    """``2026-03-01T02:13:00Z power_cut critical vehicle V1 device D1 at 31.2,121.4 (Shanghai)``."""
    where = "" if alert["lat"] is None else f" at {alert['lat']},{alert['lon']}"
    if alert["province"]:
        where += f" ({alert['province']['en']})"
    return (f"{alert['start']} {alert['type']} {alert['severity']} vehicle {alert['vehicle_id']} "
            f"device {alert['device_id']}{where} [{alert['status']}]"
            f"{_because(alert['evidence'])}")  # fmt: skip


def _because(evidence: dict[str, Any]) -> str:
    text = evidence_text(evidence)
    return f" because {text}" if text else ""


def register(app: typer.Typer) -> None:
    """Add the ``replay`` command to the root ``lienwatch`` app."""
    app.command("replay")(replay)
