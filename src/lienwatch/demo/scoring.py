"""Scoring the collateral monitor against the simulator's ground truth.

A top-layer module: it reads :mod:`lienwatch.sim` labels, which the monitor itself never sees.
For each alert type, a loan is a true case when its profile's
:func:`~lienwatch.sim.expected_alerts` holds the type (``tracker_mismatch`` only when the car
carries a second tracker, ``cluster`` only when the ring's cars really parked together); it is
flagged when at least one alert of the type names its vehicle. Beside precision against its own
story, each type reports the share of its flags on loans with any real risk (any profile but
``on_time``) and its flags on ``on_time`` loans, as a count and a share of the on-time loans:
what a lender reads as the cost of a detector. The definitions are in docs/monitor.md.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lienwatch.config import MonitorSettings
from lienwatch.data import province_index
from lienwatch.domain.provinces import ProvinceIndex
from lienwatch.monitor import Alert, AlertType, DeviceSpec, VehicleSpec, ZoneLibrary
from lienwatch.monitor.batch import MonitorResult, run_monitor
from lienwatch.sim import expected_alerts
from lienwatch.sim.records import Portfolio, Profile

# The truth event whose start a detection delay is measured from, per alert type.
_TRUTH_LABEL = {
    AlertType.LONG_STAY: "secondary_pledge",
    AlertType.RISK_ZONE_VISIT: "secondary_pledge",
    AlertType.DEVICE_OFFLINE: "device_offline",
    AlertType.POWER_CUT: "device_removed",
    AlertType.DEVICE_REMOVED: "device_removed",
    AlertType.TRACKER_MISMATCH: "device_removed",
    AlertType.LEFT_REGION: "moved_province",
    AlertType.NIGHT_RELOCATION: "moved_province",
    AlertType.ADDRESS_MISMATCH: "moved_province",
    AlertType.CLUSTER: "cluster",
}


@dataclass(frozen=True, slots=True)
class TypeScore:
    alert_type: str
    expected: int  # loans that should be flagged
    flagged: int  # loans flagged
    hits: int  # loans both
    on_time_flagged: int  # on_time loans flagged (false alarms on good borrowers)
    median_delay_h: float | None  # raised_at − start of the truth event, over hits
    # flagged loans the truth did not expect, by profile: whose behaviour the type also catches
    unexpected_by_profile: dict[str, int] = field(default_factory=dict)
    on_time_loans: int = 0  # the on_time loans of the book, what on_time_flagged is a share of

    @property
    def risky_share(self) -> float | None:
        """The share of flagged loans with any real risk (any profile but ``on_time``)."""
        return (self.flagged - self.on_time_flagged) / self.flagged if self.flagged else None

    @property
    def on_time_share(self) -> float | None:
        """On-time loans flagged as a share of the book's on-time loans."""
        return self.on_time_flagged / self.on_time_loans if self.on_time_loans else None

    @property
    def precision(self) -> float | None:
        """None when nothing was flagged, or when the truth expects the type on no loan
        (``unusual_area``): its flags can then be neither confirmed nor refuted."""
        return self.hits / self.flagged if self.flagged and self.expected else None

    @property
    def recall(self) -> float | None:
        return self.hits / self.expected if self.expected else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "flagged": self.flagged,
            "precision": _round(self.precision),
            "recall": _round(self.recall),
            "risky_share": _round(self.risky_share),
            "on_time_flagged": self.on_time_flagged,
            "on_time_share": _round(self.on_time_share, 4),
            "median_delay_h": self.median_delay_h,
            "unexpected_by_profile": self.unexpected_by_profile,
        }


def monitor_portfolio(
    portfolio: Portfolio,
    *,
    settings: MonitorSettings | None = None,
    exposures: Mapping[str, int] | None = None,
    provinces: ProvinceIndex | None = None,
) -> MonitorResult:
    """Run the collateral monitor over a simulated portfolio (the demo's monitoring stage).

    ``exposures`` maps loan ref → unsecured exposure in fen (from servicing); missing loans
    carry 0. Each loan's permitted region is its booked province, its declared home the
    borrower's; the risk zones are the portfolio's.
    """
    devices, vehicles = fleet_of(portfolio, exposures or {})
    p = portfolio.positions
    return run_monitor(
        p,
        devices,
        vehicles,
        provinces=provinces or province_index(),
        zones=ZoneLibrary(portfolio.truth.risk_zones),
        settings=settings,
    )


