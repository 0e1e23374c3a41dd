"""Data files shipped with lienwatch (Natural Earth, public domain; the German credit data, UCI,
CC BY 4.0; see SOURCES.md)."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from lienwatch.domain.provinces import ProvinceIndex


@cache
def china_provinces() -> dict[str, Any]:
    """The 34 province-level units of China as a GeoJSON FeatureCollection (Natural Earth 1:10m)."""
    return json.loads(files(__package__).joinpath("china_provinces.geojson").read_text("utf-8"))


@cache
def province_index() -> ProvinceIndex:
    """The shipped provinces indexed for lookups, built once per process (about a second)."""
    return ProvinceIndex(china_provinces())


def china_cities_csv() -> str:
    """The text of china_cities.csv: 427 populated places with population and province."""
    return files(__package__).joinpath("china_cities.csv").read_text("utf-8")


def german_credit_path() -> Path:
    """germancredit.csv: the Statlog German credit data, 1,000 applications (UCI, CC BY 4.0)."""
    return Path(str(files(__package__).joinpath("germancredit.csv")))
