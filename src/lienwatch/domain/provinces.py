"""Offline reverse geocoding: which province of China a point lies in, for millions of points.

A regular grid is laid over the provinces. Cells that no boundary crosses take the province of
their centre, so most points are answered by one array lookup; points in the thin band of cells
along boundaries are tested exactly against the polygons. Points just outside every polygon
(Natural Earth's coastline misses some harbour city centres) take the nearest province within
``coast_tolerance`` degrees; anything farther is outside China (index -1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.ndimage
import shapely
from numpy.typing import ArrayLike

OUTSIDE = -1
_BORDER = -2  # grid cell a boundary may cross: test points exactly
_NEAR_COAST = -3  # grid cell outside every province but within the coast tolerance
_FEW_POINTS = 64  # up to this many points are tested against every bounding box at once


def _dilate(mask: np.ndarray, reach: int) -> np.ndarray:
    """Grow a boolean grid by ``reach`` cells in every direction (a square, separably)."""
    grown = mask.copy()
    for axis in (0, 1):
        base = grown.copy()
        for shift in range(1, reach + 1):
            grown |= np.roll(base, shift, axis=axis) | np.roll(base, -shift, axis=axis)
    return grown


@dataclass(frozen=True, slots=True)
class Province:
    code: str  # GB/T 2260 two-digit code
    name_en: str
    name_zh: str
    iso_3166_2: str


class ProvinceIndex:
    """Point → province lookups, vectorized over numpy arrays of WGS-84 degrees."""

    def __init__(
        self,
        feature_collection: Mapping[str, Any],
        *,
        cell_deg: float = 0.02,
        coast_tolerance: float = 0.1,
    ) -> None:
        features = feature_collection["features"]
        self.provinces: tuple[Province, ...] = tuple(
            Province(
                code=f["properties"]["gb2260"],
                name_en=f["properties"]["name_en"],
                name_zh=f["properties"]["name_zh"],
                iso_3166_2=f["properties"]["iso_3166_2"],
            )
            for f in features
        )
        self._by_code = {p.code: i for i, p in enumerate(self.provinces)}
        self._shapes = np.array([shapely.geometry.shape(f["geometry"]) for f in features])
        shapely.prepare(self._shapes)
        self._bounds = shapely.bounds(self._shapes)
        self._cell = cell_deg
        self._coast = coast_tolerance
        self._grid = self._build_grid()

    def _build_grid(self) -> np.ndarray:
        """Province index per cell, or OUTSIDE, _BORDER or _NEAR_COAST."""
        min_x, min_y, max_x, max_y = shapely.total_bounds(self._shapes)
        self._x0, self._y0 = np.floor(min_x), np.floor(min_y)
        nx = int(np.ceil((max_x - self._x0) / self._cell)) + 2
        ny = int(np.ceil((max_y - self._y0) / self._cell)) + 2
        grid = np.full((ny, nx), OUTSIDE, dtype=np.int16)
        # Every cell within one cell of a boundary vertex (boundaries densified to a quarter
        # cell) is a border cell; every other cell lies wholly on one side of every boundary.
        outline = shapely.segmentize(shapely.boundary(self._shapes), self._cell / 4)
        coords, owner = shapely.get_coordinates(outline, return_index=True)
        # Distances to the densified outline's vertices stand in for distances to the polygons
        # (off by at most an eighth of a cell): far cheaper than polygon distances.
        self._outline_tree = shapely.STRtree(shapely.points(coords))
        self._outline_owner = owner.astype(np.int16)
        ix = ((coords[:, 0] - self._x0) / self._cell).astype(np.int64)
        iy = ((coords[:, 1] - self._y0) / self._cell).astype(np.int64)
        border = np.zeros((ny, nx), dtype=bool)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                border[np.clip(iy + dy, 0, ny - 1), np.clip(ix + dx, 0, nx - 1)] = True
        # So side by side cells of that kind lie on the same side of every boundary: each
        # region of them takes the province of one of its cells' centres (one exact test per
        # region instead of per cell).
        regions, count = scipy.ndimage.label(~border)
        cell_of_region = np.empty(count + 1, dtype=np.int64)
        cell_of_region[regions.ravel()] = np.arange(regions.size)  # any cell of each region
        cy, cx = np.divmod(cell_of_region[1:], nx)
        province = np.full(count + 1, OUTSIDE, dtype=np.int16)  # region 0: the border cells
        for index, inside in self._exact(self._x0 + (cx + 0.5) * self._cell,
                                         self._y0 + (cy + 0.5) * self._cell):  # fmt: skip
            province[1:][inside] = index
        grid[~border] = province[regions[~border]]
        # Outside cells within the coast tolerance of a boundary may hold near-coast points.
        reach = int(np.ceil(self._coast / self._cell)) + 1
        coast = _dilate(border, reach) & (grid == OUTSIDE)
        grid[coast] = _NEAR_COAST
        grid[border] = _BORDER
        return grid

    def _exact(self, lon: np.ndarray, lat: np.ndarray):
        """Yield (province index, mask of points inside it) by exact point-in-polygon tests,
        in province order, for the provinces whose bounding box holds any of the points."""
        if len(lon) > _FEW_POINTS:  # one province's box at a time: no points × provinces array
            boxes = ((lon >= x1) & (lon <= x2) & (lat >= y1) & (lat <= y2)
                     for x1, y1, x2, y2 in self._bounds)  # fmt: skip
        else:  # a few points (a home, a route): every box in one step, not one per province
            x1, y1, x2, y2 = self._bounds.T
            boxes = iter(((lon[:, None] >= x1) & (lon[:, None] <= x2) & (lat[:, None] >= y1)
                          & (lat[:, None] <= y2)).T)  # fmt: skip
        for index, near in enumerate(boxes):
            if not near.any():
                continue
            inside = np.zeros(len(lon), dtype=bool)
            inside[near] = shapely.contains_xy(self._shapes[index], lon[near], lat[near])
            yield index, inside

    def lookup(self, lat: ArrayLike, lon: ArrayLike) -> np.ndarray:
        """Province index per point (into :attr:`provinces`), or -1 outside China."""
        lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        if lon.shape != lat.shape:
            raise ValueError(f"lat and lon differ in shape: {lat.shape} vs {lon.shape}")
        ny, nx = self._grid.shape
        ix = np.floor((lon - self._x0) / self._cell)
        iy = np.floor((lat - self._y0) / self._cell)
        on_grid = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)  # NaN compares False
        result = np.full(lon.shape, OUTSIDE, dtype=np.int16)
        result[on_grid] = self._grid[iy[on_grid].astype(np.int64), ix[on_grid].astype(np.int64)]
        border = np.flatnonzero(result == _BORDER)
        if border.size:
            exact = np.full(border.size, OUTSIDE, dtype=np.int16)
            for index, inside in self._exact(lon[border], lat[border]):
                exact[inside & (exact == OUTSIDE)] = index
            result[border] = exact
            # Border-cell points inside no polygon may still be just off the coast.
            result[border[exact == OUTSIDE]] = _NEAR_COAST
        near_coast = np.flatnonzero(result == _NEAR_COAST)
        result[near_coast] = OUTSIDE
        if near_coast.size:
            points = shapely.points(lon[near_coast], lat[near_coast])
            hits = self._outline_tree.query_nearest(
                points, max_distance=self._coast, all_matches=False
            )
            result[near_coast[hits[0]]] = self._outline_owner[hits[1]]
        return result

    def province_of(self, lat: float, lon: float) -> Province | None:
        """The province containing one point, or None outside China."""
        index = int(self.lookup(lat, lon)[0])
        return None if index == OUTSIDE else self.provinces[index]

    def within(
        self, lat: ArrayLike, lon: ArrayLike, code: ArrayLike, *, margin_deg: float = 0.0
    ) -> np.ndarray:
        """Whether each point lies in province ``code`` (one code, or one per point) with no
        other province within ``margin_deg`` north, south, east or west (the sea may be)."""
        lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        wanted = np.broadcast_to(np.asarray(code, dtype=object).astype(str), lat.shape)
        steps = [(0.0, 0.0)]
        if margin_deg > 0:
            steps += [(margin_deg, 0), (-margin_deg, 0), (0, margin_deg), (0, -margin_deg)]
        # The points and the points around them in one lookup (each point's answer is its own).
        codes = self.codes(self.lookup(np.concatenate([lat + dlat for dlat, _ in steps]),
                                       np.concatenate([lon + dlon for _, dlon in steps])))
        here, *around = np.split(codes, len(steps))
        inside = here == wanted
        for near in around:
            inside &= (near == wanted) | (near == "")
        return inside

    def by_code(self, code: str) -> Province:
        try:
            return self.provinces[self._by_code[code]]
        except KeyError:
            raise ValueError(f"province code {code!r} is not a GB/T 2260 province code") from None

    def codes(self, indices: np.ndarray) -> np.ndarray:
        """GB/T 2260 codes for lookup results ("" outside China)."""
        table = np.array([p.code for p in self.provinces] + [""], dtype=object)
        return table[np.where(indices == OUTSIDE, len(self.provinces), indices)]
