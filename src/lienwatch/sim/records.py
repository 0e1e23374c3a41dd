"""The records the simulator produces: the contract between `lienwatch.sim` and its users.

Everything here is plain data. Money is integer fen, times are timezone-aware UTC datetimes
(or int epoch seconds in the columnar position arrays), due dates are local calendar dates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from lienwatch.domain.positions import PositionColumns


class Profile(StrEnum):
    """The behaviour a simulated loan was given: the label detectors are scored against."""

    ON_TIME = "on_time"
    LATE_THEN_CURES = "late_then_cures"
    SLIDES_INTO_DEFAULT = "slides_into_default"
    SECONDARY_PLEDGE = "secondary_pledge"
    TRACKER_REMOVED = "tracker_removed"
    MOVES_PROVINCE = "moves_province"
    FRAUD_RING = "fraud_ring"


@dataclass(frozen=True, slots=True)
class SimBorrower:
    ref: str
    kind: str  # "person" | "company"
    name: str
    id_number: str  # resident id (person) or unified social credit code (company)
    phone: str
    address: str
    city: str  # English name as in china_cities.csv
    province_code: str  # GB/T 2260 two-digit province code
    home_lat: float
    home_lon: float
    work_lat: float
    work_lon: float
    time_zone: str = "Asia/Shanghai"


@dataclass(frozen=True, slots=True)
class SimVehicle:
    vin: str
    plate: str
    make: str
    model: str
    energy: str  # "ice" | "nev"
    condition: str  # "new" | "used"
    purchase_price: int  # fen
    purchase_date: date
    borrower_ref: str


@dataclass(frozen=True, slots=True)
class SimDevice:
    device_id: str  # JT/T 808 terminal phone (12 digits) or GT06 IMEI (15 digits)
    protocol: str  # "jt808" | "gt06"
    kind: str  # "wired" | "wireless"
    model: str
    vehicle_vin: str
    report_interval_s: int  # nominal interval while parked
    fitted_on: date | None = None  # fixes dated before it are refused by the gateway


@dataclass(frozen=True, slots=True)
class SimLoan:
    ref: str
    borrower_ref: str
    vehicle_vin: str
    product: str
    principal: int  # fen
    annual_rate: Decimal
    term: int  # months
    method: str  # lienwatch.domain.schedule.Method value
    disbursed_on: date
    booked_province: str  # GB/T 2260 code
    upfront_fee: int = 0  # fen
    time_zone: str = "Asia/Shanghai"
    # the vehicle's mortgage registration (抵押登记) for the loan, released once it is paid
    registration_certificate: str = ""
    registration_authority: str = ""
    registered_on: date | None = None
    registration_released_on: date | None = None


@dataclass(frozen=True, slots=True)
class SimPayment:
    external_id: str  # idempotency key, unique
    loan_ref: str
    paid_on: date  # local calendar date of value
    amount: int  # fen
    channel: str  # "bank_debit" | "transfer" | "cash" ...
    payer_account: str = ""  # the paying bank account ("" when not reported)
    payer_name: str = ""  # the account holder's name


@dataclass(frozen=True, slots=True)
class TruthEvent:
    """A labelled happening a detector should find (or a payment behaviour to be scored)."""

    label: str  # e.g. "secondary_pledge", "device_removed", "moved_province", "default"
    loan_ref: str
    vehicle_vin: str
    start: datetime  # UTC
    end: datetime | None = None
    device_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GroundTruth:
    profiles: dict[str, Profile]  # loan ref -> profile
    events: list[TruthEvent]
    rings: dict[str, list[str]]  # ring id -> borrower refs
    risk_zones: dict[str, Any]  # GeoJSON FeatureCollection with a "category" property


@dataclass(frozen=True, slots=True)
class Portfolio:
    start: date  # first simulated day of telemetry (local)
    as_of: date  # the day after the last simulated day: the business date of the book
    borrowers: list[SimBorrower]
    vehicles: list[SimVehicle]
    devices: list[SimDevice]
    loans: list[SimLoan]
    payments: list[SimPayment]
    positions: PositionColumns  # sorted by (device ident, time)
    truth: GroundTruth
