"""Configuration: one TOML file plus ``LIENWATCH_*`` environment overrides, validated by pydantic.

The file is ``lienwatch.toml`` in the working folder, or the path in ``LIENWATCH_CONFIG``.
Environment variables win over the file; nested keys use a double underscore
(``LIENWATCH_DEMO__LOANS=500`` overrides ``[demo] loans``). Any invalid value becomes a
:class:`ConfigError` whose one-line message names the key and where it came from.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import tomllib
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from lienwatch.errors import LienwatchError

log = logging.getLogger(__name__)

CONFIG_ENV = "LIENWATCH_CONFIG"
DEFAULT_CONFIG_FILE = "lienwatch.toml"
DEFAULT_DATABASE_URL = "sqlite:///lienwatch.sqlite3"


class ConfigError(LienwatchError):
    """The configuration file or an environment override is invalid."""


class DemoSettings(BaseModel):
    """Defaults of ``lienwatch demo``; the command's options override them."""

    model_config = ConfigDict(extra="forbid")

    loans: int = Field(2000, ge=1, le=1_000_000)
    days: int = Field(120, ge=14, le=3650)  # the simulator needs two weeks of history
    seed: int = 7
    dir: Path = Path("lienwatch-demo")


Severity = Literal["info", "warning", "critical"]

DEFAULT_SEVERITIES: dict[str, Severity] = {
    "power_cut": "critical",
    "device_removed": "critical",
    "gnss_antenna_cut": "warning",
    "device_offline": "warning",
    "long_stay": "warning",
    "risk_zone_visit": "critical",
    "left_region": "warning",
    "night_relocation": "warning",
    "address_mismatch": "info",
    "unusual_area": "info",
    "position_jump": "warning",
    "tracker_mismatch": "critical",
    "cluster": "critical",
    "ltv_breach": "warning",
}


class MonitorThresholds(BaseModel):
    """The collateral monitor's thresholds (issue 5's defaults, tuned for precision in issue
    18); see docs/monitor.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offline_wired_h: float = Field(24.0, gt=0)
    offline_wireless_h: float = Field(72.0, gt=0)
    offline_min_intervals: float = Field(3.0, ge=1)  # never fewer report intervals than this
    removal_silence_intervals: float = Field(2.0, gt=0)  # wired silence after a power cut
    removal_silence_min_h: float = Field(1.0, gt=0)
    stay_radius_m: float = Field(200.0, gt=0)
    long_stay_h: float = Field(72.0, gt=0)
    place_visit_h: float = Field(4.0, gt=0)  # a stay this long is a visit to its place
    place_known_visits: int = Field(3, ge=1)  # visits that make a place home or work
    risk_zone_dwell_min: float = Field(30.0, ge=0)
    left_region_h: float = Field(2.0, ge=0)
    night_end_h: float = Field(5.0, gt=0, le=12)  # the night window is 00:00 to this hour
    night_move_km: float = Field(5.0, gt=0)
    night_move_nights: int = Field(3, ge=1)  # a weekend away is two nights, not a move
    address_mismatch_km: float = Field(10.0, gt=0)
    unusual_distance_km: float = Field(50.0, gt=0)
    unusual_h: float = Field(6.0, ge=0)
    unusual_nights: int = Field(1, ge=0)  # night ends (night_end_h) spent outside; 0: any time
    activity_days: int = Field(30, ge=1)
    activity_share: float = Field(0.95, gt=0, le=1)
    activity_min_days: int = Field(7, ge=1)
    jump_kmh: float = Field(250.0, gt=0)
    jump_min_km: float = Field(1.0, ge=0)
    mismatch_m: float = Field(1000.0, gt=0)
    mismatch_min: float = Field(30.0, ge=0)
    pair_window_s: int = Field(300, ge=0)  # fixes of two trackers this close count as a pair
    cluster_radius_m: float = Field(300.0, gt=0)
    cluster_h: float = Field(24.0, gt=0)
    cluster_vehicles: int = Field(3, ge=2)
    ltv_cap: float = Field(0.8, gt=0)
    severities: dict[str, Severity] = Field(default_factory=lambda: dict(DEFAULT_SEVERITIES))
    #: Alert types raised (every one unless set false): a detector switched off still runs
    #: (it keeps its state), but raises nothing of its type.
    enabled: dict[str, bool] = Field(default_factory=lambda: dict.fromkeys(DEFAULT_SEVERITIES,
                                                                         True))  # fmt: skip

    @field_validator("severities")
    @classmethod
    def _known_severities(cls, value: dict[str, Severity]) -> dict[str, Severity]:
        return {**DEFAULT_SEVERITIES, **_alert_types(value)}

    @field_validator("enabled")
    @classmethod
    def _known_enabled(cls, value: dict[str, bool]) -> dict[str, bool]:
        return {**dict.fromkeys(DEFAULT_SEVERITIES, True), **_alert_types(value)}


def _alert_types(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` if every key of it is an alert type, else ValueError naming the first."""
    unknown = sorted(set(value) - set(DEFAULT_SEVERITIES))
    if unknown:
        raise ValueError(f"unknown alert type {unknown[0]!r}")
    return value


