"""A monitor checkpointed anywhere and restored into a fresh one (another process, after a
takeover) goes on exactly as if it had never stopped: the same alerts, field by field."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lienwatch.config import MonitorSettings
from lienwatch.monitor import DeviceSpec, Monitor, VehicleSpec
from lienwatch.monitor.checkpoint import CheckpointError, dump_state, load_state
from tests.monitor.conftest import batch
from tests.monitor.test_streaming import DEVICES, VEHICLES, WINDOW, _arrival, _result, tracks


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tracks(), st.randoms(use_true_random=False), st.integers(1, 30), st.floats(0, 1))
def test_a_restored_checkpoint_goes_on_as_if_never_stopped(provinces, rows, rnd, piece, cut):
    settings_ = MonitorSettings(reorder_window_s=WINDOW)
    arrival = _arrival(rows, rnd)
    end = max(r[1] for r in rows) + 3600
    pieces = [arrival[start : start + piece] for start in range(0, len(arrival), piece)]
    stop_at = int(cut * len(pieces))

    def feed(monitor: Monitor, parts) -> None:
        for part in parts:
            monitor.ingest(batch(part))
            monitor.advance(int(np.min([r[1] for r in part])))

    straight = Monitor(DEVICES, VEHICLES, settings=settings_, provinces=provinces)
    feed(straight, pieces)
    straight.flush(end)

    first = Monitor(DEVICES, VEHICLES, settings=settings_, provinces=provinces)
    feed(first, pieces[:stop_at])
    state = dump_state(first, {"mark": 41})
    restored = Monitor(settings=settings_, provinces=provinces)  # built as a worker builds it
    assert load_state(restored, state) == {"mark": 41}
    restored.update_fleet(DEVICES, VEHICLES)
    feed(restored, pieces[stop_at:])
    restored.flush(end)
    assert restored.counts == straight.counts
    assert _result(restored) == _result(straight)


def test_bytes_that_are_not_a_state_are_refused_by_name(provinces):
    monitor = Monitor(settings=MonitorSettings(), provinces=provinces)
    with pytest.raises(CheckpointError, match="checkpoint: not a monitor state"):
        load_state(monitor, b"not a checkpoint")


def test_a_checkpoint_of_an_older_layout_is_refused_naming_both_versions(provinces):
    """Version 1 kept the time beside the first fix outside; its detectors would not load."""
    import pickle
    import zlib

    from lienwatch.monitor.checkpoint import STATE_VERSION

    monitor = Monitor(DEVICES, VEHICLES, settings=MonitorSettings(), provinces=provinces)
    payload = pickle.loads(zlib.decompress(dump_state(monitor)))
    older = zlib.compress(pickle.dumps({**payload, "version": 1}))
    with pytest.raises(CheckpointError, match=f"state version 1, expected {STATE_VERSION}"):
        load_state(Monitor(settings=MonitorSettings(), provinces=provinces), older)


def test_a_vehicle_in_a_zone_is_found_in_the_zones_of_the_process_restoring_it(provinces):
    """The checkpoint was taken with zones [Z0, Z1] and the car in Z1; the restoring process
    has [Z1, Z2]: the car is in Z1, now index 0; in a zone taken out it would leave it."""
    from lienwatch.monitor import ZoneLibrary
    from tests.store.test_live_monitor import zones_geojson

    spot, elsewhere, third = (30.30, 120.20), (30.40, 120.30), (30.50, 120.40)
    library = {"Z0": elsewhere, "Z1": spot, "Z2": third}

    def zones(*names: str) -> ZoneLibrary:
        document = json.loads(zones_geojson(*(library[n] for n in names)))
        for feature, name in zip(document["features"], names, strict=True):
            feature["properties"]["zone_id"] = name
        return ZoneLibrary(document)

    wired = [DeviceSpec("W1", "V1", "wired", 3600)]
    first = Monitor(wired, [VehicleSpec("V1")], settings=MonitorSettings(reorder_window_s=0),
                    zones=zones("Z0", "Z1"), provinces=provinces)  # fmt: skip
    first.ingest(batch([("W1", 1_800_000_000, *spot)]))
    first.advance(1_800_000_000)
    state = dump_state(first)
    restored = Monitor(settings=MonitorSettings(reorder_window_s=0), provinces=provinces)
    load_state(restored, state)
    later = zones("Z1", "Z2")
    restored.use_references(later, None)
    [detector] = {id(s.monitor): s.monitor.zones for s in restored._slots.values()}.values()
    assert (detector.current, detector.zones) == (0, later.zones)
    restored.use_references(zones("Z2"), None)
    assert detector.current == -2  # its zone was taken out: it leaves it at its next fix
