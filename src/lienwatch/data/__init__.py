"""Data files shipped with lienwatch (Natural Earth, public domain; see SOURCES.md)."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any


@cache
def china_provinces() -> dict[str, Any]:
    """The 34 province-level units of China as a GeoJSON FeatureCollection (Natural Earth 1:10m)."""
    return json.loads(files(__package__).joinpath("china_provinces.geojson").read_text("utf-8"))


def china_cities_csv() -> str:
    """The text of china_cities.csv: 427 populated places with population and province."""
    return files(__package__).joinpath("china_cities.csv").read_text("utf-8")
