"""``find_stays`` (batch) finds exactly the stays the streaming ``Stays`` detector walks through."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lienwatch.config import MonitorThresholds
from lienwatch.domain.geo import offset_m, unit_vectors
from lienwatch.monitor import MonitorInputError
from lienwatch.monitor.detectors.base import Emitter
from lienwatch.monitor.detectors.long_stay import Places, Stays
from lienwatch.monitor.lifecycle import AlertBook
from lienwatch.monitor.model import Fix, VehicleSpec
from lienwatch.monitor.stays import find_stays
from tests.monitor.conftest import HOME, T0

RADIUS_M = 200.0
MIN_S = 1800


def _streamed_stays(provinces, rows):
    """(track, anchor time, departure or last time) of every stay the streaming detector
    begins, from watching which fixes it takes as anchors."""
    thresholds = MonitorThresholds(stay_radius_m=RADIUS_M)
    found = []
    for track in sorted({r[0] for r in rows}):
        out = Emitter(VehicleSpec(track), thresholds, AlertBook(provinces.provinces))
        stays = Stays(out, Places(out.limits, None))
        mine = [r for r in rows if r[0] == track]
        anchors = []
        for _, t, lat, lon in mine:
            x, y, z = (float(v) for v in unit_vectors(lat, lon))
            fix = Fix(t, track, True, lat, lon, x, y, z, -1, -1, t, 0, "", True)
            stays.on_fix(fix)
            if stays.anchor is fix:
                anchors.append(t)
        times = [r[1] for r in mine]
        starts = [times.index(a) for a in anchors]
        for k, i in enumerate(starts):
            end = times[starts[k + 1]] if k + 1 < len(starts) else times[-1]
            if end - times[i] >= MIN_S:
                found.append((track, times[i], end))
    return found


@st.composite
def tracks(draw):
    """Walks that park (GPS jitter), creep, drive and jump, for up to three vehicles."""
    rows = []
    for track in draw(st.sampled_from([["A"], ["A", "B"], ["A", "B", "C"]])):
        t, lat, lon = T0, HOME[0], HOME[1]
        for _ in range(draw(st.integers(1, 80))):
            t += draw(st.sampled_from([30, 300, 900, 1800, 7200]))
            metres = draw(st.sampled_from([0.0, 15.0, 90.0, 150.0, 250.0, 1_000.0, 50_000.0]))
            angle = draw(st.floats(0, 2 * np.pi))
            lat, lon = (
                float(v) for v in offset_m(lat, lon, metres * np.cos(angle), metres * np.sin(angle))
            )
            rows.append((track, t, lat, lon))
    return rows


@settings(max_examples=60, deadline=None)
@given(tracks(), st.randoms(use_true_random=False), st.booleans())
def test_batch_stays_equal_streaming_stays(provinces, rows, rnd, shuffle):
    expected = _streamed_stays(provinces, rows)
    given_order = rows[:]  # generated grouped by track, in time order
    if shuffle:
        rnd.shuffle(given_order)  # any input order: the function sorts by (track, time)
    track, time, lat, lon = (np.array(column) for column in zip(*given_order, strict=True))
    table = find_stays(track, time, lat, lon, radius_m=RADIUS_M, min_duration_s=MIN_S)
    got = list(zip(table.track.tolist(), table.start.tolist(), table.end.tolist(), strict=True))
    assert got == expected
    assert (time[table.first] == table.start).all()
    assert (track[table.first] == track[table.last]).all()


def test_a_parked_car_between_drives_is_one_closed_stay_and_the_last_one_is_open():
    # drive in, park 2 h with 40 m jitter, drive off 5 km, park until the end (1 h)
    lat = [30.0, 30.01, 30.0204, 30.0206, 30.0203, 30.065, 30.065, 30.0652]
    lon = [120.0] * len(lat)
    time = T0 + np.array([0, 300, 600, 3600, 7800, 8100, 9000, 11700])
    table = find_stays(["V"] * 8, time, lat, lon, radius_m=RADIUS_M, min_duration_s=MIN_S)
    assert table.first.tolist() == [2, 5]
    assert table.last.tolist() == [4, 7]
    assert (table.end - table.start).tolist() == [7500, 3600]  # to departure; to last fix
    assert table.open.tolist() == [False, True]


def test_a_stay_ends_at_the_departure_fix_even_with_one_fix_inside():
    # one report on arrival, the next 45 min later already 3 km away: parked at least 30 min
    table = find_stays(
        ["V", "V"],
        [T0, T0 + 2700],
        [30.0, 30.027],
        [120.0, 120.0],
        radius_m=RADIUS_M,
        min_duration_s=MIN_S,
    )
    assert (table.first.tolist(), table.last.tolist(), table.open.tolist()) == ([0], [0], [False])


def test_no_fixes_no_stays():
    table = find_stays([], [], [], [], radius_m=RADIUS_M, min_duration_s=MIN_S)
    assert len(table) == 0 and table.open.dtype == bool


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lat": [91.0]}, "lat: not finite or outside -90..90"),
        ({"lon": [float("nan")]}, "lon: not finite"),
        ({"time": [1, 2]}, "time: shape (2,) differs"),
        ({"radius_m": 0.0}, "radius_m: 0.0 is not positive"),
        ({"min_duration_s": -1.0}, "min_duration_s: -1.0 is negative"),
    ],
)
def test_bad_input_names_the_field(change, message):
    arguments = {"track": ["V"], "time": [T0], "lat": [30.0], "lon": [120.0]}
    arguments |= {"radius_m": RADIUS_M, "min_duration_s": MIN_S} | change
    with pytest.raises(MonitorInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        find_stays(**arguments)
