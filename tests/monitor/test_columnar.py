"""The batch replay's columnar path gives the per-fix run's alerts on a simulated book.

Streaming (``ingest`` of the whole book, then ``flush``) runs every fix through the per-fix
state machines; ``replay`` runs vehicles column by column, those with a tracker alarm up to
their first alarm and fix by fix from there. Both must raise the same alerts, field by field,
and count the same."""

from __future__ import annotations

import numpy as np
import pytest

from lienwatch.demo.scoring import fleet_of
from lienwatch.domain.positions import PositionColumns
from lienwatch.monitor import DeviceSpec, Monitor, VehicleSpec, ZoneLibrary, columnar, engine
from lienwatch.monitor.model import Fix
from lienwatch.monitor.vehicle import VehicleMonitor
from lienwatch.sim import SimConfig, generate
from tests.monitor.conftest import HOME, HOUR, T0, batch


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


def test_runs_of_vehicles_give_the_alerts_of_one_run(provinces, monkeypatch):
    """The columnar path builds the columns and runs the passes over runs of whole vehicles
    of about ``engine._CHUNK`` fixes: small runs give the alerts of one run over the whole
    book, in the same order and every field, the same counts and the same state after."""
    book = generate(SimConfig(loans=80, days=40, seed=5))
    devices, vehicles = fleet_of(book, {})
    zones = ZoneLibrary(book.truth.risk_zones)
    later = book.positions.take(slice(len(book.positions) // 2, None))
    runs = []
    for size in (len(book.positions), 3_000):
        monkeypatch.setattr(engine, "_CHUNK", size)
        monitor = Monitor(devices, vehicles, provinces=provinces, zones=zones)
        monitor.replay(book.positions)
        monitor.replay(later)  # every fix again: dropped as late, the state read per vehicle
        monitor.flush()
        alerts = [a.as_json() | {"status_at": a.status_at} for a in monitor.alerts]
        runs.append((alerts, dict(monitor.counts)))
    assert len(book.positions) > 10 * 3_000
    assert len(runs[0][0]) > 20 and runs[0][1]["late"] == len(later)
    assert runs[1] == runs[0]


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


def _parked(w1_until_h: int) -> list[tuple]:
    """V1 drives from home to a spot 55 km away and parks: its wired tracker reports every
    30 min (drifting 150 m a step at first, so a stay begins next to the one before and the
    clock carries on) until ``w1_until_h`` after arrival, its wireless one once after
    arrival; an invalid fix 80 h after arrival, a valid one, then home. V2 (no declared home)
    parks 100 h reporting every 6 h, then leaves."""
    arrive = T0 + 2 * HOUR
    away = (HOME[0] + 0.5, HOME[1])
    rows = [("W1", T0, *HOME), ("W1", T0 + HOUR, HOME[0] + 0.25, HOME[1])]
    for k in range(2 * w1_until_h + 1):
        drift = min(k, 2) * 0.00135  # 150 m a step for an hour (a stay next to the first)
        rows.append(("W1", arrive + k * 1800, away[0] + drift, away[1]))
    rows += [("S1", T0 + HOUR // 2, *HOME), ("S1", arrive + HOUR, away[0] + 0.0027, away[1])]
    rows += [("W1", arrive + 80 * HOUR, 0.0, 0.0, "", False),
             ("W1", arrive + 81 * HOUR, away[0] + 0.0081, away[1]),
             ("W1", arrive + 85 * HOUR, *HOME)]  # fmt: skip
    rows += [("W2", T0 + k * 6 * HOUR, 31.0, 121.0) for k in range(18)]
    rows += [("W2", T0 + 110 * HOUR, 32.0, 121.0)]
    return rows


@pytest.mark.parametrize("w1_until_h", [10, 60])
def test_a_long_stay_clock_falls_due_on_the_columnar_path(provinces, monkeypatch, w1_until_h):
    """The clock carried over stays that begin next to the one before, due while the trackers
    are silent (fired at the next fix, an invalid one, after the silences due before it or
    before those due after it), or at a fix of a stay still reported; resolved when the car
    leaves. No fix goes through the per-fix path, and the alerts are streaming's."""
    rows = _parked(w1_until_h)
    whole, per_fix, streamed = _three_ways(rows, provinces, monkeypatch, _no_per_fix)

    long = [a for a in whole.alerts if a.type == "long_stay"]
    assert {a.vehicle_id for a in long} == {"V1", "V2"}
    assert all(a.status == "resolved" for a in long)
    assert [a.id for a in whole.alerts] == [a.id for a in per_fix.alerts]  # opened in order
    assert _alerts(whole) == _alerts(per_fix) == _alerts(streamed)
    assert whole.counts == streamed.counts


TWO_VEHICLES = (
    [DeviceSpec("W1", "V1", "wired", 1800), DeviceSpec("S1", "V1", "wireless", 3600),
     DeviceSpec("W2", "V2", "wired", 1800)],
    [VehicleSpec("V1", home=HOME), VehicleSpec("V2")],
)  # fmt: skip


def _three_ways(rows, provinces, monkeypatch, on_fix):
    """``rows`` of :data:`TWO_VEHICLES` replayed (``VehicleMonitor.on_fix`` replaced by
    ``on_fix``), replayed with every vehicle fix by fix, and streamed; each flushed an hour
    after the last fix."""
    devices, vehicles = TWO_VEHICLES
    end = max(r[1] for r in rows) + HOUR
    whole = Monitor(devices, vehicles, provinces=provinces)
    with monkeypatch.context() as patched:
        patched.setattr(VehicleMonitor, "on_fix", on_fix)
        whole.replay(batch(rows))
    whole.flush(end)
    per_fix = Monitor(devices, vehicles, provinces=provinces)
    with monkeypatch.context() as patched:  # every vehicle fix by fix
        patched.setattr(engine, "_columnar_vehicles", _none_columnar)
        per_fix.replay(batch(rows))
    per_fix.flush(end)
    streamed = Monitor(devices, vehicles, provinces=provinces)
    streamed.ingest(batch(sorted(rows, key=lambda r: r[1])))
    streamed.flush(end)
    return whole, per_fix, streamed


def _none_columnar(slots):
    return np.zeros(len(slots), dtype=bool)


def _no_per_fix(*_args):
    raise AssertionError("a fix went through the per-fix path")


def test_an_alarm_vehicle_goes_column_by_column_up_to_its_first_alarm(provinces, monkeypatch):
    """V1 parks 50 km from home (a long stay) with both trackers reporting, then its wired
    tracker sends a power cut and falls silent (``device_removed`` from the silence), an
    antenna cut follows on the wireless one; V2 has no alarm. Only V1's fixes from its power
    cut on go through the per-fix path, and the alerts are the per-fix run's in order and
    every field, and streaming's."""
    away = (HOME[0] + 0.45, HOME[1])
    rows = [("W1", T0 + k * 1800, *away) for k in range(80)]
    rows += [("S1", T0 + k * 3600 + 60, *away) for k in range(60)]
    cut = T0 + 80 * 1800
    rows += [("W1", cut, *away, "power_cut"), ("S1", cut + 20 * HOUR, *away, "gnss_antenna_cut")]
    rows += [("S1", cut + k * 3600 + 120, *away) for k in range(21, 40)]
    rows += [("W2", T0 + k * 1800, 31.0, 121.0) for k in range(120)]
    seen: list[Fix] = []
    on_fix = VehicleMonitor.on_fix

    def recorded(monitor, fix):
        seen.append(fix)
        on_fix(monitor, fix)

    whole, per_fix, streamed = _three_ways(rows, provinces, monkeypatch, recorded)

    assert seen and min(f.time for f in seen) == cut
    assert {f.device_id for f in seen} == {"W1", "S1"}
    assert len(seen) == sum(1 for r in rows if r[0] != "W2" and r[1] >= cut)
    types = {a.type for a in whole.alerts}
    assert {"long_stay", "power_cut", "gnss_antenna_cut", "device_removed"} <= types
    assert [a.id for a in whole.alerts] == [a.id for a in per_fix.alerts]  # opened in order
    assert _alerts(whole) == _alerts(per_fix) == _alerts(streamed)
    assert whole.counts == per_fix.counts == streamed.counts


def test_the_batch_sort_is_the_lexsort_grouped_or_not():
    """``sort_order`` takes a shortcut for a batch grouped by device; it must still give the
    (vehicle, time, device) order with ties in input order, as ``np.lexsort`` does."""
    rng = np.random.default_rng(3)
    device = np.sort(rng.integers(0, 40, 3_000))  # grouped, in device order
    time = rng.integers(0, 50, 3_000)  # many equal times across and within devices
    vehicle = device // 3  # up to three trackers a vehicle
    for d, t in ((device, time), (rng.permutation(device), time)):  # grouped, then not
        assert (columnar.sort_order(d // 3, t, d) == np.lexsort((d, t, d // 3))).all()
    assert not (columnar.sort_order(vehicle, time, device) == np.arange(3_000)).all()