class MonitorSettings(BaseModel):
    """``[monitor]``: thresholds, with overrides per loan product (``[monitor.products.X]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reorder_window_s: int = Field(600, ge=0)  # out-of-order fixes this late are reordered
    workers: int = Field(2, ge=1, le=64)  # processes of a batch run (vehicles partitioned)
    # The live monitor (lienwatch serve): its clock raises silences and saves alerts every
    # advance_s, reloads the fleet and exposures every fleet_refresh_s, and on start replays
    # warmup_h hours of stored positions (see "Live monitoring" in docs/monitor.md).
    advance_s: float = Field(30.0, gt=0, le=3_600)
    fleet_refresh_s: float = Field(300.0, gt=0, le=86_400)
    warmup_h: float = Field(96.0, ge=0, le=24 * 31)
    regions_file: Path | None = None  # lender-defined permitted regions (GeoJSON)
    # Risk zones (GeoJSON with a category each) for the live monitors of serve and the
    # workers; both files are read again when they change (docs/monitor.md).
    zones_file: Path | None = None
    # A running monitor's cluster pass keeps the long stays still going or ended within
    # cluster_lookback_days of its clock and forgets older ones (scaled-out workers share
    # the same with each other), so its cost and state stay bounded: a vehicle's stay that
    # reaches the monitor later than this after another's ended is not grouped with it.
    cluster_lookback_days: float = Field(2.0, gt=0, le=366)
    thresholds: MonitorThresholds = MonitorThresholds()
    products: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: The published alert-rule version the thresholds and products come from (see
    #: lienwatch.services.alert_rules); None: this file's. Set by lienwatch, never in a file.
    rule_set: int | None = None

    @field_validator("rule_set")
    @classmethod
    def _not_in_a_file(cls, value: int | None) -> None:
        if value is not None:
            raise ValueError("set by lienwatch from the published alert rules "
                             "(lienwatch alert rules-publish), not in a file")  # fmt: skip
        return None

    @model_validator(mode="after")
    def _valid_overrides(self) -> MonitorSettings:
        for product in self.products:
            self.for_product(product)
        return self

    def for_product(self, product: str | None) -> MonitorThresholds:
        """The thresholds of ``product``: the base ones with its overrides applied."""
        override = self.products.get(product or "")
        if not override:
            return self.thresholds
        try:
            return MonitorThresholds.model_validate({**self.thresholds.model_dump(), **override})
        except ValidationError as exc:
            error = exc.errors()[0]
            key = ".".join(str(part) for part in error["loc"])
            raise ValueError(f"products.{product}.{key}: {error['msg']}") from None


class GatewaySettings(BaseModel):
    """The tracker gateway (``lienwatch gateway``) and HTTP ingest: ``[gateway]`` in the file."""

    model_config = ConfigDict(extra="forbid")

    #: Address the tracker and HTTP servers listen on: loopback unless exposed on purpose
    #: ("0.0.0.0" for every interface; see docs/security.md).
    host: str = "127.0.0.1"
    jt808_port: int = Field(5015, ge=0, le=65535)
    gt06_port: int = Field(5023, ge=0, le=65535)
    #: Serve HTTP ingest (OsmAnd and JSON batches) from ``lienwatch gateway`` too.
    http_ingest: bool = True
    http_port: int = Field(5055, ge=0, le=65535)
    #: Longest frame accepted; a candidate frame claiming more is rejected, never buffered.
    max_frame_bytes: int = Field(4096, ge=64, le=131_072)
    #: Bytes a connection may send in a row that decode to nothing (garbage, bad frames);
    #: beyond it the connection is closed.
    max_junk_bytes: int = Field(4096, ge=64, le=1_048_576)
    #: A connection without a decoded message for this long is closed (JT/T 808 heartbeats
    #: default to 60 s); bytes that decode to nothing do not count.
    idle_timeout_s: float = Field(600.0, gt=0)
    #: A connection whose device is not identified (JT/T 808 authentication, GT06 login) this
    #: long after it opened, or after sending this many bytes, is closed.
    identify_timeout_s: float = Field(60.0, gt=0)
    max_unidentified_bytes: int = Field(16_384, ge=256)
    #: Open connections per tracker port, and per peer address over both ports (keep it well
    #: above the devices behind one carrier NAT address).
    max_connections: int = Field(20_000, ge=1)
    max_connections_per_address: int = Field(1_000, ge=1)
    #: A device has one session: a second connection identifying as it is refused while the
    #: first decoded a message within this (device_cloned), else it takes the session over.
    session_alive_s: float = Field(120.0, gt=0)
    #: A device that does not read its replies for this long is disconnected.
    write_timeout_s: float = Field(30.0, gt=0)
    #: A read whose messages would pause the connection longer than this (see
    #: max_messages_per_s) closes it instead: a pause must not outlive the client.
    max_rate_pause_s: float = Field(5.0, gt=0)
    #: Sustained messages per second per connection; above it reads are paused (TCP
    #: backpressure), so a flooding device is slowed, never served at others' expense.
    max_messages_per_s: float = Field(200.0, gt=0)
    #: Messages a connection may send in a burst above the sustained rate.
    burst_messages: int = Field(2000, ge=1)
    #: What to do with a device the registry does not know: close the connection
    #: (``reject``) or record it unbound and store its positions (``quarantine``).
    unknown_devices: Literal["reject", "quarantine"] = "reject"
    #: Quarantined devices beyond which unknown devices are refused even in quarantine mode.
    max_quarantined_devices: int = Field(1000, ge=0)
    #: JT/T 808 devices must authenticate (0x0102) before their positions are accepted.
    require_auth: bool = True
    #: A fix dated more than this ahead of the server clock is refused (counted in health).
    max_clock_skew_s: int = Field(300, ge=0, le=86_400)
    #: A fix received this long after it was taken is late: stored with ``archived`` set.
    late_after_s: int = Field(600, ge=0)
    #: How often device statuses are refreshed from the last fixes (for devices without a
    #: session, such as HTTP devices and trackers that stopped calling).
    status_interval_s: float = Field(60.0, gt=0)
    #: HTTP: a request body over this is refused with 413, before it is read when its
    #: Content-Length says so (a batch of 1,000 fixes is about 150 KB).
    http_max_body_bytes: int = Field(1_048_576, ge=1024, le=67_108_864)
    #: HTTP: a request body not received in full within this is refused with 408.
    http_body_timeout_s: float = Field(30.0, gt=0, le=300)
    #: HTTP: a connection whose request line and headers are not in within this is closed.
    http_header_timeout_s: float = Field(10.0, gt=0, le=300)
    #: HTTP: connections and requests in progress beyond this are answered 503.
    http_max_connections: int = Field(1000, ge=1)
    #: Operators' token (16+ characters) that shows the detail of GET /api/v1/health (ports,
    #: traffic, jobs); without it the endpoint answers liveness only.
    health_token: str | None = Field(None, min_length=16)
    #: HTTP ingest: partner name -> API token, or better its digest ``sha256:<hex>`` so the
    #: configuration does not hold the token (set them through the environment, e.g.
    #: ``LIENWATCH_GATEWAY__PARTNERS__ACME=...``).
    partners: dict[str, str] = Field(default_factory=dict)
    #: Device model -> its quirks (``[gateway.models.<MODEL>]``: accept_bad_checksum,
    #: accept_bad_length, utc_offset, alarms); see docs/protocols.md. Applied once a
    #: connection's device is identified, to the model recorded for it in the registry.
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("partners")
    @classmethod
    def _strong_tokens(cls, value: dict[str, str]) -> dict[str, str]:
        for name, token in value.items():
            if token.startswith("sha256:"):
                if not re.fullmatch(r"[0-9a-f]{64}", token[7:]):
                    raise ValueError(f"partner {name!r}: sha256: must be followed by 64 hex digits")
            elif len(token) < 16:
                raise ValueError(f"partner {name!r}: token must be at least 16 characters")
        return value


class AuthSettings(BaseModel):
    """Signing in to the API and the console: ``[auth]`` in the file (docs/api.md)."""

    model_config = ConfigDict(extra="forbid")

    #: Lifetime of the bearer token ``POST /api/v1/auth/login`` hands out, and of a console
    #: session.
    token_ttl_minutes: int = Field(720, ge=5, le=43_200)
    #: Default lifetime of an integration's API token (``lienwatch user token``).
    api_token_ttl_days: int = Field(365, ge=1, le=3650)
    #: Consecutive failed logins that lock an account, and for how long.
    max_failed_logins: int = Field(5, ge=1, le=100)
    lockout_minutes: int = Field(15, ge=1, le=10_080)
    #: Send the console's session cookie over HTTPS only (``Secure``); off for plain-HTTP
    #: loopback and tests.
    secure_cookies: bool = False


class BusSettings(BaseModel):
    """The position bus: ``[bus]`` in the file."""

    model_config = ConfigDict(extra="forbid")

    #: ``inprocess`` (embedded default: durable = committed to the store) or ``jetstream``.
    kind: Literal["inprocess", "jetstream"] = "inprocess"
    nats_url: str = "nats://127.0.0.1:4222"
    stream: str = Field("LIENWATCH_POSITIONS", pattern=r"^[A-Za-z0-9_-]+$")
    subject_prefix: str = Field("lienwatch.positions", pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
    #: Vehicle partitions: subjects ``<prefix>.<n>`` with n = CRC-32 of the vehicle's VIN mod
    #: partitions (a device fitted to no vehicle: its id mod partitions).
    partitions: int = Field(16, ge=1, le=4096)
    #: Messages a consumer may have pending on the server (not yet delivered, or delivered
    #: and not yet acknowledged) before health reports it lagging (``degraded``).
    max_pending: int = Field(10_000, ge=1)
    #: A consumer failing without a break this long (NATS unreachable, the store refusing
    #: every batch) makes the process exit with status 1 for its supervisor to restart it;
    #: 0 never gives up.
    give_up_s: float = Field(600.0, ge=0)


class WorkerSettings(BaseModel):
    """``lienwatch worker``: ``[worker]`` in the file."""

    model_config = ConfigDict(extra="forbid")

    #: Address and port of the worker's ``GET /api/v1/health`` (port 0: any free port).
    host: str = "127.0.0.1"
    http_port: int = Field(5056, ge=0, le=65535)
    #: Run the live collateral monitor over the bus partitions this worker owns (JetStream bus
    #: only; ``serve --no-monitor`` then): docs/scaling.md.
    monitor: bool = False
    #: A partition whose owner stopped renewing its lease is taken over after this long.
    lease_s: float = Field(10.0, ge=1)
    #: How often each owned partition's detector state is checkpointed (a takeover replays
    #: the stream from the last checkpoint).
    checkpoint_s: float = Field(10.0, gt=0)


def local_time_of_day(value: time | None, example: str) -> time | None:
    """A time of day of the settings, local to ``time_zone``: refused with an offset."""
    if value is not None and value.tzinfo is not None:
        raise ValueError(
            f"give a local time such as {example} without an offset (the zone is time_zone)"
        )
    return value


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r}") from None
    return value


class FollowupSettings(BaseModel):
    """``[followup]``: the strategy in force, the watchdog's lead, the e-mail relay, the
    channel providers and the size of a batch of due steps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: str = "cn"  # a shipped strategy (cn, us) or the path of a strategy TOML file
    watchdog_lead_h: float = Field(2.0, gt=0)  # escalate a trigger this long before its SLA ends
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(25, ge=1, le=65535)
    email_sender: str = "collections@lienwatch.invalid"
    agency: str = "lender"  # who this installation contacts as (calls are capped across agencies)
    #: Due steps one transaction claims and executes; the tick job drains a backlog in such
    #: batches, so a crash re-sends at most one batch (with the same idempotency keys).
    step_batch: int = Field(500, ge=1, le=100_000)
    #: ``[followup.providers.<channel>]``: ``provider = "<name>"`` and that provider's options
    #: (checked by lienwatch.adapters.providers); secrets through the environment, e.g.
    #: ``LIENWATCH_FOLLOWUP__PROVIDERS__SMS__SECRET``.
    providers: dict[str, dict[str, Any]] = Field(default_factory=dict)


