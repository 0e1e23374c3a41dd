"""The collateral monitor: fixes per second, against a plain per-fix baseline in the same run.

On a simulated portfolio (every detector on, risk zones loaded) it times:

- the batch monitor in one process (``Monitor.replay`` + ``flush``: the columnar path), and
  the baseline: the same fixes walked once in (vehicle, time) order keeping only each
  device's last fix in a dict — the least any per-fix state machine does. The ratio is the
  price of the detectors;
- the streaming monitor in one process (``Monitor.ingest`` of the fixes in time order, 10,000
  a call, ``advance`` after each, then ``flush``): every fix through the per-fix state
  machines, as ``lienwatch serve`` runs them;
- the batch run over ``--workers`` processes (``run_monitor``), as the demo uses it;
- the province lookup of every fix (``ProvinceIndex.lookup``), in points per second;
- the whole monitor over ``--total`` fixes (default 10,000,000): books of ``--loans`` loans
  are simulated one after another (seeds 7, 8, …) and each is run through ``run_monitor``
  and dropped before the next, so memory stays that of one book. Only the monitor is timed.

    python bench/monitor.py [--loans 2000] [--days 120] [--workers 2] [--total 10000000]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from lienwatch.config import MonitorSettings
from lienwatch.data import china_provinces
from lienwatch.demo.scoring import fleet_of
from lienwatch.domain.positions import PositionColumns
from lienwatch.domain.provinces import ProvinceIndex
from lienwatch.monitor import Monitor, ZoneLibrary
from lienwatch.monitor.batch import run_monitor
from lienwatch.sim import SimConfig, generate


def baseline(batch: PositionColumns, vehicle_of: dict[str, str]) -> float:
    started = time.perf_counter()
    vehicles = np.array([vehicle_of[d] for d in batch.device_id.tolist()])
    order = np.lexsort((batch.time, vehicles))
    last: dict[str, tuple] = {}
    rows = zip(
        batch.device_id[order].tolist(),
        batch.time[order].tolist(),
        batch.lat[order].tolist(),
        batch.lon[order].tolist(),
        strict=True,
    )
    for fix in rows:
        last[fix[0]] = fix
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=2000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--total", type=int, default=10_000_000)
    args = parser.parse_args()
    portfolio = generate(SimConfig(loans=args.loans, days=args.days, seed=7))
    devices, vehicles = fleet_of(portfolio, {})
    batch = batch_of(portfolio)
    provinces = ProvinceIndex(china_provinces())
    zones = ZoneLibrary(portfolio.truth.risk_zones)
    n = len(batch)
    print(f"{n:,} fixes, {len(vehicles):,} vehicles, {len(zones):,} risk zones")

    started = time.perf_counter()
    monitor = Monitor(devices, vehicles, provinces=provinces, zones=zones)
    monitor.replay(batch)
    monitor.flush()
    one = time.perf_counter() - started
    plain = baseline(batch, {d.device_id: d.vehicle_id for d in devices})
    print(f"batch monitor, 1 process (replay + flush): {n / one:,.0f} fixes/s ({one:.1f} s, "
          f"{len(monitor.alerts):,} alerts)")  # fmt: skip
    print(f"baseline (last fix per device): {n / plain:,.0f} fixes/s ({plain:.1f} s)")
    print(f"ratio monitor/baseline time: {one / plain:.1f}x")
    del monitor
    streamed, alerts = streaming(batch, devices, vehicles, provinces, zones)
    print(f"streaming monitor, 1 process (ingest in time order, {_CHUNK:,} fixes a call, "
          f"advance, flush): {n / streamed:,.0f} fixes/s ({streamed:.1f} s, {alerts:,} alerts); "
          f"ratio to baseline time {streamed / plain:.1f}x")  # fmt: skip

    started = time.perf_counter()
    result = run_monitor(
        batch,
        devices,
        vehicles,
        provinces=provinces,
        zones=zones,
        settings=MonitorSettings(workers=args.workers),
    )
    many = time.perf_counter() - started
    print(
        f"batch run, {args.workers} processes: {n / many:,.0f} fixes/s ({many:.1f} s, "
        f"{len(result.alerts):,} alerts); speed-up {one / many:.2f}x"
    )

    rng = np.random.default_rng(1)
    pick = rng.integers(0, n, 1_000_000)
    started = time.perf_counter()
    provinces.lookup(batch.lat[pick], batch.lon[pick])
    geo = time.perf_counter() - started
    print(f"province lookup: {1_000_000 / geo:,.0f} points/s")
    del portfolio, batch, result
    whole_monitor(args, provinces)


_CHUNK = 10_000


def streaming(batch, devices, vehicles, provinces, zones) -> tuple[float, int]:
    """The streaming path as the live monitor drives it: fixes in time order, a chunk per
    ``ingest`` and a clock tick after each; the seconds and the alerts raised."""
    ordered = batch.take(np.argsort(batch.time, kind="stable"))
    started = time.perf_counter()
    monitor = Monitor(devices, vehicles, provinces=provinces, zones=zones)
    for start in range(0, len(ordered), _CHUNK):
        part = ordered.take(slice(start, start + _CHUNK))
        monitor.ingest(part)
        monitor.advance(int(part.time[-1]))
    monitor.flush()
    return time.perf_counter() - started, len(monitor.alerts)


def batch_of(portfolio) -> PositionColumns:
    p = portfolio.positions
    return p


def whole_monitor(args: argparse.Namespace, provinces: ProvinceIndex) -> None:
    """Every detector over ``args.total`` fixes, one simulated book at a time."""
    fixes, spent, alerts, seed = 0, 0.0, 0, 7
    settings = MonitorSettings(workers=args.workers)
    while fixes < args.total:
        portfolio = generate(SimConfig(loans=args.loans, days=args.days, seed=seed))
        devices, vehicles = fleet_of(portfolio, {})
        batch = batch_of(portfolio)
        batch = batch.take(np.arange(min(len(batch), args.total - fixes)))
        zones = ZoneLibrary(portfolio.truth.risk_zones)
        del portfolio
        started = time.perf_counter()
        result = run_monitor(
            batch, devices, vehicles, provinces=provinces, zones=zones, settings=settings
        )
        spent += time.perf_counter() - started
        fixes, alerts, seed = fixes + len(batch), alerts + len(result.alerts), seed + 1
        del batch, result
    peak_mib = (
        max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        )
        / 1024
    )
    print(
        f"whole monitor, {args.workers} processes: {fixes:,} fixes in {seed - 7} books, "
        f"{fixes / spent:,.0f} fixes/s ({spent:.1f} s, {alerts:,} alerts), "
        f"peak memory of one process {peak_mib:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
