"""What happens to each loan during the simulated window, decided before simulating days.

Days are indices into the telemetry window (0 = its first local day). Seconds are local
seconds since midnight. The track and payment simulations both read these plans, so the
payments stop after the same pledge the GPS shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from lienwatch.domain.geo import haversine_m, offset_m
from lienwatch.domain.schedule import Method, build_schedule
from lienwatch.sim.book import LoanPlan, home_and_work
from lienwatch.sim.places import City, safely_in
from lienwatch.sim.records import Profile
from lienwatch.sim.zones import PLEDGE_CATEGORIES, RiskZone

DAY_S = 86_400
MIN_PLEDGE_STAY_S = 3 * DAY_S


@dataclass(frozen=True, slots=True)
class Pledge:
    day: int
    zone: RiskZone
    lat: float  # parking spot inside the zone
    lon: float
    hold_s: int  # seconds parked at the zone before the wired tracker is disconnected
    wireless_continues: bool


@dataclass(frozen=True, slots=True)
class Removal:
    day: int
    second: int  # local time of the power-cut alarm (at night, parked at home)


@dataclass(frozen=True, slots=True)
class Move:
    day: int
    city: City
    home_lat: float
    home_lon: float
    work_lat: float
    work_lon: float


@dataclass(frozen=True, slots=True)
class Cluster:
    ring_id: str
    day: int  # the day the ring's cars drive to the common spot
    days: int  # how many nights they stay there (the return trip is on day + days)
    centre_lat: float
    centre_lon: float
    lat: float  # this car's spot, within ~60 m of the centre
    lon: float


@dataclass(slots=True)
class Story:
    """One loan's plan: at most one telemetry event, and when payments stop (if they do)."""

    active_day: int  # first window day the car is tracked (the loan's disbursement day)
    pledge: Pledge | None = None
    removal: Removal | None = None
    move: Move | None = None
    cluster: Cluster | None = None
    stop_paying_on: date | None = None  # installments due on or after this date go unpaid
    shared: tuple[str, ...] = field(default_factory=tuple)  # ring: "phone", "address"


def _day_between(rng: np.random.Generator, first: int, last: int) -> int:
    return int(rng.integers(first, max(last, first) + 1))


def plan_stories(
    rng: np.random.Generator,
    plans: list[LoanPlan],
    zones: list[RiskZone],
    start: date,
    days: int,
    cities: list[City],
) -> list[Story]:
    """A story for every loan plan, in plan order."""
    zones_by_city: dict[str, list[RiskZone]] = {}
    for zone in zones:
        if zone.category in PLEDGE_CATEGORIES:
            zones_by_city.setdefault(zone.city.name_en, []).append(zone)
    stories = [Story(active_day=max(0, (p.loan.disbursed_on - start).days)) for p in plans]
    for plan, story in zip(plans, stories, strict=True):
        if plan.profile is Profile.SECONDARY_PLEDGE:
            story.pledge = _pledge(rng, story, zones_by_city[plan.city.name_en], days)
            story.stop_paying_on = start + timedelta(days=story.pledge.day)
        elif plan.profile is Profile.TRACKER_REMOVED:
            day = _day_between(rng, story.active_day + 2, days - 2)
            story.removal = Removal(day, int(rng.integers(3_600, 16_200)))
            if rng.random() < 0.5:
                story.stop_paying_on = start + timedelta(days=day + int(rng.integers(0, 20)))
        elif plan.profile is Profile.MOVES_PROVINCE:
            story.move = _move(rng, plan.city, story, days, cities)
    _plan_rings(rng, plans, stories, start, days)
    return stories


def _pledge(rng: np.random.Generator, story: Story, zones: list[RiskZone], days: int) -> Pledge:
    zone = zones[int(rng.integers(len(zones)))]
    hold_s = MIN_PLEDGE_STAY_S + int(rng.integers(3_600, 4 * DAY_S))
    hold_days = hold_s // DAY_S + 1
    day = min(story.active_day + int(rng.integers(2, 30)), days - hold_days - 2)
    day = max(day, story.active_day + 1, 0)
    # Park well inside the zone: half its radius, so GPS noise (≤ 30 m) never leaves it.
    radius = rng.uniform(0, zone.radius_m / 2)
    bearing = rng.uniform(0, 2 * np.pi)
    lat, lon = offset_m(zone.lat, zone.lon, radius * np.sin(bearing), radius * np.cos(bearing))
    return Pledge(day, zone, float(lat), float(lon), hold_s, bool(rng.random() < 0.5))


def _move(
    rng: np.random.Generator, city: City, story: Story, days: int, cities: list[City]
) -> Move:
    others = [c for c in cities if c.province_code != city.province_code]
    far = haversine_m(
        city.lat, city.lon, np.array([c.lat for c in others]), np.array([c.lon for c in others])
    )
    near = np.flatnonzero((far > 150_000) & (far < 900_000))
    candidates = near if len(near) else np.argsort(far)[:3]
    weights = np.sqrt([others[i].population for i in candidates])
    new_city = others[int(rng.choice(candidates, p=weights / weights.sum()))]
    home_lat, home_lon, work_lat, work_lon = home_and_work(rng, new_city)
    # three night ends at the new home inside the data, as night_relocation needs to confirm a move
    day = _day_between(rng, story.active_day + 2, days - 4)
    return Move(day, new_city, home_lat, home_lon, work_lat, work_lon)


def _plan_rings(
    rng: np.random.Generator, plans: list[LoanPlan], stories: list[Story], start: date, days: int
) -> None:
    rings: dict[str, list[int]] = {}
    for i, plan in enumerate(plans):
        if plan.ring_id:
            rings.setdefault(plan.ring_id, []).append(i)
    for ring_id, members in rings.items():
        shared = _shared_fields([plans[i] for i in members])
        for i in members:
            stories[i].shared = shared
            # Fraud rings default early: one to three installments paid, then nothing.
            loan = plans[i].loan
            schedule = build_schedule(
                principal=loan.principal,
                annual_rate=loan.annual_rate,
                term=loan.term,
                method=Method(loan.method),
                start=loan.disbursed_on,
            )
            stories[i].stop_paying_on = schedule[int(rng.integers(1, 4))].due_date
        first_day = max(stories[i].active_day for i in members) + 2
        if rng.random() >= 0.7 or first_day > days - 4:
            continue
        city = plans[members[0]].city
        for _ in range(20):
            lat, lon = offset_m(city.lat, city.lon, *rng.uniform(-8_000, 8_000, 2))
            if safely_in(lat, lon, city.province_code):
                break
        else:
            lat, lon = plans[members[0]].borrower.home_lat, plans[members[0]].borrower.home_lon
        day = _day_between(rng, first_day, days - 4)
        length = min(int(rng.integers(4, 13)), days - day - 1)
        for i in members:
            spot_lat, spot_lon = offset_m(lat, lon, *rng.uniform(-40, 40, 2))
            stories[i].cluster = Cluster(
                ring_id, day, length, float(lat), float(lon), float(spot_lat), float(spot_lon)
            )


def _shared_fields(members: list[LoanPlan]) -> tuple[str, ...]:
    phones = {m.borrower.phone for m in members}
    addresses = {m.borrower.address for m in members}
    return tuple(
        name for name, values in (("phone", phones), ("address", addresses)) if len(values) == 1
    )
