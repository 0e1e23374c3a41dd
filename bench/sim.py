"""Benchmark of the portfolio generator (run: ``python bench/sim.py``).

1. End-to-end ``generate`` at the default size (2,000 loans × 120 days): seconds and fixes.
2. Track synthesis, vectorized (``lienwatch.sim.tracks``) against a plain per-fix Python loop
   over the same segments (a sample of cars), in fixes per second; prints the ratio.
3. Writing positions: the vectorized writer against ``csv.writer`` with one row per fix.
"""

from __future__ import annotations

import csv
import math
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lienwatch.domain.positions import PositionColumns
from lienwatch.sim.book import BookSpec, borrower_cities, build_book
from lienwatch.sim.generate import SimConfig, generate
from lienwatch.sim.stories import plan_stories
from lienwatch.sim.tracks import STAY, TrackSettings, _DayPlanner, _evaluate, _wired_times
from lienwatch.sim.write import write_positions
from lienwatch.sim.zones import build_zones

SAMPLE_CARS = 200


def per_fix_loop(seg, settings: TrackSettings) -> int:
    """The baseline: one Python iteration per fix, computing the same quantities."""
    rng = random.Random(1)
    rows = 0
    for i in range(len(seg.start)):
        start, end = int(seg.start[i]), int(seg.end[i])
        span = end - start
        lat0, lon0 = float(seg.lat0[i]), float(seg.lon0[i])
        if seg.kind[i] == STAY:
            times = range(start + settings.parked_interval_s, end - 30, settings.parked_interval_s)
        else:
            times = [*range(start, end, settings.moving_interval_s), end]
        for t in times:
            f = (t - start) / max(span, 1)
            east = f * (float(seg.lon1[i]) - lon0) * math.cos(math.radians(lat0)) * 111_195
            north = f * (float(seg.lat1[i]) - lat0) * 111_195
            r, a = rng.uniform(3, 30), rng.uniform(0, 2 * math.pi)
            lat = lat0 + math.degrees((north + r * math.cos(a)) / 6_371_008.8)
            lon = lon0 + math.degrees(
                (east + r * math.sin(a)) / (6_371_008.8 * math.cos(math.radians(lat0)))
            )
            _ = (t, lat, lon, rng.lognormvariate(0, 0.25), int(rng.uniform(0, 360)))
            rows += 1
    return rows


def bench_tracks(config: SimConfig) -> None:
    rng = np.random.default_rng(1)
    spec = BookSpec(
        SAMPLE_CARS,
        config.start,
        config.as_of,
        config.profile_mix,
        0.6,
        0.03,
        config.parked_interval_s,
        config.wireless_interval_s,
    )
    _, plans = build_book(rng, spec)
    cities = borrower_cities()
    zones = build_zones(rng, sorted({p.city for p in plans}, key=lambda c: c.index))
    stories = plan_stories(rng, plans, zones, config.start, config.days, cities)
    settings = TrackSettings(
        config.start,
        config.days,
        config.moving_interval_s,
        config.parked_interval_s,
        config.wireless_interval_s,
    )
    segments, _, _ = _DayPlanner(rng, plans, stories, settings, cities).build()
    began = time.perf_counter()
    index, t = _wired_times(segments, settings, rng)
    _evaluate(segments, index, t, rng)
    vector_s = time.perf_counter() - began
    began = time.perf_counter()
    loop_rows = per_fix_loop(segments, settings)
    loop_s = time.perf_counter() - began
    vector_rate, loop_rate = len(t) / vector_s, loop_rows / loop_s
    print(
        f"tracks, {SAMPLE_CARS} cars: vectorized {vector_rate:,.0f} fixes/s, "
        f"per-fix loop {loop_rate:,.0f} fixes/s, ratio {vector_rate / loop_rate:.1f}x"
    )


def bench_write(positions: PositionColumns, rows: int) -> None:
    sample = positions.take(slice(0, rows))
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        write_positions(sample, Path(tmp) / "fast.csv")
        fast_s = time.perf_counter() - began
        began = time.perf_counter()
        with (Path(tmp) / "slow.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["device_id", "time", "lat", "lon", "speed_kmh", "course", "alarms", "valid"]
            )
            for i in range(rows):
                writer.writerow(
                    [
                        sample.device_id[i],
                        datetime.fromtimestamp(int(sample.time[i]), UTC).strftime(
                            "%Y-%m-%dT%H:%M:%SZ"
                        ),
                        f"{sample.lat[i]:.6f}",
                        f"{sample.lon[i]:.6f}",
                        f"{sample.speed_kmh[i]:.1f}",
                        int(sample.course[i]),
                        sample.alarms[i],
                        "true" if sample.valid[i] else "false",
                    ]
                )
        slow_s = time.perf_counter() - began
    print(
        f"write positions, {rows:,} rows: vectorized {rows / fast_s:,.0f} rows/s, "
        f"csv.writer {rows / slow_s:,.0f} rows/s, ratio {slow_s / fast_s:.1f}x"
    )


def main() -> None:
    config = SimConfig()
    began = time.perf_counter()
    portfolio = generate(config)
    elapsed = time.perf_counter() - began
    print(
        f"generate default ({config.loans} loans × {config.days} days): {elapsed:.1f} s, "
        f"{len(portfolio.positions):,} positions, {len(portfolio.payments):,} payments"
    )
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        write_positions(portfolio.positions, Path(tmp) / "positions.csv")
        print(f"write all positions: {time.perf_counter() - began:.1f} s")
    bench_tracks(config)
    bench_write(portfolio.positions, 300_000)


if __name__ == "__main__":
    main()
