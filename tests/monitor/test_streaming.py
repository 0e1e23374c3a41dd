"""Streaming (any order within the reorder window, fed in pieces, clock ticks) equals batch.

Equal means the same alerts, field by field (id, start, ``raised_at``, evidence, repeats,
status and end). Alarm alerts are raised as their alarm arrives, not after the window; with
each vehicle's alarms arriving in the order they happened (a tracker sends an alarm as it
happens), they are still the batch's alerts, known earlier. An older alarm arriving after a
newer one of the same vehicle and type raised the alert is the one case that differs (see
the last test and "Alarms are events" in docs/monitor.md).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lienwatch.config import MonitorSettings
from lienwatch.demo.scoring import fleet_of
from lienwatch.monitor import AlertType, DeviceSpec, Monitor, VehicleSpec, ZoneLibrary, engine
from lienwatch.sim import SimConfig, generate
from tests.monitor.conftest import HOME, T0, batch

WINDOW = 600
DEVICES = [DeviceSpec("W1", "V1", "wired", 1800), DeviceSpec("S1", "V1", "wireless", 3600)]
DEVICES += [DeviceSpec("W2", "V2", "wired", 1800)]
VEHICLES = [VehicleSpec("V1", home=HOME, region="33"), VehicleSpec("V2")]
VEHICLE_OF = {d.device_id: d.vehicle_id for d in DEVICES}


@st.composite
def tracks(draw, alarms=True):
    """Random walks with stays, jumps, gaps, alarms (unless not ``alarms``) and invalid fixes
    for three devices."""
    rows = []
    for device in ("W1", "S1", "W2"):
        t, lat, lon = T0, HOME[0], HOME[1]
        for _ in range(draw(st.integers(1, 60))):
            t += draw(st.sampled_from([60, 300, 1800, 7200, 30 * 3600, 100 * 3600]))
            step = draw(st.sampled_from([0.0, 0.0005, 0.02, 0.5, 3.0]))
            lat += draw(st.sampled_from([-1, 1])) * step
            lon += draw(st.sampled_from([-1, 1])) * step
            alarm = draw(st.sampled_from(["", "", "", "", "", "power_cut", "gnss_antenna_cut",
                                          "tamper", "power_cut;removal"])) if alarms else ""
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
    _check_streaming_equals_batch(provinces, rows, rnd, piece)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tracks(alarms=False), st.randoms(use_true_random=False), st.integers(1, 50))
def test_streaming_equals_the_columnar_batch(provinces, rows, rnd, piece):
    """Without tracker alarms every vehicle takes the batch's columnar path."""
    _check_streaming_equals_batch(provinces, rows, rnd, piece)


def _check_streaming_equals_batch(provinces, rows, rnd, piece):
    settings_ = MonitorSettings(reorder_window_s=WINDOW)
    whole = Monitor(DEVICES, VEHICLES, settings=settings_, provinces=provinces)
    whole.replay(batch(rows))
    end = max(r[1] for r in rows) + 3600
    whole.flush(end)

    arrival = _arrival(rows, rnd)
    streamed = Monitor(DEVICES, VEHICLES, settings=settings_, provinces=provinces)
    for start in range(0, len(arrival), piece):
        part = arrival[start : start + piece]
        streamed.ingest(batch(part))
        for device, _, _, _, alarms, _ in part:  # raised on arrival, before any clock tick
            for name in set(alarms.split(";")) & {"power_cut", "gnss_antenna_cut"}:
                assert streamed.book.open_alert(VEHICLE_OF[device], AlertType(name))
        streamed.advance(int(np.min([r[1] for r in part])))
    streamed.flush(end)
    assert streamed.counts["late"] == whole.counts["late"]
    assert _result(streamed) == _result(whole)


def _arrival(rows, rnd):
    """Time order disturbed by less than the window (jitter < WINDOW / 2 each), each
    vehicle's alarm fixes taking their places among the arrivals in the order they happened."""
    arrival = sorted(rows, key=lambda r: r[1] + rnd.uniform(0, WINDOW / 2 - 1))
    for vehicle in set(VEHICLE_OF.values()):
        places = [i for i, r in enumerate(arrival) if r[4] and VEHICLE_OF[r[0]] == vehicle]
        in_time = sorted((arrival[i] for i in places), key=lambda r: (r[1], r[0]))
        for place, row in zip(places, in_time, strict=True):
            arrival[place] = row
    return arrival


