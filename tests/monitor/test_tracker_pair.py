"""``tracker_mismatch`` on the trackers lenders fit: a wired tracker reporting every 30 s while
the car moves and every 10–30 min while it is parked, and a wireless one every 1–12 h, which
is almost never within ``pair_window_s`` of the wired one (issue 18)."""

from __future__ import annotations

import numpy as np
import pytest

from lienwatch.domain.geo import offset_m
from lienwatch.monitor import DeviceSpec, Monitor, VehicleSpec
from tests.monitor.conftest import HOME, HOUR, T0, batch

WIRED = DeviceSpec("W1", "V1", "wired", 1800)
WIRELESS = DeviceSpec("S1", "V1", "wireless", 12 * HOUR)
WORK = tuple(float(v) for v in offset_m(HOME[0], HOME[1], 8_000, 3_000))
THIEF = tuple(float(v) for v in offset_m(HOME[0], HOME[1], 40_000, 0))  # 40 km north
DAYS = 6
SPLIT = T0 + 2 * 24 * HOUR + 2 * HOUR  # day 3, 10:00 in Hangzhou: the car is at work


def _between(a, b, f):
    return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f


def car_at(t: int) -> tuple[tuple[float, float], bool]:
    """Where the car is at ``t`` and whether it is moving: home, 08:00–08:30 to work, work,
    18:00–18:30 home (Hangzhou time; T0 is 08:00 there)."""
    minute = ((t - T0) // 60 + 8 * 60) % (24 * 60)
    if 480 <= minute < 510:
        return _between(HOME, WORK, (minute - 480) / 30), True
    if 510 <= minute < 1080:
        return WORK, False
    if 1080 <= minute < 1110:
        return _between(WORK, HOME, (minute - 1080) / 30), True
    return HOME, False


def thief_at(t: int) -> tuple[tuple[float, float], bool]:
    """The wired tracker after the split: driven 40 minutes to the thief's place, kept there."""
    if t >= SPLIT + 2400:
        return THIEF, False
    return _between(car_at(SPLIT)[0], THIEF, (t - SPLIT) / 2400), True


def tracks(seed: int, *, split: bool) -> list[tuple]:
    rng = np.random.default_rng(seed)
    rows, t, end = [], T0, T0 + DAYS * 24 * HOUR
    while t < end:  # wired: 30 s while moving, 10–30 min while parked
        at, moving = thief_at(t) if split and t >= SPLIT else car_at(t)
        rows.append(("W1", t, *at))
        t += 30 if moving else int(rng.integers(600, 1801))
    t = T0 + int(rng.integers(0, HOUR))
    while t < end:  # wireless, in the car: every 1–12 h, 50 m of noise
        (lat, lon), _ = car_at(t)
        noise = rng.normal(0, 50, 2)
        rows.append(("S1", t, *(float(v) for v in offset_m(lat, lon, noise[0], noise[1]))))
        t += int(rng.integers(HOUR, 12 * HOUR + 1))
    return sorted(rows, key=lambda r: r[1])


def mismatches(provinces, rows):
    monitor = Monitor([WIRED, WIRELESS], [VehicleSpec("V1", home=HOME)], provinces=provinces)
    monitor.replay(batch(rows))
    monitor.flush()
    return [a for a in monitor.alerts if a.type == "tracker_mismatch"]


@pytest.mark.parametrize("seed", range(8))
def test_a_wired_tracker_driven_away_is_seen_against_a_sparse_wireless_one(provinces, seed):
    rows = tracks(seed, split=True)
    wireless_after = [r[1] for r in rows if r[0] == "S1" and r[1] > SPLIT + 2400]
    [alert] = mismatches(provinces, rows)
    # known at the wired tracker's report after the second wireless report since the split
    assert alert.start >= SPLIT and alert.raised_at <= wireless_after[1] + 1800
    assert alert.evidence["km"] > 30


@pytest.mark.parametrize("seed", range(8))
def test_two_trackers_in_one_car_never_mismatch(provinces, seed):
    assert mismatches(provinces, tracks(seed, split=False)) == []


def test_a_car_seen_together_again_resolves_the_mismatch(provinces):
    rows = [r for r in tracks(0, split=True) if r[0] == "S1" or r[1] < SPLIT + 20 * HOUR]
    back = SPLIT + 20 * HOUR
    rows += [("W1", t, *car_at(t)[0]) for t in range(back, T0 + DAYS * 24 * HOUR, 1200)]
    [alert] = mismatches(provinces, sorted(rows, key=lambda r: r[1]))
    assert alert.status == "resolved" and alert.end > back
