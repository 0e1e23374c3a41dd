"""Stay detection: lienwatch's ``find_stays`` against trackintel, scikit-mobility and movingpandas.

All four read the same synthetic tracks (``lienwatch.sim``, one track per vehicle, valid fixes
only, cut to ``--fixes``) with the same parameters (200 m, 30 min) and are timed in one run,
single process each; building each peer's data frame is not timed. Agreement with a peer is
the Jaccard index of the stays both found: stays are matched by (vehicle, start time) exactly,
and, since movingpandas starts a stop at the first fix of a time window rather than at an
anchor fix, also by overlapping in time on the same vehicle.

Peers are configured to the same semantics where they allow it:

- trackintel ``generate_staypoints(method="sliding", dist_threshold=200, time_threshold=30,
  include_last=True)`` with the gap threshold off (the simulated trackers report every 2 h
  when parked; trackintel's default 15 min gap would break every parked stay);
- scikit-mobility ``stops(spatial_radius_km=0.2, minutes_for_a_stop=30)`` (1.2.2, the last
  release that installs beside pandas 2+/shapely 2; 1.3 renamed it ``stay_locations``). It
  emits no stay still open at a track's end and wants strictly more than 30 min;
- movingpandas ``TrajectoryStopDetector.get_stop_time_ranges(max_diameter=400, min_duration=
  30 min)``: a diameter, so 400 m is the 200 m radius' circle.

    pip install -e '.[bench]'
    python bench/stays.py [--fixes 1000000] [--skip movingpandas]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from lienwatch.demo.scoring import fleet_of
from lienwatch.monitor.engine import usable
from lienwatch.monitor.stays import find_stays
from lienwatch.sim import SimConfig, generate

RADIUS_M = 200.0
MINUTES = 30


@dataclass(frozen=True, slots=True)
class Tracks:
    track: np.ndarray  # str
    time: np.ndarray  # int64 epoch seconds
    lat: np.ndarray
    lon: np.ndarray


@dataclass(frozen=True, slots=True)
class Found:
    """Stays as (track, start, end) arrays, epoch seconds."""

    track: np.ndarray
    start: np.ndarray
    end: np.ndarray


def synthetic_tracks(fixes: int) -> Tracks:
    loans = max(50, fixes // 1_000)  # the simulator makes about 21 fixes per loan and day
    portfolio = generate(SimConfig(loans=loans, days=60, seed=11))
    devices, _ = fleet_of(portfolio, {})
    vehicle_of = {d.device_id: d.vehicle_id for d in devices}
    p = portfolio.positions
    ok = usable(p.lat, p.lon, p.valid)
    track = np.array([vehicle_of[d] for d in p.device_id[ok].tolist()])
    order = np.lexsort((p.time[ok], track))[:fixes]
    if len(order) < fixes:
        raise SystemExit(f"the simulator made only {len(order):,} valid fixes")
    return Tracks(track[order], p.time[ok][order], p.lat[ok][order], p.lon[ok][order])


def run_lienwatch(t: Tracks) -> tuple[float, Found]:
    started = time.perf_counter()
    table = find_stays(
        t.track, t.time, t.lat, t.lon, radius_m=RADIUS_M, min_duration_s=MINUTES * 60
    )
    elapsed = time.perf_counter() - started
    return elapsed, Found(table.track, table.start, table.end)


def _epoch(column) -> np.ndarray:
    import pandas as pd

    since = pd.to_datetime(column, utc=True) - pd.Timestamp(0, tz="UTC")
    return np.asarray(since // pd.Timedelta(seconds=1), dtype=np.int64)


def _frame(t: Tracks):
    import pandas as pd

    return pd.DataFrame(
        {
            "user_id": t.track,
            "tracked_at": pd.to_datetime(t.time, unit="s", utc=True),
            "lat": t.lat,
            "lon": t.lon,
        }
    )


def run_trackintel(t: Tracks) -> tuple[float, Found]:
    import geopandas as gpd
    import trackintel as ti

    frame = _frame(t)
    points = gpd.points_from_xy(frame.lon, frame.lat)
    pfs = ti.Positionfixes(gpd.GeoDataFrame(frame, geometry=points, crs="EPSG:4326"))
    started = time.perf_counter()
    _, sp = pfs.generate_staypoints(
        method="sliding",
        dist_threshold=RADIUS_M,
        time_threshold=MINUTES,
        gap_threshold=10**7,  # minutes: off
        include_last=True,
    )
    elapsed = time.perf_counter() - started
    return elapsed, Found(sp.user_id.to_numpy(), _epoch(sp.started_at), _epoch(sp.finished_at))


def run_skmob(t: Tracks) -> tuple[float, Found]:
    import shapely.ops

    # skmob 1.2 imports shapely's cascaded_union, removed in shapely 2 in favour of the
    # identical unary_union; lienwatch needs shapely 2, so the old name is restored here.
    shapely.ops.cascaded_union = shapely.ops.unary_union
    import skmob
    from skmob.preprocessing import detection

    frame = _frame(t).rename(columns={"tracked_at": "datetime", "lon": "lng", "user_id": "uid"})
    frame["datetime"] = frame["datetime"].dt.tz_localize(None)
    # Under pandas 3 skmob's own per-user groupby drops the uid column from its result, so
    # each user's TrajDataFrame is built beforehand (untimed) and stops() runs on each.
    users = [
        (uid, skmob.TrajDataFrame(rows, latitude="lat", longitude="lng", datetime="datetime"))
        for uid, rows in frame.groupby("uid", sort=False)
    ]
    found = []
    started = time.perf_counter()
    for uid, tdf in users:
        found.append(
            (
                uid,
                detection.stops(
                    tdf,
                    spatial_radius_km=RADIUS_M / 1000,
                    minutes_for_a_stop=MINUTES,
                    leaving_time=True,
                ),
            )
        )
    elapsed = time.perf_counter() - started
    return elapsed, Found(
        np.concatenate([np.full(len(stops), uid, dtype=object) for uid, stops in found]),
        np.concatenate([_epoch(stops.datetime) for _, stops in found]),
        np.concatenate([_epoch(stops.leaving_datetime) for _, stops in found]),
    )


def run_movingpandas(t: Tracks) -> tuple[float, Found]:
    import movingpandas as mpd

    frame = _frame(t).rename(columns={"tracked_at": "t"})
    frame["t"] = frame["t"].dt.tz_localize(None)
    collection = mpd.TrajectoryCollection(
        frame, traj_id_col="user_id", t="t", x="lon", y="lat", crs="EPSG:4326"
    )
    started = time.perf_counter()
    ranges = mpd.TrajectoryStopDetector(collection).get_stop_time_ranges(
        max_diameter=2 * RADIUS_M, min_duration=timedelta(minutes=MINUTES)
    )
    elapsed = time.perf_counter() - started
    return elapsed, Found(
        np.array([r.traj_id for r in ranges]),
        _epoch([r.t_0 for r in ranges]),
        _epoch([r.t_n for r in ranges]),
    )


def exact_agreement(a: Found, b: Found) -> float:
    """Jaccard index of the (track, start) pairs."""
    left = set(zip(a.track.tolist(), a.start.tolist(), strict=True))
    right = set(zip(b.track.tolist(), b.start.tolist(), strict=True))
    return len(left & right) / max(len(left | right), 1)


def overlap_agreement(a: Found, b: Found) -> float:
    """Share of all stays (of both) that overlap a stay of the other on the same track."""
    matched = _overlapping(a, b).sum() + _overlapping(b, a).sum()
    return matched / max(len(a.start) + len(b.start), 1)


def _overlapping(a: Found, b: Found) -> np.ndarray:
    _, codes = np.unique(np.concatenate([a.track, b.track]).astype(str), return_inverse=True)
    code_a, code_b = codes[: len(a.track)], codes[len(a.track) :]
    order = np.lexsort((b.start, code_b))
    key_b = code_b[order].astype(np.float64) * 1e10 + b.start[order]
    # the last stay of b on the same track starting no later than a's stay ends
    at = np.searchsorted(key_b, code_a.astype(np.float64) * 1e10 + a.end, side="right") - 1
    hit = at >= 0
    candidate = order[np.maximum(at, 0)]
    same = code_b[candidate] == code_a
    return hit & same & (b.end[candidate] >= a.start)


PEERS: dict[str, Callable[[Tracks], tuple[float, Found]]] = {
    "trackintel": run_trackintel,
    "scikit-mobility": run_skmob,
    "movingpandas": run_movingpandas,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixes", type=int, default=1_000_000)
    parser.add_argument("--skip", action="append", default=[], choices=sorted(PEERS))
    args = parser.parse_args()
    tracks = synthetic_tracks(args.fixes)
    print(f"{len(tracks.time):,} fixes, {len(np.unique(tracks.track)):,} tracks")
    ours_s, ours = run_lienwatch(tracks)
    print(f"lienwatch find_stays: {ours_s:.3f} s, {len(ours.start):,} stays")
    for name, run in PEERS.items():
        if name in args.skip:
            continue
        try:
            peer_s, peer = run(tracks)
        except Exception as exc:  # a peer that cannot run here is reported, not fatal
            print(f"{name}: could not run: {type(exc).__name__}: {exc}")
            continue
        print(
            f"{name}: {peer_s:.1f} s, {len(peer.start):,} stays; lienwatch is "
            f"{peer_s / ours_s:,.0f}x faster; agreement {exact_agreement(ours, peer):.2%} "
            f"(same start), {overlap_agreement(ours, peer):.2%} (overlapping)"
        )


if __name__ == "__main__":
    main()
