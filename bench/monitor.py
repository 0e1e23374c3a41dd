"""The collateral monitor: fixes per second, against a plain per-fix baseline in the same run.

On a simulated portfolio (every detector on, risk zones loaded) it times:

- the batch monitor in one process (``Monitor.replay`` + ``flush``: the columnar path), and
  the baseline: the same fixes walked once in (vehicle, time) order keeping only each
  device's last fix in a dict — the least any per-fix state machine does. The ratio is the
  price of the detectors;
- the batch run over ``--workers`` processes (``run_monitor``), as the demo uses it, with
  the CPU seconds of the parent and of the workers together;
- the streaming monitor in one process (``Monitor.ingest`` of the fixes in time order, 10,000
  a call, ``advance`` after each, then ``flush``): every fix through the per-fix state
  machines, as ``lienwatch serve`` runs them;
- the province lookup of every fix (``ProvinceIndex.lookup``), in points per second;
- the whole monitor over ``--total`` fixes (default 10,000,000): books of ``--loans`` loans
  are simulated one after another (seeds 7, 8, …) and each is run through ``run_monitor``
  and dropped before the next, so memory stays that of one book. Only the monitor is timed.

With ``--per-fix`` the batch monitor also runs with every vehicle forced onto the per-fix
path, in the same process: CPU seconds of both paths, their ratio, and whether the alerts are
identical in order and every field. ``--streaming-parts`` splits the streaming run's cost per
fix into the per-fix state machines alone (``VehicleMonitor.on_fix`` over ready ``Fix``
tuples: each call's fixes by vehicle as streaming feeds them, in time order, and in
(vehicle, time) order as the per-fix batch path does), the engine alone (the streaming run
with the state machines left out: enrichment, ``Fix`` tuples, holding and releasing), and
what the two cost together beyond their sum (a vehicle's state gone cold between its fixes).
``--only-batch`` stops after the batch lines (no streaming, two-process or 10 M-fix runs).
CPU seconds (user + system of this process) are printed beside wall seconds, and the load
average at the start and the end: on a shared machine the CPU figure and the ratios are the
ones to read. The garbage collector runs with the thresholds of every lienwatch process
(``lienwatch.cli.tune_collector``).

    python bench/monitor.py [--loans 2000] [--days 120] [--workers 2] [--total 10000000]
                            [--per-fix] [--streaming-parts] [--only-batch]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np

from lienwatch.cli import tune_collector
from lienwatch.config import MonitorSettings
from lienwatch.data import china_provinces
from lienwatch.demo.scoring import fleet_of
from lienwatch.domain.positions import PositionColumns
from lienwatch.domain.provinces import ProvinceIndex
from lienwatch.monitor import Monitor, ZoneLibrary, engine
from lienwatch.monitor.batch import run_monitor
from lienwatch.monitor.vehicle import VehicleMonitor
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
    parser.add_argument("--per-fix", action="store_true")
    parser.add_argument("--streaming-parts", action="store_true")
    parser.add_argument("--only-batch", action="store_true")
    args = parser.parse_args()
    tune_collector()  # as in every lienwatch process: `serve` streams under it, `demo` batches
    print(f"{os.cpu_count()} CPUs, load average {_load()}")
    portfolio = generate(SimConfig(loans=args.loans, days=args.days, seed=7))
    devices, vehicles = fleet_of(portfolio, {})
    batch = batch_of(portfolio)
    provinces = ProvinceIndex(china_provinces())
    zones = ZoneLibrary(portfolio.truth.risk_zones)
    n = len(batch)
    print(f"{n:,} fixes, {len(vehicles):,} vehicles, {len(zones):,} risk zones")

    started, cpu = time.perf_counter(), time.process_time()
    monitor = Monitor(devices, vehicles, provinces=provinces, zones=zones)
    monitor.replay(batch)
    monitor.flush()
    one, one_cpu = time.perf_counter() - started, time.process_time() - cpu
    plain = baseline(batch, {d.device_id: d.vehicle_id for d in devices})
    print(f"batch monitor, 1 process (replay + flush): {n / one:,.0f} fixes/s ({one:.1f} s, "
          f"{len(monitor.alerts):,} alerts); {n / one_cpu:,.0f} fixes per CPU-second "
          f"({one_cpu:.1f} CPU-s)")  # fmt: skip
    print(f"baseline (last fix per device): {n / plain:,.0f} fixes/s ({plain:.1f} s)")
    print(f"ratio monitor/baseline time: {one / plain:.1f}x")
    if args.per_fix:
        per_fix(batch, devices, vehicles, provinces, zones, monitor, one_cpu)
    del monitor
    if args.only_batch:
        print(f"load average at the end {_load()}")
        return
    # Before the streaming run, as run_monitor's callers fork: from a process that just
    # streamed 5 M fixes the workers took 8.6 CPU-s instead of 6.4 (942,095 fixes/s, not
    # 1.38 M; a forked worker copies each page of the parent's leftover heap it writes to).
    started, cpu, workers_cpu = time.perf_counter(), time.process_time(), _children_cpu()
    result = run_monitor(
        batch,
        devices,
        vehicles,
        provinces=provinces,
        zones=zones,
        settings=MonitorSettings(workers=args.workers),
    )
    many = time.perf_counter() - started
    cpu, workers_cpu = time.process_time() - cpu, _children_cpu() - workers_cpu
    print(
        f"batch run, {args.workers} processes: {n / many:,.0f} fixes/s ({many:.1f} s, "
        f"{len(result.alerts):,} alerts); speed-up {one / many:.2f}x; CPU-s: parent {cpu:.2f}, "
        f"workers {workers_cpu:.2f} ({n / workers_cpu:,.0f} fixes per CPU-second "
        f"of a worker)"
    )

    cpu = time.process_time()
    streamed, alerts = streaming(batch, devices, vehicles, provinces, zones)
    cpu = time.process_time() - cpu
    print(f"streaming monitor, 1 process (ingest in time order, {_CHUNK:,} fixes a call, "
          f"advance, flush): {n / streamed:,.0f} fixes/s ({streamed:.1f} s, {alerts:,} alerts); "
          f"ratio to baseline time {streamed / plain:.1f}x")  # fmt: skip
    if args.streaming_parts:
        streaming_parts(batch, devices, vehicles, provinces, zones, cpu)

    rng = np.random.default_rng(1)
    pick = rng.integers(0, n, 1_000_000)
    started = time.perf_counter()
    provinces.lookup(batch.lat[pick], batch.lon[pick])
    geo = time.perf_counter() - started
    print(f"province lookup: {1_000_000 / geo:,.0f} points/s")
    del portfolio, batch, result
    whole_monitor(args, provinces)


_CHUNK = 10_000


def _children_cpu() -> float:
    """User + system seconds of the child processes ended so far (``run_monitor``'s workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def per_fix(batch, devices, vehicles, provinces, zones, columnar: Monitor, columnar_cpu: float):
    """The same batch with every vehicle on the per-fix path (what ``replay`` does for a
    vehicle it cannot take column by column), its CPU seconds against the columnar run's."""
    forced = engine._columnar_vehicles
    engine._columnar_vehicles = lambda slots: np.zeros(len(slots), dtype=bool)
    try:
        cpu = time.process_time()
        monitor = Monitor(devices, vehicles, provinces=provinces, zones=zones)
        monitor.replay(batch)
        monitor.flush()
        cpu = time.process_time() - cpu
    finally:
        engine._columnar_vehicles = forced
    same = [_fields(a) for a in monitor.alerts] == [_fields(a) for a in columnar.alerts]
    n = len(batch)
    print(f"per-fix path, 1 process: {n / cpu:,.0f} fixes per CPU-second ({cpu:.1f} CPU-s, "
          f"{len(monitor.alerts):,} alerts); columnar {cpu / columnar_cpu:.2f}x faster; "
          f"alerts {'identical in order and every field' if same else 'DIFFER'}")  # fmt: skip


def _fields(alert) -> dict:
    return alert.as_json() | {"status_at": alert.status_at}


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


def streaming_parts(batch, devices, vehicles, provinces, zones, whole: float) -> None:
    """CPU seconds per fix of the streaming run (``whole``, timed by the caller), of the state
    machines alone in either order and of the engine alone; see the module docstring."""
    n = len(batch)
    by_call, by_time, by_vehicle = (
        _state_machines(batch, devices, vehicles, provinces, zones, order)
        for order in ("call", "time", "vehicle")
    )
    state_machines = VehicleMonitor.on_fix
    VehicleMonitor.on_fix = lambda self, fix: None  # the engine holds and releases only
    try:
        engine_only = time.process_time()
        streaming(batch, devices, vehicles, provinces, zones)
        engine_only = time.process_time() - engine_only
    finally:
        VehicleMonitor.on_fix = state_machines
    rows = [("streaming run", whole),
            ("state machines alone, each call's fixes by vehicle (as streaming feeds them)",
             by_call),
            ("state machines alone, time order", by_time),
            ("state machines alone, (vehicle, time) order", by_vehicle),
            ("engine alone (no state machine)", engine_only),
            ("together beyond the sum (streaming - by call - engine)",
             whole - by_call - engine_only)]  # fmt: skip
    for name, cpu in rows[:-1]:
        print(f"  {name}: {cpu / n * 1e6:.2f} us a fix ({n / cpu:,.0f} fixes per CPU-second)")
    print(f"  {rows[-1][0]}: {rows[-1][1] / n * 1e6:.2f} us a fix")


def _state_machines(batch, devices, vehicles, provinces, zones, order: str) -> float:
    """CPU seconds of every fix through its vehicle's ``VehicleMonitor.on_fix``: in time order,
    in each ``_CHUNK`` of the time order by (vehicle, time) (``call``: how ``ingest`` processes
    a call's releases), or in (vehicle, time) order, ``_CHUNK`` fixes at a time, each chunk's
    ``Fix`` tuples built first (not timed), so that as in streaming only a chunk's tuples are
    alive at once."""
    monitor = Monitor(devices, vehicles, provinces=provinces, zones=zones)
    unique, device_of = engine.factorize(batch.device_id)
    slot_of = [monitor._slot(device) for device in unique.tolist()]
    vehicle_of = {id(slot): k for k, slot in enumerate({id(s): s for s in slot_of}.values())}
    vehicle = np.array([vehicle_of[id(slot)] for slot in slot_of])[device_of]
    time_of = np.asarray(batch.time, dtype=np.int64)
    ranked = np.lexsort((device_of, time_of) if order != "vehicle" else
                        (device_of, time_of, vehicle))  # fmt: skip
    if order == "call":
        call = np.empty(len(ranked), dtype=np.int64)
        call[ranked] = np.arange(len(ranked)) // _CHUNK
        ranked = np.lexsort((device_of, time_of, vehicle, call))
    spent = 0.0
    for at in range(0, len(ranked), _CHUNK):
        rows = ranked[at : at + _CHUNK]
        fixes = engine._tuples(monitor._columns(batch.take(rows), unique, device_of[rows]))
        work = [(slot_of[d].monitor, fix)
                for d, fix in zip(device_of[rows].tolist(), fixes, strict=True)]  # fmt: skip
        started = time.process_time()
        for state, fix in work:
            state.on_fix(fix)
        spent += time.process_time() - started
    return spent


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
