"""Validation of a lender's book arriving as tables: borrowers, vehicles, devices, loans and
payments (pure: rows in, typed records and row errors out).

Every row is checked on its own (types, ranges, allowed values) and against the rest of the
book (a loan's borrower and vehicle, a payment's loan and disbursement date). A row that fails
is reported with its file, line, column and reason; rows that depend on a rejected row are
rejected too, naming it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lienwatch.domain.money import CURRENCY, MoneyError, parse_yuan
from lienwatch.domain.schedule import DayCount, Method

KINDS = ("borrowers", "vehicles", "devices", "loans", "payments")  # dependency order
# GB/T 2260 province-level codes (31 mainland, Taiwan 71, Hong Kong 81, Macau 82)
PROVINCE_CODES = frozenset(str(code) for code in (
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51,
    52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
))  # fmt: skip
_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")


class CellError(ValueError):
    """One cell's value is unacceptable; the message is the reason."""


@dataclass(frozen=True, slots=True)
class RowError:
    file: str
    line: int  # 1-based line in the file (the header is line 1 of a CSV)
    column: str
    reason: str
    row: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: column {self.column}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Row:
    """A validated row: typed values keyed by column, and where it came from."""

    kind: str
    key: str  # the business key: borrower ref, VIN, device id, loan ref, payment id
    values: dict[str, Any]
    file: str
    line: int
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)  # the cells as read


# ---------------------------------------------------------------------------- cell parsers


def _text(max_length: int) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if not value:
            raise CellError("must not be empty")
        if len(value) > max_length:
            raise CellError(f"longer than {max_length} characters")
        return value

    return parse


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in allowed:
            raise CellError(f"must be one of {', '.join(allowed)}, got {value!r}")
        return value

    return parse


def _positive_yuan(value: str) -> int:
    fen = _fen(value)
    if fen <= 0:
        raise CellError(f"must be positive, got {value}")
    return fen


def _yuan(value: str) -> int:
    fen = _fen(value)
    if fen < 0:
        raise CellError(f"must not be negative, got {value}")
    return fen


def _fen(value: str) -> int:
    try:
        return parse_yuan(value, field="amount")
    except MoneyError as exc:
        raise CellError(str(exc).removeprefix("amount: ")) from None


def _rate(value: str) -> Decimal:
    try:
        rate = Decimal(value)
    except InvalidOperation:
        raise CellError(f"{value!r} is not a number") from None
    if not (rate.is_finite() and 0 <= rate < 1):
        raise CellError(f"must be a decimal rate within 0–100 % (e.g. 0.0899), got {value}")
    return rate


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise CellError(f"{value!r} is not an integer") from None
        if not low <= number <= high:
            raise CellError(f"must be within {low}–{high}, got {number}")
        return number

    return parse


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CellError(f"{value!r} is not a date YYYY-MM-DD") from None