class WorkforceSettings(BaseModel):
    """``[workforce]``: the capacity rules and the reward/penalty scheme in force, each the
    path of a TOML file (unset: the shipped ``capacity-default`` and ``incentives-default``).
    A file carries its ``name`` and ``version``; the forecast and the league name the version
    they used (docs/followup.md, Workforce)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    capacity_rules: Path | None = None
    incentives: Path | None = None
    #: Local time (in ``time_zone``) of the engine's morning plan in ``serve`` and ``worker``:
    #: forecast today and tomorrow and act on the steps forecast to breach (reassign,
    #: substitute, order by exposure; each on the case's timeline); unset: no morning plan.
    plan_at: time | None = time(8, 0)

    _local = field_validator("plan_at")(lambda value: local_time_of_day(value, "08:00"))


class RepossessionSettings(BaseModel):
    """``[repossession]``: when a repossession may be ordered, through which routes, how fast.

    ``routes`` maps a jurisdiction to its lawful routes (court_order, security_enforcement,
    negotiated_handover); self-help towing is refused whatever is configured here.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    jurisdiction: str = "cn"
    min_dpd: int = Field(90, ge=1)  # days past due in the latest nightly snapshot
    max_snapshot_age_d: int = Field(3, ge=1)  # an older snapshot does not prove the DPD
    routes: dict[str, list[str]] = {
        "cn": ["court_order", "security_enforcement", "negotiated_handover"],
        "us": ["court_order", "negotiated_handover"],
    }
    # the SLA of each step, counted from the step before it
    sla_h: dict[str, float] = {
        "approve": 24, "recover": 14 * 24, "appraise": 3 * 24, "sell": 30 * 24, "post": 48,
        "write_off": 30 * 24, "return_surplus": 7 * 24,
    }  # fmt: skip


