"""``run_monitor``: vehicles split over forked workers give the one-process run's alerts."""

from __future__ import annotations

import gc

from lienwatch.config import MonitorSettings
from lienwatch.demo.scoring import fleet_of
from lienwatch.monitor import ZoneLibrary
from lienwatch.monitor.batch import run_monitor
from lienwatch.sim import SimConfig, generate


def _fields(result) -> list[dict]:
    return [a.as_json() | {"status_at": a.status_at} for a in result.alerts]


def test_two_workers_give_the_alerts_of_one_process(provinces):
    book = generate(SimConfig(loans=40, days=30, seed=3))
    devices, vehicles = fleet_of(book, {})
    zones = ZoneLibrary(book.truth.risk_zones)
    results = [
        run_monitor(book.positions, devices, vehicles, provinces=provinces, zones=zones,
                    settings=MonitorSettings(workers=workers))
        for workers in (1, 2)
    ]  # fmt: skip
    assert len(results[0].alerts) > 10
    assert _fields(results[1]) == _fields(results[0])
    assert results[1].counts == results[0].counts
    assert gc.get_freeze_count() == 0  # the objects frozen for the fork are collectable again


def test_a_process_that_froze_its_objects_keeps_them_frozen(provinces):
    book = generate(SimConfig(loans=10, days=14, seed=3))
    devices, vehicles = fleet_of(book, {})
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        run_monitor(book.positions, devices, vehicles, provinces=provinces,
                    settings=MonitorSettings(workers=2))  # fmt: skip
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
