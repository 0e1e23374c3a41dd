"""Stay points in batch: the streaming ``Stays`` detector's segmentation over whole tracks.

A stay is what :class:`~lienwatch.monitor.detectors.long_stay.Stays` follows fix by fix: it
begins at an *anchor* fix and holds every following fix of the track within ``radius_m`` of the
anchor; the first fix farther away is the next anchor. A stay lasts from its anchor to that
departure fix (to the track's last fix while it is still open) — trackintel's
``generate_staypoints`` "sliding" semantics with ``include_last``.

The segmentation is sequential per track, but two facts make it vectorizable:

- a fix more than twice the radius (in chord terms) from its predecessor is an anchor whatever
  came before (the predecessor is within the radius of its anchor, so by the triangle
  inequality the fix is outside it), so tracks split into independent *pieces* there;
- pieces are then walked in lockstep: each numpy step compares the next fixes of every
  unfinished piece with its anchor, a block that doubles up to 64 fixes (short pieces, the
  driving, finish in the first steps; long parked runs are then read 64 fixes a step), so
  the Python loop runs about (longest piece) / 64 times, not once per fix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from lienwatch.domain.geo import chord2_of_m, unit_vectors
from lienwatch.monitor.model import MonitorInputError

_MAX_BLOCK = 64  # fixes of a piece compared with its anchor per numpy step


@dataclass(frozen=True, slots=True)
class StayTable:
    """Stays as parallel arrays, ordered by (track, start); indices point into the input."""

    track: np.ndarray  # the track (vehicle) of each stay
    first: np.ndarray  # int64 index of the anchor fix
    last: np.ndarray  # int64 index of the last fix within the radius
    start: np.ndarray  # int64 epoch seconds of the anchor
    end: np.ndarray  # int64 epoch seconds of the departure fix, or of ``last`` while open
    open: np.ndarray  # bool: the track ends inside the stay

    def __len__(self) -> int:
        return len(self.first)


def find_stays(
    track: ArrayLike,
    time: ArrayLike,
    lat: ArrayLike,
    lon: ArrayLike,
    *,
    radius_m: float,
    min_duration_s: float,
) -> StayTable:
    """Every stay of at least ``min_duration_s`` in each track (see the module docstring).

    Fixes may come in any order: they are sorted by (track, time), ties keeping input order.
    Coordinates must be usable (filter invalid fixes first, as the monitor does).
    """
    track = np.asarray(track)
    time = np.asarray(time, dtype=np.int64)
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    _check(track, time, lat, lon, radius_m, min_duration_s)
    if len(track) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return StayTable(track, empty, empty, empty, empty, np.zeros(0, dtype=bool))
    order, code = _track_order(track, time)
    code, time = code[order], time[order]
    xyz = np.column_stack(unit_vectors(lat[order], lon[order]))
    anchor = stay_anchors(code, xyz, chord2_of_m(radius_m))
    first = np.flatnonzero(anchor)
    after = np.append(first[1:], len(time))  # the next anchor, or the end of the input
    closed = after < len(time)
    closed[closed] = code[after[closed]] == code[first[closed]]
    last = after - 1
    end = np.where(closed, time[np.minimum(after, len(time) - 1)], time[last])
    keep = end - time[first] >= min_duration_s
    first, last, end, closed = first[keep], last[keep], end[keep], closed[keep]
    return StayTable(track[order[first]], order[first], order[last], time[first], end, ~closed)


def _check(
    track: np.ndarray,
    time: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    radius_m: float,
    min_duration_s: float,
) -> None:
    for name, column in (("time", time), ("lat", lat), ("lon", lon)):
        if column.shape != track.shape or column.ndim != 1:
            raise MonitorInputError(f"{name}: shape {column.shape} differs from track's")
    if not (np.isfinite(lat).all() and (np.abs(lat) <= 90).all()):
        raise MonitorInputError("lat: not finite or outside -90..90")
    if not (np.isfinite(lon).all() and (np.abs(lon) <= 180).all()):
        raise MonitorInputError("lon: not finite or outside -180..180")
    if not radius_m > 0:
        raise MonitorInputError(f"radius_m: {radius_m} is not positive")
    if not min_duration_s >= 0:
        raise MonitorInputError(f"min_duration_s: {min_duration_s} is negative")


def _track_order(track: np.ndarray, time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (track, time) order of the fixes and an integer code per track.

    Files and the simulator usually give fixes grouped by track and in time order already;
    two O(n) checks then spare the O(n log n) string sort and the lexsort.
    """
    change = track[1:] != track[:-1]
    heads = track[np.flatnonzero(np.r_[True, change])]
    if (heads[1:] > heads[:-1]).all():  # every track one run, the runs in order
        code = np.r_[0, np.cumsum(change)]
    else:
        code = np.unique(track, return_inverse=True)[1]
    same_track = code[1:] == code[:-1]
    if (code[1:] >= code[:-1]).all() and (time[1:][same_track] >= time[:-1][same_track]).all():
        return np.arange(len(track)), code
    return np.lexsort((time, code)), code


def stay_anchors(track: np.ndarray, xyz: np.ndarray, r2: float | np.ndarray) -> np.ndarray:
    """Which fixes (sorted by track and time) begin a stay; ``r2`` is the squared chord of
    the radius, one for all or one per fix (the same along a track).

    Distances are summed as :class:`~lienwatch.monitor.detectors.long_stay.Stays` sums them
    (``dx·dx + dy·dy + dz·dz``, left to right), so the anchors are the detector's own."""
    n = len(track)
    anchor = np.zeros(n, dtype=bool)
    if n == 0:
        return anchor
    r2 = np.broadcast_to(np.asarray(r2, dtype=np.float64), (n,))
    step = np.diff(xyz, axis=0)
    step2 = step[:, 0] * step[:, 0] + step[:, 1] * step[:, 1] + step[:, 2] * step[:, 2]
    # chord > 2·chord(r)  ⇔  chord² > 4·r2: outside any stay its predecessor can be in (with
    # a margin for rounding, so that only the walk below decides near the boundary)
    anchor[0] = True
    anchor[1:] = (track[1:] != track[:-1]) | (step2 > 4.0 * r2[1:] * (1 + 1e-9))
    starts = np.flatnonzero(anchor)
    ends = np.append(starts[1:], n)
    long = ends - starts > 1  # a piece of one fix is just its anchor
    current, cursor, stop = starts[long], starts[long] + 1, ends[long]
    block = 1
    while len(cursor):
        ahead = cursor[:, None] + np.arange(block)  # the next `block` fixes of every piece
        inside_piece = ahead < stop[:, None]
        d = xyz[np.minimum(ahead, n - 1)] - xyz[current][:, None, :]
        d2 = d[:, :, 0] * d[:, :, 0] + d[:, :, 1] * d[:, :, 1] + d[:, :, 2] * d[:, :, 2]
        outside = (d2 > r2[current][:, None]) & inside_piece
        hit = outside.any(axis=1)
        at = cursor[hit] + outside[hit].argmax(axis=1)  # the first fix outside: an anchor
        anchor[at] = True
        current[hit] = at
        cursor[hit] = at + 1
        cursor[~hit] += block
        going = cursor < stop
        current, cursor, stop = current[going], cursor[going], stop[going]
        block = min(2 * block, _MAX_BLOCK)
    return anchor
