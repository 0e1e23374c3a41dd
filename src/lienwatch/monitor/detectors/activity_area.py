"""``unusual_area``: far outside the area the car was driven in over the last weeks."""

from __future__ import annotations

from collections import deque

import numpy as np

from lienwatch.domain.geo import unit_vectors
from lienwatch.monitor.detectors.base import CELL_DEG, DAY_S, HOUR_S, Emitter, Limits, position_of
from lienwatch.monitor.model import AlertType, Fix


class ActivityArea:
    """``unusual_area``: far outside the 0.1° cells that hold ``activity_share`` of the fixes of
    the last ``activity_days`` local days (the area is re-learned weekly), for more than
    ``unusual_h`` and over ``unusual_nights`` night ends."""

    _RELEARN_DAYS = 7

    __slots__ = (
        "alerted", "area", "centres", "day", "days", "far", "first_out", "learned_on", "limits",
        "out", "today", "totals"
    )

    def __init__(self, out: Emitter) -> None:
        self.out = out
        self.day: int | None = None
        self.today: dict[int, int] = {}
        self.days: deque[tuple[int, dict[int, int]]] = deque()
        self.totals: dict[int, int] = {}
        self.area: frozenset[int] = frozenset()
        self.centres = np.zeros((0, 3))
        self.far: dict[int, bool] = {}
        self.learned_on: int | None = None
        self.first_out: Fix | None = None  # the first fix far outside, None while inside
        self.alerted = False
        out.keep_tuned(self)

    def tune(self, limits: Limits) -> None:
        self.limits = limits

    def on_fix(self, fix: Fix) -> None:
        day = fix.local // DAY_S
        if day != self.day:
            self._roll(day)
        cell = fix.cell
        today = self.today
        today[cell] = today.get(cell, 0) + 1
        area = self.area
        if self.first_out is None and (cell in area or not area):
            return  # inside, nothing open (alerted only with a first fix out): judge is a no-op
        self.judge(fix)

    def judge(self, fix: Fix) -> None:
        """The fix against the area, once its day is rolled and its cell counted."""
        cell = fix.cell
        if not self.area or cell in self.area:
            self._inside(fix)
            return
        far = self.far.get(cell)
        if far is None:
            far = self.far[cell] = self._is_far(fix)
        if not far:
            self._inside(fix)
        elif self.first_out is None:
            self.first_out = fix
        elif (
            not self.alerted
            and fix.time - self.first_out.time > self.limits.unusual_s
            and self._nights_out(fix) >= self.limits.unusual_nights
        ):
            self.alerted = True
            since = self.first_out.time
            self.out.raise_(
                AlertType.UNUSUAL_AREA,
                start=since,
                at=fix.time,
                device_id=fix.device_id,
                position=position_of(fix),
                fixes=[self.first_out, fix],
                evidence={
                    "hours_outside": round((fix.time - since) / HOUR_S, 1),
                    "area_cells": len(self.area),
                },
            )

    def _nights_out(self, fix: Fix) -> int:
        """The night ends (``night_end_h`` local) since the car left its area: a day trip to
        a city an hour or two away is routine, a night away is not."""
        assert self.first_out is not None
        night_end = self.limits.night_end_s
        return int((fix.local - night_end) // DAY_S - (self.first_out.local - night_end) // DAY_S)

    def _inside(self, fix: Fix) -> None:
        if self.alerted:
            self.out.resolve(AlertType.UNUSUAL_AREA, fix.time)
        self.first_out, self.alerted = None, False

    def _is_far(self, fix: Fix) -> bool:
        return is_far(fix.cell, self.centres, self.limits.unusual_far_r2)

    def _roll(self, day: int) -> None:
        if self.day is not None and self.today:
            self.days.append((self.day, self.today))
            for cell, count in self.today.items():
                self.totals[cell] = self.totals.get(cell, 0) + count
        self.day, self.today = day, {}
        while self.days and self.days[0][0] <= day - self.limits.activity_days:
            for cell, count in self.days.popleft()[1].items():
                left = self.totals[cell] - count
                if left:
                    self.totals[cell] = left
                else:
                    del self.totals[cell]
        due = self.learned_on is None or day - self.learned_on >= self._RELEARN_DAYS
        if due and len(self.days) >= self.limits.activity_min_days:
            self._learn(day)

    def _learn(self, day: int) -> None:
        ranked = sorted(self.totals.items(), key=lambda item: (-item[1], item[0]))
        wanted = self.limits.activity_share * sum(self.totals.values())
        area, held = [], 0
        for cell, count in ranked:
            area.append(cell)
            held += count
            if held >= wanted:
                break
        self.centres = cell_centres(np.array(area, dtype=np.int64))
        self.area, self.far, self.learned_on = frozenset(area), {}, day


def is_far(cell: int, centres: np.ndarray, unusual_far_r2: float) -> bool:
    """Whether a cell outside the area is far from all of it: its centre farther than
    ``unusual_far_r2`` (a squared chord) from every area cell's centre (``centres``). The
    detector and the columnar replay (which asks for all of them at once) compute it alike."""
    cx, cy, cz = cell_centres(np.array([cell], dtype=np.int64))[0]
    d2 = (centres[:, 0] - cx) ** 2 + (centres[:, 1] - cy) ** 2
    d2 += (centres[:, 2] - cz) ** 2
    return bool(d2.min() > unusual_far_r2)


def cell_centres(cells: np.ndarray) -> np.ndarray:
    """The centres of activity-area cells as unit vectors, one row (x, y, z) per cell."""
    iy, ix = np.divmod(cells, 100_000)
    return np.column_stack(unit_vectors((iy + 0.5) * CELL_DEG, (ix + 0.5) * CELL_DEG - 180.0))


def activity_cells(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The activity-area grid cell of each point (row × 100,000 + column of 0.1° cells)."""
    iy = np.floor(np.nan_to_num(lat, nan=0.0) / CELL_DEG).astype(np.int64)
    ix = np.floor((np.nan_to_num(lon, nan=0.0) + 180.0) / CELL_DEG).astype(np.int64)
    return iy * 100_000 + ix