class ServicingSettings(BaseModel):
    """``[servicing]``: how the nightly portfolio run is executed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workers: int = Field(2, ge=1, le=64)  # processes sharing the run's chunks of loans


class LedgerSettings(BaseModel):
    """``[ledger]``: the tamper-evident ledger (docs/ledger.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The Ed25519 signing key of tree heads, made on first use; keep it out of the
    #: database's reach and backups (whoever holds it can sign a head).
    key_file: Path = Path("lienwatch-ledger.key")
    #: Seconds between tree heads made by the scheduler (pending entries get their proofs).
    seal_every_s: float = Field(300.0, ge=1, le=86_400)


class SchedulerSettings(BaseModel):
    """``[scheduler]``: the periodic jobs of ``lienwatch serve`` and ``lienwatch worker``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    followup_tick_s: float = Field(60.0, ge=0.1, le=86_400)  # seconds between follow-up ticks
    #: Local time (in ``time_zone``) of the nightly servicing run for the day that ended.
    nightly_at: time = time(1, 0)
    #: After downtime, the nightly run catches up at most this many missing days.
    nightly_catch_up_days: int = Field(7, ge=1, le=366)
    #: A failed nightly run is retried after this many seconds, the wait doubling up to
    #: 30 minutes, for at most ``nightly_retry_for_s`` after the first failure.
    nightly_retry_first_s: float = Field(60.0, ge=0.1, le=3_600)
    nightly_retry_for_s: float = Field(6 * 3_600.0, ge=1, le=23 * 3_600)

    _local = field_validator("nightly_at")(lambda value: local_time_of_day(value, "01:00"))


class ReportSettings(BaseModel):
    """``[report]``: the daily risk warning report (``lienwatch report``) and its delivery by
    e-mail through the ``[followup]`` SMTP relay (``smtp_host``, ``smtp_port``,
    ``email_sender``) by ``lienwatch serve`` and ``lienwatch worker``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lang: Literal["zh", "en"] = "zh"
    out: Path = Path("lienwatch-reports")  # each day's report in its own folder below this
    pdf: bool = False  # also report.pdf (needs the ``pdf`` extra), attached to the e-mail
    #: Local time (in ``time_zone``) the report is made and sent; unset: no scheduled report.
    send_at: time | None = None
    recipients: list[str] = []

    _local = field_validator("send_at")(lambda value: local_time_of_day(value, "07:30"))

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+", address):
                raise ValueError(f"{address!r} is not an e-mail address")
        return value

    @model_validator(mode="after")
    def _sent_somewhere(self) -> ReportSettings:
        if self.send_at is not None and not self.recipients:
            raise ValueError("send_at is set but recipients is empty: say whom to send it to")
        return self


class Settings(BaseSettings):
    """Every setting lienwatch reads. Unknown keys in the file are errors, not silently ignored."""

    model_config = SettingsConfigDict(
        env_prefix="LIENWATCH_", env_nested_delimiter="__", extra="forbid"
    )

    database_url: str = DEFAULT_DATABASE_URL
    #: The lender's business day: which calendar day "today" is for the nightly run and the
    #: follow-up engine (each loan's own zone still rules its due dates and contact hours).
    time_zone: str = "Asia/Shanghai"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    demo: DemoSettings = DemoSettings()
    monitor: MonitorSettings = MonitorSettings()
    followup: FollowupSettings = FollowupSettings()
    servicing: ServicingSettings = ServicingSettings()
    repossession: RepossessionSettings = RepossessionSettings()
    workforce: WorkforceSettings = WorkforceSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    ledger: LedgerSettings = LedgerSettings()
    report: ReportSettings = ReportSettings()
    # Servicing rules per product code; checked by lienwatch.servicing.catalogue.
    products: dict[str, dict[str, Any]] = {}
    gateway: GatewaySettings = GatewaySettings()
    auth: AuthSettings = AuthSettings()
    bus: BusSettings = BusSettings()
    worker: WorkerSettings = WorkerSettings()

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                f"unsupported database {value.split(':', 1)[0]!r}; use sqlite or postgresql"
            )
        return value

    @field_validator("time_zone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        return _check_zone(value)

    @model_validator(mode="before")
    @classmethod
    def _one_business_zone(cls, data: Any) -> Any:
        """``[followup] business_time_zone`` of earlier versions is read as ``time_zone``, with a
        warning; both set to different zones is an error, never two "todays"."""
        followup = data.get("followup") if isinstance(data, dict) else None
        if not isinstance(followup, dict) or "business_time_zone" not in followup:
            return data
        followup = dict(followup)
        old = followup.pop("business_time_zone")
        if "time_zone" in data and data["time_zone"] != old:
            raise ValueError(
                f"followup.business_time_zone ({old!r}) and time_zone ({data['time_zone']!r}) "
                "disagree; remove followup.business_time_zone: time_zone is the business day"
            )
        log.warning("config: followup.business_time_zone is deprecated; set time_zone = %r", old)
        return {**data, "followup": followup, "time_zone": old}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_path()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


@dataclass(slots=True)
class CommandLine:
    """What the root command's ``--config FILE`` and ``--db URL`` say (None: not given);
    they come before ``LIENWATCH_CONFIG`` and every other source of ``database_url``."""

    config_file: Path | None = None
    database_url: str | None = None


#: Set by the ``lienwatch`` root command for the command it runs.
command_line = CommandLine()


def config_path() -> Path | None:
    """The config file in force: ``--config`` or ``$LIENWATCH_CONFIG`` (must exist), else
    ``./lienwatch.toml``."""
    if command_line.config_file is not None:
        if not command_line.config_file.is_file():
            raise ConfigError(f"--config: {command_line.config_file}: no such file")
        return command_line.config_file
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV}: {explicit}: no such file")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


