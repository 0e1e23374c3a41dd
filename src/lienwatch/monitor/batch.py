"""Batch runs: the monitor over a complete set of fixes, vehicles partitioned over processes.

Vehicles are split by a stable hash of their id, as the scaled deployment partitions the
position bus; each process runs the same :class:`~lienwatch.monitor.engine.Monitor` over its
vehicles, and ``cluster`` (the one cross-vehicle detector) runs afterwards over the long stays
they all report.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from lienwatch.config import MonitorSettings
from lienwatch.domain.positions import PositionColumns
from lienwatch.domain.provinces import ProvinceIndex
from lienwatch.monitor.detectors.base import StayRecord
from lienwatch.monitor.engine import Monitor, factorize, raise_clusters
from lienwatch.monitor.lifecycle import AlertBook
from lienwatch.monitor.model import Alert, DeviceSpec, VehicleSpec
from lienwatch.monitor.regions import RegionLibrary
from lienwatch.monitor.zones import ZoneLibrary


@dataclass(frozen=True, slots=True)
class MonitorResult:
    alerts: list[Alert]  # ordered by (raised_at, vehicle, type)
    counts: dict[str, int]  # fixes, invalid, late, unknown_devices


@dataclass(frozen=True, slots=True)
class _Job:
    batch: PositionColumns
    devices: Sequence[DeviceSpec]
    vehicles: Sequence[VehicleSpec]
    settings: MonitorSettings
    zones: ZoneLibrary | None
    regions: RegionLibrary | None
    provinces: ProvinceIndex
    until: int | None


_JOB: _Job | None = None  # inherited by forked workers instead of being pickled


def run_monitor(
    batch: PositionColumns,
    devices: Sequence[DeviceSpec],
    vehicles: Sequence[VehicleSpec],
    *,
    provinces: ProvinceIndex,
    zones: ZoneLibrary | None = None,
    regions: RegionLibrary | None = None,
    settings: MonitorSettings | None = None,
    until: int | None = None,
) -> MonitorResult:
    """Run every detector over ``batch`` and return the alerts, as of ``until`` (default: the
    newest fix). Uses ``settings.workers`` processes where the platform can fork."""
    global _JOB
    settings = settings or MonitorSettings()
    workers = settings.workers if "fork" in multiprocessing.get_all_start_methods() else 1
    _JOB = _Job(batch, devices, vehicles, settings, zones, regions, provinces, until)
    try:
        if workers == 1:
            parts = [_run_part((0, 1))]
        else:
            with _frozen(), multiprocessing.get_context("fork").Pool(workers) as pool:
                parts = pool.map(_run_part, [(i, workers) for i in range(workers)])
    finally:
        _JOB = None
    book = AlertBook(provinces.provinces)
    book.rule_set = settings.rule_set
    specs = {v.vehicle_id: v for v in vehicles}
    stays = [stay for _, stays, _ in parts for stay in stays]
    raise_clusters(book, stays, settings, lambda v: specs.get(v) or VehicleSpec(v))
    alerts = [alert for part_alerts, _, _ in parts for alert in part_alerts] + book.alerts
    counts: Counter[str] = Counter()
    for _, _, part_counts in parts:
        counts.update(part_counts)
    alerts.sort(key=lambda a: (a.raised_at, a.vehicle_id, a.type))
    return MonitorResult(alerts, dict(counts))


@contextlib.contextmanager
def _frozen() -> Iterator[None]:
    """The parent's objects out of the garbage collector's reach while workers fork from it.

    A collection in a forked worker writes to the header of every object it walks, which
    copies the page of each of the parent's objects into the worker (about 0.15 CPU-s of
    page faults per worker on the demo's book); frozen, they are not walked. A process that
    froze its own objects keeps them frozen."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def partition_of(vehicle_id: str, partitions: int) -> int:
    """The partition of a vehicle: stable across processes and runs."""
    return zlib.crc32(vehicle_id.encode("utf-8")) % partitions


def _run_part(part: tuple[int, int]) -> tuple[list[Alert], list[StayRecord], dict[str, int]]:
    index, partitions = part
    job = _JOB
    assert job is not None
    vehicle_of = {d.device_id: d.vehicle_id for d in job.devices}
    unique, inverse = factorize(job.batch.device_id)
    mine = np.array([partition_of(vehicle_of.get(d, d), partitions) == index for d in unique])
    monitor = Monitor(
        [d for d in job.devices if partition_of(d.vehicle_id, partitions) == index],
        [v for v in job.vehicles if partition_of(v.vehicle_id, partitions) == index],
        settings=job.settings.model_copy(update={"workers": 1}),
        zones=job.zones,
        regions=job.regions,
        provinces=job.provinces,
    )
    monitor.replay(job.batch.take(np.flatnonzero(mine[inverse])))
    newest = int(job.batch.time.max()) if len(job.batch) else 0
    monitor.flush(job.until if job.until is not None else newest, clusters=False)
    return monitor.alerts, monitor.long_stays(), dict(monitor.counts)
