"""Where things are: cities, provinces, scattering points around a centre.

City and province data come from the Natural Earth extracts shipped in ``lienwatch/data``;
province membership is answered by :class:`lienwatch.domain.provinces.ProvinceIndex`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import ArrayLike

from lienwatch.data import china_cities_csv, province_index
from lienwatch.domain.geo import offset_m

_MARGIN_DEG = 0.02  # "safely inside": no other province within about 2 km

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
    text = china_cities_csv()
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


def scatter(rng: np.random.Generator, lat: float, lon: float, min_m: float, max_m: float, n: int):
    """``n`` points at random bearings, area-uniform in the ring [min_m, max_m] around a centre."""
    radius = np.sqrt(rng.uniform(min_m**2, max_m**2, n))
    bearing = rng.uniform(0, 2 * math.pi, n)
    return offset_m(
        np.full(n, lat), np.full(n, lon), radius * np.sin(bearing), radius * np.cos(bearing)
    )


def safely_in(lat: ArrayLike, lon: ArrayLike, province_code: ArrayLike) -> np.ndarray:
    """Whether each point lies in its province with no other province within ~2 km.

    Normal profiles are kept inside their province by this test (the sea does not count, so
    coastal homes and Xiamen's centre stay in Fujian).
    """
    return province_index().within(lat, lon, province_code, margin_deg=_MARGIN_DEG)


def province_codes(lat: ArrayLike, lon: ArrayLike) -> np.ndarray:
    """GB/T 2260 codes of points ("" outside China)."""
    index = province_index()
    return index.codes(index.lookup(lat, lon))