def _moment(value: str) -> datetime:
    """An ISO 8601 time with its UTC offset, as UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CellError(f"{value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise CellError(f"{value!r} has no UTC offset (e.g. 2026-03-01T14:05:00+08:00)")
    return moment.astimezone(UTC)


def _coordinate(low: float, high: float) -> Callable[[str], float]:
    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise CellError(f"{value!r} is not a number") from None
        if not low <= number <= high:
            raise CellError(f"must be within {low}–{high}, got {value}")
        return number

    return parse


def _province(value: str) -> str:
    if value not in PROVINCE_CODES:
        raise CellError(f"{value!r} is not a GB/T 2260 province code (e.g. 11, 44)")
    return value


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise CellError(f"unknown IANA time zone {value!r}") from None
    return value


def _currency(value: str) -> str:
    if value != CURRENCY:
        raise CellError(f"only {CURRENCY} books are supported, got {value!r}")
    return value


def _vin(value: str) -> str:
    if not _VIN.match(value):
        raise CellError("must be 17 characters of A–Z (no I, O, Q) and 0–9")
    return value


def _boolean(value: str) -> bool:
    lowered = value.lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no"}:
        return False
    raise CellError(f"must be true or false, got {value!r}")


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    parse: Callable[[str], Any]
    default: str | None = None  # None: required

    @property
    def required(self) -> bool:
        return self.default is None


SPECS: dict[str, tuple[Column, ...]] = {
    "borrowers": (
        Column("ref", _text(40)),
        Column("kind", _choice("person", "company")),
        Column("name", _text(200)),
        Column("id_number", _text(40)),
        Column("phone", _text(32)),
        Column("address", _text(400)),
        Column("city", _text(80)),
        Column("province_code", _province),
        Column("home_lat", _coordinate(-90, 90), ""),
        Column("home_lon", _coordinate(-180, 180), ""),
        Column("time_zone", _zone, "Asia/Shanghai"),
    ),
    "vehicles": (
        Column("vin", _vin),
        Column("plate", _text(16)),
        Column("make", _text(60)),
        Column("model", _text(60)),
        Column("energy", _choice("ice", "nev"), "ice"),
        Column("condition", _choice("new", "used"), "new"),
        Column("purchase_price", _positive_yuan),
        Column("purchase_date", _date),
        Column("borrower_ref", _text(40)),
        # a region of [monitor] regions_file the vehicle must stay in (empty: its province)
        Column("permitted_area", _text(80), ""),
    ),
    "devices": (
        Column("device_id", _text(20)),
        Column("protocol", _choice("jt808", "gt06", "osmand")),
        Column("kind", _choice("wired", "wireless")),
        Column("model", lambda v: v[:60], ""),
        Column("vehicle_vin", _vin, ""),
        Column("report_interval_s", _integer(1, 86_400 * 7), "3600"),
        Column("fitted_on", _date, ""),
    ),
    "loans": (
        Column("ref", _text(40)),
        Column("borrower_ref", _text(40)),
        Column("vehicle_vin", _vin),
        Column("product", _text(40)),
        Column("principal", _positive_yuan),
        Column("annual_rate", _rate),
        Column("term", _integer(1, 120)),
        Column("method", _choice(*(m.value for m in Method))),
        Column("disbursed_on", _date),
        Column("booked_province", _province),
        Column("upfront_fee", _yuan, "0"),
        Column("fee_financed", _boolean, "false"),
        Column("day_count", _choice(*(d.value for d in DayCount)), DayCount.THIRTY_360.value),
        Column("currency", _currency, CURRENCY),
        Column("time_zone", _zone, "Asia/Shanghai"),
        # the vehicle's mortgage registration (抵押登记) for the loan, when it has one
        Column("registration_certificate", _text(60), ""),
        Column("registration_authority", _text(120), ""),
        Column("registered_on", _date, ""),
        Column("registration_released_on", _date, ""),
    ),
    "payments": (
        Column("id", _text(80)),
        Column("loan_ref", _text(40)),
        Column("date", _date),
        Column("amount", _positive_yuan),
        Column("channel", _text(20), "bank_debit"),
        Column("currency", _currency, CURRENCY),
        # who paid, as the bank reports it (empty: not reported, read as the borrower)
        Column("payer_account", _text(64), ""),
        Column("payer_name", _text(200), ""),
        # when it was paid, as the bank reports it (empty: only the value date is known, and
        # the payment has no hour for the abnormal-payment rules to judge or learn from)
        Column("paid_at", _moment, ""),
    ),
}
REGISTRATION_COLUMNS = ("registration_certificate", "registration_authority", "registered_on",
                        "registration_released_on")
KEY_COLUMN = {
    "borrowers": "ref",
    "vehicles": "vin",
    "devices": "device_id",
    "loans": "ref",
    "payments": "id",
}


def check_header(kind: str, file: str, header: Iterable[str]) -> tuple[list[RowError], list[str]]:
    """Missing required columns (errors on line 1) and unknown columns (ignored, returned)."""
    present = set(header)
    spec = SPECS[kind]
    errors = [
        RowError(file, 1, column.name, "required column is missing")
        for column in spec
        if column.required and column.name not in present
    ]
    unknown = sorted(present - {column.name for column in spec})
    return errors, unknown


def parse_row(kind: str, file: str, line: int, raw: Mapping[str, Any]) -> Row | RowError:
    """Type-check one row; the first bad cell is the error."""
    values: dict[str, Any] = {}
    for column in SPECS[kind]:
        text = raw.get(column.name)
        text = "" if text is None else str(text).strip()
        if not text and column.default is not None:
            values[column.name] = column.parse(column.default) if column.default else None
            continue
        try:
            values[column.name] = column.parse(text)
        except CellError as exc:
            return RowError(file, line, column.name, str(exc), raw)
    problem = _registration_problem(values) if kind == "loans" else None
    if problem is not None:
        return RowError(file, line, problem[0], problem[1], raw)
    return Row(kind, str(values[KEY_COLUMN[kind]]), values, file, line, raw)


def _registration_problem(values: Mapping[str, Any]) -> tuple[str, str] | None:
    """(column, reason) when a loan's registration columns do not make one registration."""
    given = [name for name in REGISTRATION_COLUMNS if values[name] is not None]
    if not given:
        return None
    for name in REGISTRATION_COLUMNS[:3]:
        if values[name] is None:
            return name, f"required with {given[0]} (a registration needs its certificate, " \
                          "authority and date)"
    released = values["registration_released_on"]
    if released is not None and released < values["registered_on"]:
        return "registration_released_on", (f"{released} is before the registration on "
                                            f"{values['registered_on']}")
    return None