#: ``LIENWATCH_*`` variables that are not settings: the config file, the process clock
#: (lienwatch.clock), the demo users' password (lienwatch.demo.console) and, by prefix, the
#: test suite's own.
OTHER_VARIABLES = (CONFIG_ENV, "LIENWATCH_CLOCK", "LIENWATCH_DEMO_PASSWORD")
TEST_PREFIX = "LIENWATCH_TEST_"


def _check_environment() -> None:
    """An unknown ``LIENWATCH_*`` variable is a typo (``LIENWATCH_DATABSE_URL``), never
    silently ignored: refuse it, naming the closest setting. Keys below the first level are
    checked by the models themselves (unknown keys are forbidden)."""
    known = {f"LIENWATCH_{name.upper()}" for name in Settings.model_fields}
    for variable in sorted(os.environ):
        if not variable.startswith("LIENWATCH_") or variable.startswith(TEST_PREFIX):
            continue
        head = variable.split("__", 1)[0]
        if head in known or variable in OTHER_VARIABLES:
            continue
        close = difflib.get_close_matches(head, [*known, *OTHER_VARIABLES], n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ConfigError(f"environment {variable}: no such setting{hint}")


def load_settings() -> Settings:
    """Read and validate the configuration; raise :class:`ConfigError` with a one-line message."""
    _check_environment()
    path = config_path()
    if path is not None:
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
    given = {} if command_line.database_url is None else {"database_url": command_line.database_url}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None


def _describe(exc: ValidationError, path: Path | None) -> str:
    """The first validation problem as ``key: reason (from source)``."""
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"])
    env_name = "LIENWATCH_" + "__".join(str(part) for part in error["loc"]).upper()
    origin = (
        "option --db"
        if key == "database_url" and command_line.database_url is not None
        else f"environment {env_name}"
        if env_name in os.environ
        else f"file {path}"
        if path
        else "default"
    )
    reason = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        reason = "unknown key"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    where = f"{key}: " if key else ""  # a check across keys names them in its reason
    return f"config: {where}{reason} (from {origin}){more}"