def test_an_alarm_is_an_alert_on_arrival_however_long_the_window(provinces):
    settings_ = MonitorSettings(reorder_window_s=86_400)
    monitor = Monitor(DEVICES, VEHICLES, settings=settings_, provinces=provinces)
    monitor.ingest(batch([("W1", T0, *HOME), ("W1", T0 + 60, 0.0, 0.0, "power_cut", False)]))
    cut = monitor.book.open_alert("V1", AlertType.POWER_CUT)
    assert cut is not None and monitor.counts["fixes"] == 0  # nothing released yet
    assert (cut.start, cut.raised_at, cut.evidence["alarm"]) == (T0 + 60, T0 + 60, "power_cut")
    assert (cut.lat, cut.lon) == HOME  # an alarm without a fix: where the car was last seen
    monitor.flush()
    assert [a.id for a in monitor.alerts] == [cut.id] and cut.repeats == 0


def test_an_alarm_repeating_a_fix_already_held_raises_nothing_as_in_batch(provinces):
    rows = [("W1", T0, *HOME), ("W1", T0, *HOME, "power_cut")]  # the second is dropped
    streamed = Monitor(DEVICES, VEHICLES, settings=MonitorSettings(), provinces=provinces)
    streamed.ingest(batch(rows))
    assert streamed.alerts == []
    streamed.flush()
    whole = Monitor(DEVICES, VEHICLES, provinces=provinces)
    whole.replay(batch(rows))
    whole.flush()
    assert streamed.counts["late"] == whole.counts["late"] == 1
    assert _result(streamed) == _result(whole)


def test_an_older_alarm_arriving_after_a_newer_one_joins_the_alert_already_raised(provinces):
    """The documented difference: the alert raised on arrival stands (batch: the older one)."""
    rows = [("W1", T0 + 60, *HOME, "power_cut"), ("S1", T0, *HOME, "power_cut")]
    streamed = Monitor(DEVICES, VEHICLES, settings=MonitorSettings(), provinces=provinces)
    streamed.ingest(batch(rows))
    streamed.flush()
    whole = Monitor(DEVICES, VEHICLES, provinces=provinces)
    whole.replay(batch(rows))
    whole.flush()
    (early,), (ordered,) = streamed.alerts, whole.alerts
    assert (early.start, ordered.start) == (T0 + 60, T0)


def test_a_fix_later_than_the_window_is_dropped_and_counted(provinces):
    monitor = Monitor(DEVICES, VEHICLES, provinces=provinces)
    monitor.ingest(batch([("W1", T0 + 5000, *HOME), ("W1", T0 + 9000, *HOME)]))
    monitor.ingest(batch([("W1", T0 + 100, *HOME), ("W1", T0 + 9000, *HOME)]))
    monitor.flush()
    assert monitor.counts["late"] == 2 and monitor.counts["fixes"] == 2


def _stream(positions, chunk, **fleet):
    """``positions`` in time order, ``chunk`` fixes an ``ingest`` and ``advance`` after each;
    the monitor and the states its vehicles were in after each chunk (state -> count)."""
    monitor = Monitor(**fleet)
    states: Counter[str] = Counter()
    for start in range(0, len(positions), chunk):
        part = positions.take(slice(start, start + chunk))
        monitor.ingest(part)
        monitor.advance(int(part.time[-1]))
        for slot in monitor._unique_slots():
            m = slot.monitor
            states["mid-stay"] += m.stays.last is not None and m.stays.last is not m.stays.anchor
            states["mid-night"] += m.nights.pending is not None
            states["offline clock running"] += bool(m.liveness.deadline)
            states["offline"] += bool(m.liveness.offline)
            states["pair pending"] += bool(m.pair is not None and m.pair.pending)
            states["area being learnt"] += bool(m.area.days) and not m.area.area
            states["far outside the area"] += m.area.first_out is not None
            states["outside the region"] += m.region.first_out is not None
            states["jumps from an earlier fix"] += bool(m.jumps.last)
    monitor.flush()
    return monitor, states