@dataclass(slots=True)
class Known:
    """What already exists (in the store) that rows may refer to."""

    borrowers: set[str] = field(default_factory=set)
    vehicles: set[str] = field(default_factory=set)
    loans: dict[str, date] = field(default_factory=dict)  # ref -> disbursed on
    #: (vehicle VIN, device kind) -> the device bound there: a vehicle carries at most one
    #: wired and one wireless tracker.
    trackers: dict[tuple[str, str], str] = field(default_factory=dict)


def check_references(
    rows: Mapping[str, list[Row]], known: Known
) -> tuple[dict[str, list[Row]], list[RowError]]:
    """Keep rows whose references resolve (to the store or to an accepted row of the import).

    Files are taken in dependency order, so a loan whose borrower row was rejected is rejected
    in its turn, and so are its payments. Duplicate keys within a file are errors.
    """
    borrowers = set(known.borrowers)
    vehicles = set(known.vehicles)
    loans = dict(known.loans)
    trackers = dict(known.trackers)
    accepted: dict[str, list[Row]] = {kind: [] for kind in KINDS}
    errors: list[RowError] = []

    def refers(row: Row, column: str, pool: Iterable[str] | Mapping[str, Any], what: str) -> bool:
        value = row.values[column]
        if value is None or value in pool:
            return True
        return reject(row, column, f"unknown {what} {value!r}")

    def reject(row: Row, column: str, reason: str) -> bool:
        errors.append(RowError(row.file, row.line, column, reason, row.raw))
        return False

    for kind in KINDS:
        seen: dict[str, int] = {}
        for row in rows.get(kind, []):
            if row.key in seen:
                reject(row, KEY_COLUMN[kind], f"duplicate {row.key!r} (first on line "
                       f"{seen[row.key]})")  # fmt: skip
                continue
            seen[row.key] = row.line
            if kind == "vehicles" and not refers(row, "borrower_ref", borrowers, "borrower"):
                continue
            if kind == "devices":
                if not refers(row, "vehicle_vin", vehicles, "vehicle"):
                    continue
                slot = (row.values["vehicle_vin"], row.values["kind"])
                holder = trackers.get(slot) if slot[0] is not None else None
                if holder is not None and holder != row.key:
                    reject(row, "vehicle_vin", f"vehicle {slot[0]!r} already has a {slot[1]} "
                           f"tracker ({holder!r}); a vehicle carries one of each kind")  # fmt: skip
                    continue
                if slot[0] is not None:
                    trackers[slot] = row.key
            if kind == "loans" and not (
                refers(row, "borrower_ref", borrowers, "borrower")
                and refers(row, "vehicle_vin", vehicles, "vehicle")
            ):
                continue
            if kind == "payments":
                if not refers(row, "loan_ref", loans, "loan"):
                    continue
                disbursed = loans[row.values["loan_ref"]]
                if row.values["date"] < disbursed:
                    reject(row, "date", f"{row.values['date']} is before the loan's "
                           f"disbursement on {disbursed}")  # fmt: skip
                    continue
            accepted[kind].append(row)
            if kind == "borrowers":
                borrowers.add(row.key)
            elif kind == "vehicles":
                vehicles.add(row.key)
            elif kind == "loans":
                loans[row.key] = row.values["disbursed_on"]
    return accepted, errors
