"""``cluster`` (异常聚集): financed vehicles of different borrowers staying together.

Cross-vehicle, so it reads the long stays every vehicle reported (see
:class:`~lienwatch.monitor.detectors.base.StayRecord`) rather than fixes: a group is
``cluster_vehicles`` or more stays of different owners, all within ``cluster_radius_m`` of the
first, whose common overlap lasts ``cluster_h``. Stays are bucketed on a grid about the radius
wide, so a pass costs the number of long stays times their few neighbours.

A group may grow: three cars together since Monday, a fourth from Tuesday. The group is the
four, together since Tuesday; each member also has its own first moment in a qualifying part
of it (``Cluster.since``: Monday for the first three), which is when its alert starts. A
monitor's hourly pass saw the three on Monday; a batch over the week sees the four at once;
both give each car the same start.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from lienwatch.config import MonitorThresholds
from lienwatch.domain.geo import chord2_of_m
from lienwatch.monitor.detectors.base import StayRecord, chord2

_DEG_PER_M = 1 / 111_000


@dataclass(frozen=True, slots=True)
class Cluster:
    members: tuple[StayRecord, ...]
    start: int  # the common overlap began
    end: int | None  # it ended (a member left), or None while all stay
    since: tuple[int, ...]  # each member's first moment in a qualifying part of the group


def find_clusters(stays: Iterable[StayRecord], thresholds: MonitorThresholds) -> list[Cluster]:
    """Every maximal group of stays that satisfies the cluster rule, earliest first."""
    radius2 = chord2_of_m(thresholds.cluster_radius_m)
    need_s = thresholds.cluster_h * 3_600
    cell = thresholds.cluster_radius_m * _DEG_PER_M
    grid: dict[tuple[int, int], list[StayRecord]] = defaultdict(list)
    ordered = sorted(stays, key=lambda s: (s.start, s.vehicle_id))
    cells = [_cell(stay, cell) for stay in ordered]
    for stay, at in zip(ordered, cells, strict=True):
        grid[at].append(stay)
    found: dict[frozenset[tuple[str, int]], Cluster] = {}  # by its stays: each meeting
    for k in _may_group(ordered, cells, thresholds.cluster_vehicles):
        stay, (iy, ix) = ordered[k], cells[k]
        near = [
            other
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            for other in grid.get((iy + dy, ix + dx), ())
            if other.owner != stay.owner
            and chord2(other.anchor, stay.anchor) <= radius2
            and _overlap(stay, other) >= need_s
        ]
        group = _group(stay, near, need_s, thresholds.cluster_vehicles)
        if group is not None:
            found.setdefault(frozenset((s.vehicle_id, s.start) for s in group.members), group)
    return sorted(found.values(), key=lambda c: (c.start, sorted(s.vehicle_id for s in c.members)))


def _may_group(ordered: Sequence[StayRecord], cells: Sequence[tuple[int, int]],
               size: int) -> list[int]:  # fmt: skip
    """The stays with owners enough in the cells around theirs to form a group: ``size`` or
    more, counting each cell's distinct owners (an owner in two cells counts twice, so no
    stay that may group is left out). Most long stays are a car at its owner's home with no
    other financed car near it, and the others are a few."""
    if not ordered:
        return []
    iy, ix = np.array(cells, dtype=np.int64).T
    width = int(ix.max() - ix.min()) + 3  # a row of cells, with a blank column either side
    key = (iy - iy.min() + 1) * width + (ix - ix.min() + 1)
    owner_of: dict[str, int] = {}
    owner = np.array([owner_of.setdefault(s.owner, len(owner_of)) for s in ordered])
    cell_owner = np.unique(key * (len(owner_of) + 1) + owner)
    occupied, owners = np.unique(cell_owner // (len(owner_of) + 1), return_counts=True)
    around = np.zeros(len(key), dtype=np.int64)
    for step in (-width - 1, -width, -width + 1, -1, 0, 1, width - 1, width, width + 1):
        at = np.minimum(np.searchsorted(occupied, key + step), len(occupied) - 1)
        around += np.where(occupied[at] == key + step, owners[at], 0)
    return np.flatnonzero(around >= size).tolist()


def _cell(stay: StayRecord, cell: float) -> tuple[int, int]:
    return int(stay.anchor.lat // cell), int(stay.anchor.lon // cell)


def _overlap(*stays: StayRecord) -> int:
    return min(s.last for s in stays) - max(s.start for s in stays)


def _group(
    seed: StayRecord, near: Sequence[StayRecord], need_s: float, size: int
) -> Cluster | None:
    """The seed with one stay per other owner, dropping the stay that shortens the common
    overlap most until it lasts long enough (or too few remain)."""
    members = {seed.owner: seed}
    for stay in sorted(near, key=lambda s: (-_overlap(seed, s), s.vehicle_id)):
        members.setdefault(stay.owner, stay)
    group = list(members.values())
    while len(group) >= size and _overlap(*group) < need_s:
        others = group[1:]
        worst = max(
            others, key=lambda s: (_overlap(*[g for g in group if g is not s]), s.vehicle_id)
        )
        group.remove(worst)
    if len(group) < size:
        return None
    members = tuple(sorted(group, key=lambda s: s.vehicle_id))
    ended = [s.last for s in group if s.ended]
    start = max(s.start for s in group)
    since = tuple(_first_together(s, members, need_s, size) for s in members)
    return Cluster(members, start, min(ended, default=None), since)


def _first_together(
    member: StayRecord, group: Sequence[StayRecord], need_s: float, size: int
) -> int:
    """The earliest start of ``size`` or more stays of ``group``, ``member`` among them, whose
    common overlap lasts ``need_s``: the starts from the member's on are tried in time order,
    each with every stay that had begun by then and lasts ``need_s`` beyond it. The group's
    own start always qualifies (its stays overlap that long)."""
    starts = sorted({s.start for s in group if s.start >= member.start})
    return next(
        start for start in starts
        if member.last - start >= need_s
        and sum(s.start <= start and s.last - start >= need_s for s in group) >= size
    )  # fmt: skip
