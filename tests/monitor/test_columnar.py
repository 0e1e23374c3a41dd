"""The batch replay's columnar path gives the per-fix run's alerts on a simulated book.

Streaming (``ingest`` of the whole book, then ``flush``) runs every fix through the per-fix
state machines; ``replay`` runs vehicles without alarms column by column and the few with
alarms fix by fix. Both must raise the same alerts, field by field, and count the same."""

from __future__ import annotations

import numpy as np

from lienwatch.demo.scoring import fleet_of
from lienwatch.domain.positions import PositionColumns
from lienwatch.monitor import Monitor, ZoneLibrary
from lienwatch.sim import SimConfig, generate


def _alerts(monitor: Monitor) -> list[dict]:
    return sorted(
        (a.as_json() | {"status_at": a.status_at} for a in monitor.alerts),
        key=lambda a: a["id"],
    )


def test_replay_equals_streaming_on_a_simulated_book(provinces):
    book = generate(SimConfig(loans=80, days=40, seed=5))
    devices, vehicles = fleet_of(book, {})
    zones = ZoneLibrary(book.truth.risk_zones)
    positions = book.positions
    assert (positions.alarms != "").any()  # some vehicles take the per-fix path

    whole = Monitor(devices, vehicles, provinces=provinces, zones=zones)
    whole.replay(positions)
    whole.flush()
    streamed = Monitor(devices, vehicles, provinces=provinces, zones=zones)
    streamed.ingest(positions.take(np.argsort(positions.time, kind="stable")))
    streamed.flush()

    assert len(whole.alerts) > 20
    assert {a.type for a in whole.alerts} >= {"long_stay", "tracker_mismatch", "device_offline"}
    assert _alerts(whole) == _alerts(streamed)
    assert whole.counts == streamed.counts


def test_a_second_batch_continues_the_vehicles_of_the_first(provinces):
    """Vehicles with state from an earlier batch run fix by fix: two halves equal one whole."""
    book = generate(SimConfig(loans=30, days=20, seed=8))
    devices, vehicles = fleet_of(book, {})
    positions = book.positions.take(np.argsort(book.positions.time, kind="stable"))
    half = int(np.searchsorted(positions.time, positions.time[len(positions) // 2], "right"))

    whole = Monitor(devices, vehicles, provinces=provinces)
    whole.replay(positions)
    whole.flush()
    parts = Monitor(devices, vehicles, provinces=provinces)
    parts.replay(positions.take(slice(0, half)))
    parts.replay(positions.take(slice(half, None)))
    parts.flush()

    assert _alerts(whole) == _alerts(parts)
    assert whole.counts == parts.counts


def test_repeated_fixes_are_dropped_and_counted_on_both_paths(provinces):
    alarms = ["", "", "", "", "power_cut"]  # B goes fix by fix, A column by column
    rows = PositionColumns.of(
        ["A", "A", "A", "B", "B"], [100, 100, 200, 100, 100], [30.0] * 5, [120.0] * 5, alarms=alarms
    )
    monitor = Monitor(provinces=provinces)
    monitor.replay(rows)
    assert monitor.counts["late"] == 2 and monitor.counts["fixes"] == 3
