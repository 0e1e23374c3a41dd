"""Positions as parallel arrays: the one columnar shape of GPS fixes, for the simulator, bulk
loads into the store, the collateral monitor and the device simulator alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class PositionColumns:
    """Fixes as parallel arrays, one element per fix.

    ``device_id`` is the device's key as the holder knows it: the ident (text, an object
    array) for the simulator, the monitor and the device simulator, the store's surrogate id
    (int64) for a bulk load. Order is the holder's to state (the simulator's are sorted by
    device and time; the monitor takes any order).
    """

    device_id: np.ndarray
    time: np.ndarray  # int64 epoch seconds, UTC
    lat: np.ndarray  # float64 degrees WGS-84
    lon: np.ndarray  # float64
    speed_kmh: np.ndarray  # float32; NaN when the source did not say
    course: np.ndarray  # int16, 0–359; -1 when the source did not say
    valid: np.ndarray  # bool: the tracker's own fix-valid flag
    alarms: np.ndarray  # object: canonical alarm names joined by ";", "" for none

    def __len__(self) -> int:
        return len(self.time)

    def take(self, index: Any) -> PositionColumns:
        """The fixes at ``index`` (an index array, a mask or a slice)."""
        return PositionColumns(*(getattr(self, f.name)[index] for f in fields(self)))

    @classmethod
    def of(
        cls,
        device_id: Sequence[Any] | np.ndarray,
        time: Sequence[int] | np.ndarray,
        lat: Sequence[float] | np.ndarray,
        lon: Sequence[float] | np.ndarray,
        *,
        speed_kmh: Sequence[float] | np.ndarray | None = None,
        course: Sequence[int] | np.ndarray | None = None,
        valid: Sequence[bool] | np.ndarray | None = None,
        alarms: Sequence[str] | np.ndarray | None = None,
    ) -> PositionColumns:
        """Columns from sequences in the canonical dtypes; the optional ones default to
        unknown speed and course, valid fixes and no alarms."""
        n = len(time)
        ids = np.asarray(device_id)
        return cls(
            ids if ids.dtype.kind in "iu" else np.asarray(device_id, dtype=object),
            np.asarray(time, dtype=np.int64),
            np.asarray(lat, dtype=np.float64),
            np.asarray(lon, dtype=np.float64),
            np.full(n, np.nan, np.float32) if speed_kmh is None
            else np.asarray(speed_kmh, dtype=np.float32),
            np.full(n, -1, np.int16) if course is None else np.asarray(course, dtype=np.int16),
            np.ones(n, dtype=bool) if valid is None else np.asarray(valid, dtype=bool),
            np.full(n, "", dtype=object) if alarms is None else np.asarray(alarms, dtype=object),
        )  # fmt: skip
