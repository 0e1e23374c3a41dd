"""Where things are: cities, provinces, scattering points around a centre, risk zones.

City and province data come from the Natural Earth extracts shipped in ``lienwatch/data``.
Province membership is answered by a raster of the province polygons (0.02°, about 2 km),
eroded by one cell so that "safely inside" never holds within ~2 km of a border: normal
profiles are kept inside their province by that test, and tests use it to check moves.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

EARTH_RADIUS_M = 6_371_008.8
_CELL_DEG = 0.02
_LON0, _LAT0, _LON1, _LAT1 = 73.0, 17.5, 135.5, 54.0

# GB/T 2260 province code -> (plate abbreviation, Chinese name). Mainland only.
PROVINCES: dict[str, tuple[str, str]] = {
    "11": ("京", "北京市"),
    "12": ("津", "天津市"),
    "13": ("冀", "河北省"),
    "14": ("晋", "山西省"),
    "15": ("蒙", "内蒙古自治区"),
    "21": ("辽", "辽宁省"),
    "22": ("吉", "吉林省"),
    "23": ("黑", "黑龙江省"),
    "31": ("沪", "上海市"),
    "32": ("苏", "江苏省"),
    "33": ("浙", "浙江省"),
    "34": ("皖", "安徽省"),
    "35": ("闽", "福建省"),
    "36": ("赣", "江西省"),
    "37": ("鲁", "山东省"),
    "41": ("豫", "河南省"),
    "42": ("鄂", "湖北省"),
    "43": ("湘", "湖南省"),
    "44": ("粤", "广东省"),
    "45": ("桂", "广西壮族自治区"),
    "46": ("琼", "海南省"),
    "50": ("渝", "重庆市"),
    "51": ("川", "四川省"),
    "52": ("贵", "贵州省"),
    "53": ("云", "云南省"),
    "54": ("藏", "西藏自治区"),
    "61": ("陕", "陕西省"),
    "62": ("甘", "甘肃省"),
    "63": ("青", "青海省"),
    "64": ("宁", "宁夏回族自治区"),
    "65": ("新", "新疆维吾尔自治区"),
}


@dataclass(frozen=True, slots=True)
class City:
    """A populated place borrowers can live in."""

    index: int
    name_en: str
    name_zh: str
    lat: float
    lon: float
    population: int
    province_code: str
    capital: bool  # provincial (or national) capital: plates there use the letter A


@cache
def load_cities() -> tuple[City, ...]:
    """Mainland cities with a Chinese name, most populous first."""
    text = resources.files("lienwatch.data").joinpath("china_cities.csv").read_text("utf-8")
    cities: list[City] = []
    for row in csv.DictReader(text.splitlines()):
        if row["adm0_a3"] != "CHN" or not row["name_zh"] or row["province_gb2260"] not in PROVINCES:
            continue
        cities.append(
            City(
                index=len(cities),
                name_en=row["name_en"],
                name_zh=row["name_zh"],
                lat=float(row["lat"]),
                lon=float(row["lon"]),
                population=int(float(row["population"])),
                province_code=row["province_gb2260"],
                capital=row["featurecla"] in ("Admin-0 capital", "Admin-1 capital"),
            )
        )
    return tuple(cities)


def offset(lat: np.ndarray, lon: np.ndarray, east_m: np.ndarray, north_m: np.ndarray):
    """Points moved by metres east and north (equirectangular; exact enough below ~100 km)."""
    dlat = np.degrees(north_m / EARTH_RADIUS_M)
    dlon = np.degrees(east_m / (EARTH_RADIUS_M * np.cos(np.radians(lat))))
    return lat + dlat, lon + dlon


def distance_m(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle (haversine) distance in metres; works on scalars and arrays."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = (
        np.sin((p2 - p1) / 2) ** 2
        + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def scatter(rng: np.random.Generator, lat: float, lon: float, min_m: float, max_m: float, n: int):
    """``n`` points at random bearings, area-uniform in the ring [min_m, max_m] around a centre."""
    radius = np.sqrt(rng.uniform(min_m**2, max_m**2, n))
    bearing = rng.uniform(0, 2 * math.pi, n)
    return offset(
        np.full(n, lat), np.full(n, lon), radius * np.sin(bearing), radius * np.cos(bearing)
    )


class ProvinceGrid:
    """Province lookup on a 0.02° raster of the Natural Earth province polygons."""

    def __init__(self, features: list[dict[str, Any]]) -> None:
        rows = round((_LAT1 - _LAT0) / _CELL_DEG)
        cols = round((_LON1 - _LON0) / _CELL_DEG)
        codes = np.zeros((rows, cols), dtype=np.int16)
        for feature in features:
            code = int(feature["properties"]["gb2260"])
            geometry = feature["geometry"]
            polygons = geometry["coordinates"]
            if geometry["type"] == "Polygon":
                polygons = [polygons]
            row_window, col_window, mask = _rasterize(polygons, rows, cols)
            codes[row_window, col_window][mask] = code
        self.codes = codes
        # A cell is "safely" in a province when no other province touches its 3×3 neighbourhood
        # (the sea does not count, so that coastal homes and Xiamen's centre stay in Fujian).
        padded = np.pad(codes, 1)
        high = np.zeros_like(codes)
        low = np.full_like(codes, np.iinfo(np.int16).max)
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                shifted = padded[dy : dy + rows, dx : dx + cols]
                high = np.maximum(high, shifted)
                low = np.minimum(low, np.where(shifted == 0, low, shifted))
        self.interior = np.where(low == high, high, -1)

    def _cells(self, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        row = np.floor((np.asarray(lat) - _LAT0) / _CELL_DEG).astype(np.int64)
        col = np.floor((np.asarray(lon) - _LON0) / _CELL_DEG).astype(np.int64)
        inside = (row >= 0) & (row < self.codes.shape[0]) & (col >= 0) & (col < self.codes.shape[1])
        return np.where(inside, row, 0), np.where(inside, col, 0), inside

    def province(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """GB/T 2260 codes (int, 0 = none) of points, from the raster."""
        row, col, inside = self._cells(lat, lon)
        return np.where(inside, self.codes[row, col], 0)

    def safely_in(self, lat, lon, province_code) -> np.ndarray:
        """Whether each point lies in its province at least one cell (~2 km) from the border.

        ``province_code`` is a GB/T 2260 code (``"44"`` or 44) or an array of them, one a point.
        """
        row, col, inside = self._cells(lat, lon)
        return inside & (self.interior[row, col] == np.asarray(province_code).astype(np.int64))


def _rasterize(polygons: list, rows: int, cols: int) -> tuple[slice, slice, np.ndarray]:
    """Mask of cells whose centre lies inside the polygons (even-odd rule, scanlines).

    Returns the bounding window of the polygons and the boolean mask within it.
    """
    rings = [np.asarray(ring, dtype=np.float64) for polygon in polygons for ring in polygon]
    allxy = np.concatenate(rings)
    row0 = max(int((allxy[:, 1].min() - _LAT0) / _CELL_DEG) - 1, 0)
    row1 = min(int((allxy[:, 1].max() - _LAT0) / _CELL_DEG) + 2, rows)
    col0 = max(int((allxy[:, 0].min() - _LON0) / _CELL_DEG) - 1, 0)
    col1 = min(int((allxy[:, 0].max() - _LON0) / _CELL_DEG) + 2, cols)
    toggles = np.zeros((row1 - row0, col1 - col0 + 1), dtype=np.int32)
    for xy in rings:
        x0, y0 = xy[:-1, 0], xy[:-1, 1]
        x1, y1 = xy[1:, 0], xy[1:, 1]
        # Scanline rows whose centre lies in [min(y0, y1), max(y0, y1)) for each edge.
        first = np.ceil((np.minimum(y0, y1) - _LAT0) / _CELL_DEG - 0.5).astype(np.int64)
        last = np.ceil((np.maximum(y0, y1) - _LAT0) / _CELL_DEG - 0.5).astype(np.int64)
        spans = np.maximum(last - first, 0)
        edge = np.repeat(np.arange(len(x0)), spans)
        row = (
            np.repeat(first, spans)
            + np.arange(spans.sum())
            - np.repeat(np.cumsum(spans) - spans, spans)
        )
        yc = _LAT0 + (row + 0.5) * _CELL_DEG
        xc = x0[edge] + (yc - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
        col = np.ceil((xc - _LON0) / _CELL_DEG - 0.5).astype(np.int64)
        np.add.at(toggles, (row - row0, np.clip(col - col0, 0, col1 - col0)), 1)
    mask = np.cumsum(toggles, axis=1)[:, :-1] % 2 == 1
    return slice(row0, row1), slice(col0, col1), mask


@cache
def province_grid() -> ProvinceGrid:
    """The province raster, built once per process from ``china_provinces.geojson``."""
    text = resources.files("lienwatch.data").joinpath("china_provinces.geojson").read_text("utf-8")
    return ProvinceGrid(json.loads(text)["features"])
