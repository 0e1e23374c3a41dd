"""The bodies the API answers with (its OpenAPI schema). Money is integer fen (``*_fen``);
times are ISO 8601 with an offset; dates ``YYYY-MM-DD``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel


class Figures(BaseModel):
    """A loan's latest nightly figures (all None before its first run)."""

    as_of: date | None
    dpd: int | None
    bucket: str | None
    overdue_fen: int | None
    unsecured_fen: int | None
    outstanding_principal_fen: int | None


class QueueRow(Figures):
    task: int
    case: int
    loan: str
    channel: str
    step: int
    team: str | None
    assignee: str | None
    due_at: datetime
    deadline_at: datetime
    priority: int
    open_alerts: int


class QueuePage(BaseModel):
    items: list[QueueRow]
    next_cursor: str | None


class CaseLoan(BaseModel):
    ref: str
    product: str
    principal_fen: int
    term_months: int
    status: str
    disbursed_on: date
    time_zone: str


class BorrowerOut(BaseModel):
    ref: str
    kind: str
    name: str
    phone: str
    id_number: str
    city: str
    province_code: str
    time_zone: str
    masked: bool


class CaseVehicle(BaseModel):
    vin: str
    plate: str
    make: str
    model: str


class CaseFigures(Figures):
    open_alerts: int


class CaseTask(BaseModel):
    task: int
    channel: str
    step: int
    due_at: datetime
    deadline_at: datetime
    assignee: str | None


class CaseDetail(BaseModel):
    case: int
    status: str
    hold: str | None
    priority: int
    opened_at: datetime
    closed_at: datetime | None
    close_reason: str | None
    strategy: str | None
    assignee: str | None
    loan: CaseLoan
    borrower: BorrowerOut
    vehicle: CaseVehicle
    figures: CaseFigures
    tasks: list[CaseTask]


class TimelineItem(BaseModel):
    id: str  # kind:row, the item's key in its case's timeline
    at: datetime
    kind: str
    summary: str
    details: dict[str, Any]


class Timeline(BaseModel):
    case: int
    items: list[TimelineItem]
    next_cursor: str | None


class OutcomeDone(BaseModel):
    task: int
    case: int
    action: int
    kind: str
    outcome: str | None


class LoanRow(CaseLoan, Figures):
    borrower: str


class LoanPage(BaseModel):
    items: list[LoanRow]
    next_cursor: str | None


class LoanTermsOut(CaseLoan):
    borrower: str
    vin: str
    annual_rate: str
    method: str
    day_count: str
    upfront_fee_fen: int
    fee_financed: bool
    maturity_on: date
    booked_province: str


class InstallmentOut(BaseModel):
    n: int
    due_date: date
    principal_fen: int
    interest_fen: int
    fee_fen: int


class ScheduleOut(BaseModel):
    loan: str
    installments: list[InstallmentOut]


class LoanStateOut(BaseModel):
    loan: str
    as_of: date
    dpd: int
    bucket: str
    status: str
    outstanding_principal_fen: int
    overdue_principal_fen: int
    overdue_interest_fen: int
    penalty_accrued_fen: int
    fees_due_fen: int
    next_due_date: date | None
    payoff_fen: int
    credit_fen: int


class PaymentOut(BaseModel):
    external_id: str
    paid_on: date
    amount_fen: int
    channel: str
    payer_account: str | None
    payer_name: str | None
    received_at: datetime
    reversed_at: datetime | None
    reversal_reason: str | None


class PaymentList(BaseModel):
    loan: str
    items: list[PaymentOut]
    next_cursor: str | None


class PaymentPosted(PaymentOut):
    new: bool


class PaymentReversed(PaymentOut):
    loan: str
    reversed_now: bool


class LoanHit(BaseModel):
    loan: str
    borrower: str
    phone: str
    plate: str
    vin: str
    status: str
    case_id: int | None


class LoanHits(BaseModel):
    items: list[LoanHit]


class VehicleOut(Figures):
    vin: str
    plate: str
    make: str
    model: str
    energy: str
    condition: str
    purchase_price_fen: int
    purchase_date: date
    loan: str


class Fix(BaseModel):
    time: datetime
    lat: float
    lon: float
    speed_kmh: float
    course: int
    valid: bool
    alarms: list[str]


class TrackFix(Fix):
    device: str


class Track(BaseModel):
    vin: str
    items: list[TrackFix]


class DeviceOut(BaseModel):
    ident: str
    id: int
    protocol: str
    kind: str
    model: str
    vin: str | None
    status: str
    last_fix_at: datetime | None
    quarantined: bool
    last_position: Fix | None


class DevicePage(BaseModel):
    items: list[DeviceOut]
    next_cursor: str | None


class AlertOut(BaseModel):
    id: int
    type: str
    severity: str
    status: str
    loan: str | None
    vin: str
    started_at: datetime
    ended_at: datetime | None
    lat: float | None
    lon: float | None
    province_code: str | None
    exposure_fen: int
    evidence: dict[str, Any]
    decided_by: str | None
    decided_at: datetime | None


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


class TrackerCommandSent(BaseModel):
    loan: str
    command: str
    case: int
    action: int
    outcome: str | None


class TrackerRequestOut(BaseModel):
    request: int
    case: int
    loan: str
    command: str
    requested_at: datetime
    requested_by: str | None
    why: str | None = None


class TrackerRequestList(BaseModel):
    items: list[TrackerRequestOut]
    next_cursor: str | None


class CaseMoved(BaseModel):
    case: int
    status: str
    assignee: str | None


class RepossessionOut(BaseModel):
    id: int
    case: int
    loan: str
    status: str
    jurisdiction: str
    route: str
    legal_ref: str
    dpd_at_order: int
    ordered_by: str
    ordered_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    assignee: str | None


class RepossessionList(BaseModel):
    items: list[RepossessionOut]
    next_cursor: str | None


class RepossessionStep(BaseModel):
    at: datetime
    step: str
    by: str | None
    note: str | None
    details: dict[str, Any]


class OpenStep(BaseModel):
    step: str
    due_by: datetime
    assignee: str | None


class RepossessionSteps(BaseModel):
    repossession: int
    items: list[RepossessionStep]
    waiting_for: OpenStep | None


class AlertRuleChange(BaseModel):
    key: str  # the rule-set file's dotted key: thresholds.long_stay_h
    before: Any
    after: Any


class AlertRuleVersionOut(BaseModel):
    """A published alert-rule version: who and when, the document as published, every value
    it set (the built-in default for a key it left out) and what it changed."""

    version: int
    published_by: str
    published_at: datetime
    document: dict[str, Any]
    values: dict[str, Any]
    changes: list[AlertRuleChange]


class AlertRulesOut(BaseModel):
    """The alert rules: the version in force (None: the ``[monitor]`` configuration's), the
    configuration's values, and every version published, newest first."""

    in_force: int | None
    configured: dict[str, Any]
    versions: list[AlertRuleVersionOut]


class StrategyOut(BaseModel):
    name: str
    version: int
    label: str
    profile: str
    ladders: list[dict[str, Any]]
    challenger: dict[str, Any] | None