def test_chunks_that_start_from_existing_state_equal_the_batch(provinces, monkeypatch):
    """A simulated book streamed in small chunks: each ``ingest`` and ``advance`` continues
    its vehicles from the state the chunks before left — mid-stay, mid-night, an offline clock
    running or fallen due, a tracker's fixes waiting for the other's, an activity area being
    learnt, far outside the area or the region (each checked to occur at some cut). The
    alerts are the batch replay's (columnar) and the per-fix replay's, every field."""
    book = generate(SimConfig(loans=40, days=30, seed=9))
    devices, vehicles = fleet_of(book, {})
    zones = ZoneLibrary(book.truth.risk_zones)
    positions = book.positions.take(np.argsort(book.positions.time, kind="stable"))
    fleet = {"devices": devices, "vehicles": vehicles, "provinces": provinces, "zones": zones}

    streamed, states = _stream(positions, 700, **fleet)
    whole = Monitor(**fleet)
    whole.replay(positions)
    whole.flush()
    per_fix = Monitor(**fleet)
    with monkeypatch.context() as patched:  # every vehicle fix by fix
        patched.setattr(engine, "_columnar_vehicles", lambda slots: np.zeros(len(slots), bool))
        per_fix.replay(positions)
    per_fix.flush()

    assert len(states) == 9 and all(states.values())  # every state seen at some cut
    assert len(streamed.alerts) > 20
    assert _result(streamed) == _result(whole) == _result(per_fix)
    assert streamed.counts == whole.counts == per_fix.counts


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tracks(), st.randoms(use_true_random=False), st.integers(2, 80),
       st.sampled_from([0, WINDOW]))  # fmt: skip
def test_a_batch_is_taken_as_its_fixes_one_by_one(provinces, rows, rnd, piece, window):
    """``ingest`` plans a batch vehicle by vehicle; the result is what one call per fix gives:
    the same alerts in the same order (the order fixes are released across vehicles), the same
    counts and the same fixes held. The arrivals mix time order (planned) with late fixes,
    repeats, alarms and fixes out of order (walked), and one vehicle an unknown tracker."""
    arrival = _arrival(rows, rnd)
    for _ in range(len(arrival) // 10):  # repeats and stragglers
        row = rnd.choice(arrival)
        late = (row[0], row[1] - rnd.choice([0, 0, WINDOW // 2, 3 * WINDOW]), *row[2:])
        arrival.insert(rnd.randrange(len(arrival) + 1), late)
    arrival += [("X9", row[1], *row[2:]) for row in arrival[::7]]
    settings_ = MonitorSettings(reorder_window_s=window)
    one_by_one = Monitor(DEVICES, VEHICLES, settings=settings_, provinces=provinces)
    batched = Monitor(DEVICES, VEHICLES, settings=settings_, provinces=provinces)
    for start in range(0, len(arrival), piece):
        part = arrival[start : start + piece]
        for row in part:
            one_by_one.ingest(batch([row]))
        batched.ingest(batch(part))
        assert _state(batched) == _state(one_by_one)
        now = part[-1][1] - rnd.choice([0, WINDOW])
        for monitor in (one_by_one, batched):
            monitor.advance(now)
    for monitor in (one_by_one, batched):
        monitor.flush()
    assert [a.as_json() | {"status_at": a.status_at} for a in batched.alerts] == [
        a.as_json() | {"status_at": a.status_at} for a in one_by_one.alerts
    ]
    assert batched.counts == one_by_one.counts


def _state(monitor):
    """Each vehicle's engine state: last release, newest time, the fixes it holds in order;
    and the counts."""
    return [
        (s.released, s.newest, [fix for *_, fix in sorted(s.held)])
        for s in monitor._unique_slots()
    ], dict(monitor.counts)


def test_advance_takes_the_vehicles_in_the_order_they_were_first_seen(provinces):
    """``advance`` raises the silences due in the order the vehicles were first seen, not the
    order of their deadlines (the alerts' order); a vehicle that left the fleet raises nothing
    more, and new rules move the deadlines of those left."""
    monitor = Monitor(DEVICES, VEHICLES, provinces=provinces)
    monitor.ingest(batch([("W1", T0 + 600, *HOME), ("W2", T0, *HOME), ("S1", T0 + 600, *HOME)]))
    monitor.advance(T0 + 30 * 86_400)
    offline = [a.vehicle_id for a in monitor.alerts if a.type == AlertType.DEVICE_OFFLINE]
    assert offline == ["V1", "V2"]

    fleet = Monitor(DEVICES, VEHICLES, provinces=provinces)
    fleet.ingest(batch([("W1", T0, *HOME), ("S1", T0, *HOME), ("W2", T0, *HOME)]))
    fleet.update_fleet(DEVICES[:2], VEHICLES[:1])  # V2 leaves
    fleet.advance(T0 + 2 * 3600)
    fleet.use_rules(MonitorSettings(thresholds={"offline_wired_h": 1, "offline_wireless_h": 1}))
    fleet.advance(T0 + 3 * 3600)
    assert {a.vehicle_id for a in fleet.alerts} == {"V1"}
