"""Offline reverse geocoding: points per second of ProvinceIndex.lookup.

Baseline, measured in the same run: shapely's STRtree point-in-polygon query (the plain way:
build point geometries, query with predicate "within"). Points are GPS-like: scattered around
the 427 shipped city locations, where financed cars are.

    python bench/geocode.py [--points 1000000]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import time

import numpy as np
import shapely

from lienwatch.data import china_cities_csv, china_provinces
from lienwatch.domain.provinces import OUTSIDE, ProvinceIndex


def city_points(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rows = list(csv.DictReader(io.StringIO(china_cities_csv())))
    lon = np.array([float(r["lon"]) for r in rows])
    lat = np.array([float(r["lat"]) for r in rows])
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(rows), n)
    return lon[pick] + rng.normal(0, 0.2, n), lat[pick] + rng.normal(0, 0.2, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    args = parser.parse_args()
    lon, lat = city_points(args.points)

    started = time.perf_counter()
    index = ProvinceIndex(china_provinces())
    build = time.perf_counter() - started

    index.lookup(lat[:1000], lon[:1000])  # warm up
    started = time.perf_counter()
    ours = index.lookup(lat, lon)
    ours_s = time.perf_counter() - started

    shapes = index._shapes
    started = time.perf_counter()
    tree = shapely.STRtree(shapes)
    point_idx, shape_idx = tree.query(shapely.points(lon, lat), predicate="within")
    baseline = np.full(lon.size, OUTSIDE)
    baseline[point_idx] = shape_idx
    base_s = time.perf_counter() - started

    inside = baseline != OUTSIDE
    agree = np.array_equal(ours[inside], baseline[inside])
    print(f"machine: {os.cpu_count()} cores; {args.points:,} points around city centres")
    print(f"index build: {build:.2f} s")
    print(f"ProvinceIndex.lookup: {args.points / ours_s:,.0f} points/s ({ours_s:.3f} s)")
    print(f"STRtree within query: {args.points / base_s:,.0f} points/s ({base_s:.3f} s)")
    print(f"ratio: {base_s / ours_s:.1f}x; answers agree on points inside a polygon: {agree}")
    print(f"rescued just off the coastline: {int(((ours != OUTSIDE) & ~inside).sum()):,}")


if __name__ == "__main__":
    main()
