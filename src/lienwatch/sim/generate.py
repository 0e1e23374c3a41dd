"""The portfolio generator: :class:`SimConfig` in, :class:`~lienwatch.sim.records.Portfolio` out."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType

import numpy as np

from lienwatch.errors import LienwatchError
from lienwatch.sim.book import BookSpec, borrower_cities, build_book
from lienwatch.sim.payments import released_when_paid, simulate_payments, with_payers
from lienwatch.sim.records import GroundTruth, Portfolio, Profile
from lienwatch.sim.stories import plan_stories
from lienwatch.sim.tracks import TrackSettings, simulate_tracks
from lienwatch.sim.truth import loan_events, telemetry_events
from lienwatch.sim.zones import build_zones, feature_collection

DEFAULT_PROFILE_MIX: Mapping[Profile, float] = MappingProxyType(
    {
        Profile.ON_TIME: 0.70,
        Profile.LATE_THEN_CURES: 0.10,
        Profile.SLIDES_INTO_DEFAULT: 0.06,
        Profile.SECONDARY_PLEDGE: 0.04,
        Profile.TRACKER_REMOVED: 0.04,
        Profile.MOVES_PROVINCE: 0.03,
        Profile.FRAUD_RING: 0.03,
    }
)
MIN_DAYS = 14  # room for a pledge: arrive, stay three days, go dark, and be seen dark

# Independent random streams, so that changing one stage does not reshuffle the others.
(_STREAM_BOOK, _STREAM_ZONES, _STREAM_STORIES, _STREAM_PAYMENTS, _STREAM_TRACKS,
 _STREAM_PAYERS) = range(6)  # fmt: skip


class SimConfigError(LienwatchError, ValueError):
    """A simulator setting out of range; the message names the field."""


@dataclass(frozen=True)
class SimConfig:
    """Size, seed and knobs of a synthetic portfolio.

    Attributes:
        loans: Number of loans (one vehicle each); 1–1,000,000.
        days: Telemetry window in local days, ending the day before ``as_of``; at least 14.
        seed: Seed of every random draw: the same config gives the same portfolio.
        as_of: The business date; telemetry covers the ``days`` local days before it.
        profile_mix: Share of loans per behaviour profile; non-negative weights, normalised to 1.
            Profiles left out get no loans.
        moving_interval_s: Wired tracker report interval while driving, seconds.
        parked_interval_s: Wired tracker report interval while parked, seconds.
        wireless_interval_s: Wireless (battery) tracker report interval, seconds.
        wireless_share: Share of vehicles that also carry a wireless tracker.
        company_share: Share of borrowers that are companies financing a small fleet.
    """

    loans: int = 2000
    days: int = 120
    seed: int = 7
    as_of: date = date(2026, 11, 1)
    profile_mix: Mapping[Profile, float] = field(default_factory=lambda: DEFAULT_PROFILE_MIX)
    moving_interval_s: int = 300
    parked_interval_s: int = 7200
    wireless_interval_s: int = 28_800
    wireless_share: float = 0.6
    company_share: float = 0.03

    def __post_init__(self) -> None:
        _check_int("loans", self.loans, 1, 1_000_000)
        _check_int("days", self.days, MIN_DAYS, 3_650)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        if not isinstance(self.as_of, date):
            raise SimConfigError(f"as_of: must be a date, got {self.as_of!r}")
        _check_int("moving_interval_s", self.moving_interval_s, 10, 3_600)
        _check_int("parked_interval_s", self.parked_interval_s, self.moving_interval_s, 86_400)
        _check_int("wireless_interval_s", self.wireless_interval_s, 600, 86_400)
        _check_share("wireless_share", self.wireless_share)
        _check_share("company_share", self.company_share)
        object.__setattr__(self, "profile_mix", _normalised_mix(self.profile_mix))

    @property
    def start(self) -> date:
        """The first local day of telemetry."""
        return self.as_of - timedelta(days=self.days)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SimConfigError(f"{name}: must be an integer in {low}–{high}, got {value!r}")


def _check_share(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise SimConfigError(f"{name}: must be a number in 0–1, got {value!r}")


def _normalised_mix(mix: Mapping[Profile | str, float]) -> Mapping[Profile, float]:
    shares: dict[Profile, float] = {}
    for key, share in mix.items():
        try:
            profile = Profile(key)
        except ValueError:
            raise SimConfigError(f"profile_mix: unknown profile {key!r}") from None
        if (
            isinstance(share, bool)
            or not isinstance(share, int | float)
            or not (math.isfinite(share) and share >= 0)
        ):
            raise SimConfigError(
                f"profile_mix: share of {profile.value} must be ≥ 0, got {share!r}"
            )
        shares[profile] = float(share)
    total = sum(shares.values())
    if total <= 0:
        raise SimConfigError("profile_mix: shares must sum to more than 0")
    return MappingProxyType({p: s / total for p, s in shares.items()})


def _stream(seed: int, stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream])))


def generate(
    config: SimConfig, *, progress: Callable[[str, int, int], None] | None = None
) -> Portfolio:
    """Generate the portfolio described by ``config``.

    Args:
        config: Size, seed and knobs. The same config always gives the same portfolio.
        progress: Called as ``progress(stage, done, total)`` a few dozen times in all, with
            stages ``"book"``, ``"payments"`` and ``"tracks"``; for progress bars.

    Returns:
        Borrowers, vehicles, devices, loans, payments, positions sorted by (device, time),
        and the ground truth to score detectors against.
    """
    report = progress or (lambda stage, done, total: None)
    start = config.start
    spec = BookSpec(
        config.loans,
        start,
        config.as_of,
        config.profile_mix,
        config.wireless_share,
        config.company_share,
        config.parked_interval_s,
        config.wireless_interval_s,
    )
    report("book", 0, 2)
    borrowers, plans = build_book(_stream(config.seed, _STREAM_BOOK), spec)
    cities = borrower_cities()
    used = {p.city.name_en: p.city for p in plans}
    zones = build_zones(
        _stream(config.seed, _STREAM_ZONES), sorted(used.values(), key=lambda c: c.index)
    )
    stories = plan_stories(
        _stream(config.seed, _STREAM_STORIES), plans, zones, start, config.days, cities
    )
    report("book", 2, 2)
    payments, events = [], []
    rng = _stream(config.seed, _STREAM_PAYMENTS)
    step = max(1, len(plans) // 10)
    for i, (plan, story) in enumerate(zip(plans, stories, strict=True)):
        paid, delinquency = simulate_payments(rng, plan, story, config.as_of)
        payments.extend(paid)
        plan.loan = released_when_paid(plan.loan, paid, delinquency, config.as_of)
        events.extend(loan_events(plan, story, delinquency))
        if (i + 1) % step == 0 or i + 1 == len(plans):
            report("payments", i + 1, len(plans))
    payments = with_payers(_stream(config.seed, _STREAM_PAYERS), payments,
                           {plan.loan.ref: plan.borrower for plan in plans})  # fmt: skip
    settings = TrackSettings(
        start,
        config.days,
        config.moving_interval_s,
        config.parked_interval_s,
        config.wireless_interval_s,
    )
    positions, facts = simulate_tracks(
        _stream(config.seed, _STREAM_TRACKS), plans, stories, settings, cities, report
    )
    for v, (plan, story) in enumerate(zip(plans, stories, strict=True)):
        events.extend(telemetry_events(plan, story, facts, v))
    events.sort(key=lambda e: (e.start, e.loan_ref, e.label))
    rings: dict[str, list[str]] = {}
    for plan in plans:
        if plan.ring_id:
            rings.setdefault(plan.ring_id, []).append(plan.borrower.ref)
    truth = GroundTruth(
        {p.loan.ref: p.profile for p in plans}, events, rings, feature_collection(zones)
    )
    devices = [d for p in plans for d in (p.wired, p.wireless) if d is not None]
    return Portfolio(
        start,
        config.as_of,
        borrowers,
        [p.vehicle for p in plans],
        devices,
        [p.loan for p in plans],
        payments,
        positions,
        truth,
    )
