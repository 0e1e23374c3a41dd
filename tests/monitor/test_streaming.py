"""Streaming (any order within the reorder window, fed in pieces, clock ticks) equals batch."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lienwatch.config import MonitorSettings
from lienwatch.monitor import DeviceSpec, Monitor, VehicleSpec
from tests.monitor.conftest import HOME, T0, batch

WINDOW = 600
DEVICES = [DeviceSpec("W1", "V1", "wired", 1800), DeviceSpec("S1", "V1", "wireless", 3600)]
DEVICES += [DeviceSpec("W2", "V2", "wired", 1800)]
VEHICLES = [VehicleSpec("V1", home=HOME, region="33"), VehicleSpec("V2")]


@st.composite
def tracks(draw):
    """Random walks with stays, jumps, gaps, alarms and invalid fixes for three devices."""
    rows = []
    for device in ("W1", "S1", "W2"):
        t, lat, lon = T0, HOME[0], HOME[1]
        for _ in range(draw(st.integers(1, 60))):
            t += draw(st.sampled_from([60, 300, 1800, 7200, 30 * 3600, 100 * 3600]))
            step = draw(st.sampled_from([0.0, 0.0005, 0.02, 0.5, 3.0]))
            lat += draw(st.sampled_from([-1, 1])) * step
            lon += draw(st.sampled_from([-1, 1])) * step
            alarm = draw(st.sampled_from(["", "", "", "", "power_cut", "gnss_antenna_cut"]))
            valid = draw(st.booleans()) or draw(st.booleans())
            rows.append((device, t, lat, lon, alarm, valid))
    return rows


def _result(monitor):
    return sorted(
        (a.as_json() | {"status_at": a.status_at} for a in monitor.alerts),
        key=lambda a: a["id"],
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tracks(), st.randoms(use_true_random=False), st.integers(1, 50))
def test_streaming_equals_batch(provinces, rows, rnd, piece):
    settings_ = MonitorSettings(reorder_window_s=WINDOW)
    whole = Monitor(DEVICES, VEHICLES, settings=settings_, provinces=provinces)
    whole.replay(batch(rows))
    end = max(r[1] for r in rows) + 3600
    whole.flush(end)

    # Arrival order: time order disturbed by at most the window (jitter < WINDOW / 2 each).
    arrival = sorted(rows, key=lambda r: r[1] + rnd.uniform(0, WINDOW / 2 - 1))
    streamed = Monitor(DEVICES, VEHICLES, settings=settings_, provinces=provinces)
    for start in range(0, len(arrival), piece):
        part = arrival[start : start + piece]
        streamed.ingest(batch(part))
        streamed.advance(int(np.min([r[1] for r in part])))
    streamed.flush(end)
    assert streamed.counts["late"] == whole.counts["late"]
    assert _result(streamed) == _result(whole)


def test_a_fix_later_than_the_window_is_dropped_and_counted(provinces):
    monitor = Monitor(DEVICES, VEHICLES, provinces=provinces)
    monitor.ingest(batch([("W1", T0 + 5000, *HOME), ("W1", T0 + 9000, *HOME)]))
    monitor.ingest(batch([("W1", T0 + 100, *HOME), ("W1", T0 + 9000, *HOME)]))
    monitor.flush()
    assert monitor.counts["late"] == 2 and monitor.counts["fixes"] == 2
