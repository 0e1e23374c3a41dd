"""``find_clusters`` looks for groups only around stays with owners enough in the cells
around theirs: the groups are those of a search around every stay."""

from __future__ import annotations

import numpy as np
import pytest

from lienwatch.config import MonitorThresholds
from lienwatch.domain.geo import offset_m, unit_vectors
from lienwatch.monitor import cluster
from lienwatch.monitor.detectors.base import StayRecord
from lienwatch.monitor.model import Fix
from tests.monitor.conftest import HOME, HOUR, T0


def _stay(k: int, owner: str, lat: float, lon: float, start: int, hours: float) -> StayRecord:
    x, y, z = (float(v) for v in unit_vectors(lat, lon))
    anchor = Fix(start, f"D{k}", True, lat, lon, x, y, z, 0, -1, start, 0, "", True)
    return StayRecord(f"V{k}", owner, start, start + int(hours * HOUR), anchor, ended=k % 2 == 0)


@pytest.mark.parametrize("seed", range(6))
def test_the_groups_are_those_of_a_search_around_every_stay(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    thresholds = MonitorThresholds()
    stays = []
    for k in range(300):  # crowded spots across cell edges, one owner's many stays, loners
        east, north = rng.choice([0.0, 250.0, 2_000.0, 50_000.0]) + rng.normal(0, 150, 2)
        lat, lon = offset_m(HOME[0], HOME[1], east, north)
        owner = f"B{rng.integers(0, 12 if k < 200 else 200)}"
        start = T0 + int(rng.integers(0, 5 * 24)) * HOUR
        stays.append(_stay(k, owner, float(lat), float(lon), start, float(rng.uniform(24, 90))))
    for k in range(3):  # three owners alone, 100 m apart: a group at the least it takes
        lat, lon = offset_m(HOME[0], HOME[1], 200_000 + 100 * k, 0)
        stays.append(_stay(300 + k, f"C{k}", float(lat), float(lon), T0, 30))

    found = cluster.find_clusters(stays, thresholds)
    monkeypatch.setattr(cluster, "_may_group", lambda ordered, cells, size: range(len(ordered)))
    assert found == cluster.find_clusters(stays, thresholds)
    assert {"V300", "V301", "V302"} in [{s.vehicle_id for s in c.members} for c in found]
