from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from lienwatch.data import china_provinces
from lienwatch.domain.provinces import ProvinceIndex
from lienwatch.monitor import FixBatch

T0 = int(datetime(2026, 7, 1, tzinfo=UTC).timestamp())
HOME = (30.2741, 120.1551)  # Hangzhou, Zhejiang
HOUR = 3_600


@pytest.fixture(scope="session")
def provinces() -> ProvinceIndex:
    return ProvinceIndex(china_provinces())


def batch(rows) -> FixBatch:
    """Rows of (device, time, lat, lon[, alarms[, valid]])."""
    rows = [
        (*r, "", True)[:6] if len(r) == 4 else (*r, True)[:6] if len(r) == 5 else r for r in rows
    ]
    return FixBatch(
        np.array([r[0] for r in rows], dtype=object),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.float64),
        np.array([r[3] for r in rows], dtype=np.float64),
        np.array([r[5] for r in rows], dtype=bool),
        np.array([r[4] for r in rows], dtype=object),
    )
