from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lienwatch.data import china_provinces
from lienwatch.domain.positions import PositionColumns
from lienwatch.domain.provinces import ProvinceIndex

T0 = int(datetime(2026, 7, 1, tzinfo=UTC).timestamp())
HOME = (30.2741, 120.1551)  # Hangzhou, Zhejiang
HOUR = 3_600


@pytest.fixture(scope="session")
def provinces() -> ProvinceIndex:
    return ProvinceIndex(china_provinces())


def batch(rows) -> PositionColumns:
    """Rows of (device, time, lat, lon[, alarms[, valid]])."""
    rows = [
        (*r, "", True)[:6] if len(r) == 4 else (*r, True)[:6] if len(r) == 5 else r for r in rows
    ]
    return PositionColumns.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                              [r[3] for r in rows], valid=[r[5] for r in rows],
                              alarms=[r[4] for r in rows])  # fmt: skip