def fleet_of(
    portfolio: Portfolio, exposures: Mapping[str, int]
) -> tuple[list[DeviceSpec], list[VehicleSpec]]:
    """The monitor's view of a simulated book: trackers, and vehicles with their loans."""
    borrowers = {b.ref: b for b in portfolio.borrowers}
    vehicles = [
        VehicleSpec(
            loan.vehicle_vin,
            loan_id=loan.ref,
            borrower_id=loan.borrower_ref,
            product=loan.product,
            region=loan.booked_province,
            home=(borrowers[loan.borrower_ref].home_lat, borrowers[loan.borrower_ref].home_lon),
            time_zone=loan.time_zone,
            exposure=exposures.get(loan.ref, 0),
        )
        for loan in portfolio.loans
    ]
    devices = [
        DeviceSpec(d.device_id, d.vehicle_vin, d.kind, d.report_interval_s)
        for d in portfolio.devices
    ]
    return devices, vehicles


def score_alerts(portfolio: Portfolio, alerts: Iterable[Alert]) -> dict[str, TypeScore]:
    """Precision, recall and detection delay of every alert type against the ground truth."""
    truth = portfolio.truth
    loan_of = {loan.vehicle_vin: loan.ref for loan in portfolio.loans}
    two_trackers = _vehicles_with_two_trackers(portfolio)
    parked_together = {e.loan_ref for e in truth.events if e.label == "cluster"}
    flagged: dict[str, dict[str, int]] = defaultdict(dict)  # type -> loan -> first raised_at
    for alert in alerts:
        loan = alert.loan_id or loan_of.get(alert.vehicle_id)
        if loan is None:
            continue
        first = flagged[alert.type].get(loan)
        flagged[alert.type][loan] = (
            alert.raised_at if first is None else min(first, alert.raised_at)
        )
    starts: dict[tuple[str, str], int] = {}
    for event in truth.events:
        key = (event.label, event.loan_ref)
        start = int(event.start.timestamp())
        starts[key] = min(starts.get(key, start), start)
    on_time = _on_time_loans(portfolio)
    scores = {}
    for alert_type in AlertType:
        expected = {
            loan.ref
            for loan in portfolio.loans
            if alert_type in expected_alerts(truth.profiles[loan.ref])
            and (alert_type != AlertType.TRACKER_MISMATCH or loan.vehicle_vin in two_trackers)
            and (alert_type != AlertType.CLUSTER or loan.ref in parked_together)
        }
        scores[str(alert_type)] = _score(
            alert_type, expected, flagged[alert_type], starts, truth, on_time
        )
    return scores


def _score(alert_type, expected, flagged, starts, truth, on_time: int) -> TypeScore:
    hits = expected & set(flagged)
    delays = [
        (flagged[loan] - starts[(_TRUTH_LABEL[alert_type], loan)]) / 3_600
        for loan in hits
        if (_TRUTH_LABEL.get(alert_type), loan) in starts
    ]
    return TypeScore(
        str(alert_type),
        len(expected),
        len(flagged),
        len(hits),
        sum(1 for loan in flagged if truth.profiles[loan] == Profile.ON_TIME),
        round(statistics.median(delays), 1) if delays else None,
        dict(Counter(str(truth.profiles[loan]) for loan in set(flagged) - expected).most_common()),
        on_time,
    )


def default_lead_days(portfolio: Portfolio, alerts: Sequence[Alert]) -> float | None:
    """Median days between a defaulting loan's first collateral alert and its default."""
    loan_of = {loan.vehicle_vin: loan.ref for loan in portfolio.loans}
    first: dict[str, int] = {}
    for alert in alerts:
        loan = alert.loan_id or loan_of.get(alert.vehicle_id)
        if loan is not None:
            first[loan] = min(first.get(loan, alert.raised_at), alert.raised_at)
    leads = [
        (event.start.timestamp() - first[event.loan_ref]) / 86_400
        for event in portfolio.truth.events
        if event.label == "default" and event.loan_ref in first
    ]
    return round(statistics.median(leads), 1) if leads else None


def scoring_summary(portfolio: Portfolio, result: MonitorResult) -> dict[str, Any]:
    """What the demo prints: the scores of every alert type (those that flagged nothing and
    expect nothing too, so a quiet detector is seen as quiet), the lead time before default,
    the counts."""
    scores = score_alerts(portfolio, result.alerts)
    return {
        "alerts": len(result.alerts),
        "on_time_loans": _on_time_loans(portfolio),
        "by_type": {name: score.as_dict() for name, score in scores.items()},
        "default_lead_days": default_lead_days(portfolio, result.alerts),
        "counts": result.counts,
    }


def _on_time_loans(portfolio: Portfolio) -> int:
    return sum(1 for profile in portfolio.truth.profiles.values() if profile == Profile.ON_TIME)


def _vehicles_with_two_trackers(portfolio: Portfolio) -> set[str]:
    kinds: dict[str, set[str]] = defaultdict(set)
    for device in portfolio.devices:
        kinds[device.vehicle_vin].add(device.kind)
    return {vin for vin, k in kinds.items() if len(k) > 1}


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
