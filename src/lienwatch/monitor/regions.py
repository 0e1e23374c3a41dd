"""Lender-defined permitted regions for ``left_region``: named polygons and circles (GeoJSON)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import ArrayLike

from lienwatch.domain.geo import haversine_m
from lienwatch.monitor.model import MonitorInputError


@dataclass(frozen=True, slots=True)
class _Region:
    polygons: Any  # one (Multi)Polygon of every polygon feature of the name, or None
    circles: np.ndarray  # (k, 3): lat, lon, radius_m of every circle feature of the name


class RegionLibrary:
    """Permitted regions by name. A region is the union of every feature carrying its name:
    Polygon / MultiPolygon features, and Point features with a ``radius_m`` property (circles,
    great-circle distance). A point on a boundary is inside."""

    def __init__(self, feature_collection: Mapping[str, Any]) -> None:
        """Validate and index a GeoJSON FeatureCollection whose features have a ``name``.

        Raises:
            MonitorInputError: naming the feature index of a missing name, a geometry that is
                neither a valid polygon nor a point with a positive ``radius_m``, or a
                collection that is not one.
        """
        if feature_collection.get("type") != "FeatureCollection":
            raise MonitorInputError("regions: not a GeoJSON FeatureCollection")
        polygons: dict[str, list[Any]] = {}
        circles: dict[str, list[tuple[float, float, float]]] = {}
        for index, feature in enumerate(feature_collection.get("features") or []):
            name, shape, radius = _parse_feature(index, feature)
            if radius is None:
                polygons.setdefault(name, []).append(shape)
            else:
                circles.setdefault(name, []).append((shape.y, shape.x, radius))
        self._regions: dict[str, _Region] = {}
        for name in sorted(polygons.keys() | circles.keys()):
            union = shapely.union_all(polygons[name]) if name in polygons else None
            if union is not None:
                shapely.prepare(union)
            ring = np.array(circles.get(name, []), dtype=np.float64).reshape(-1, 3)
            self._regions[name] = _Region(union, ring)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._regions)

    def __contains__(self, name: object) -> bool:
        return name in self._regions

    def __len__(self) -> int:
        return len(self._regions)

    def contains(self, name: str, lat: ArrayLike, lon: ArrayLike) -> np.ndarray:
        """Whether each point lies inside region ``name`` (KeyError for an unknown name)."""
        region = self._regions[name]
        lat = np.atleast_1d(np.asarray(lat, dtype=np.float64))
        lon = np.atleast_1d(np.asarray(lon, dtype=np.float64))
        inside = np.zeros(lat.shape, dtype=bool)
        if region.polygons is not None:
            inside |= shapely.intersects_xy(region.polygons, lon, lat)
        for c_lat, c_lon, radius in region.circles:
            rest = ~inside
            inside[rest] = haversine_m(lat[rest], lon[rest], c_lat, c_lon) <= radius
        return inside


def _parse_feature(index: int, feature: Any) -> tuple[str, Any, float | None]:
    """(name, shape, radius_m for a circle or None for a polygon) of one feature."""
    where = f"regions: feature {index}"
    if not isinstance(feature, Mapping):
        raise MonitorInputError(f"{where}: not a GeoJSON Feature")
    properties = feature.get("properties") or {}
    name = properties.get("name")
    if not isinstance(name, str) or not name.strip():
        raise MonitorInputError(f"{where}: name is missing or empty")
    try:
        shape = shapely.geometry.shape(feature.get("geometry") or {})
    except (ValueError, TypeError, AttributeError, KeyError, shapely.errors.GEOSException) as exc:
        raise MonitorInputError(f"{where}: unreadable geometry ({exc})") from None
    if shape.geom_type == "Point":
        radius = properties.get("radius_m")
        ok = isinstance(radius, int | float) and not isinstance(radius, bool)
        if not ok or not math.isfinite(radius) or radius <= 0:
            raise MonitorInputError(f"{where}: radius_m {radius!r} is not a positive number")
        if not (abs(shape.y) <= 90 and abs(shape.x) <= 180):
            raise MonitorInputError(f"{where}: centre {shape.x}, {shape.y} is out of range")
        return name.strip(), shape, float(radius)
    if shape.geom_type not in {"Polygon", "MultiPolygon"}:
        raise MonitorInputError(f"{where}: geometry is a {shape.geom_type}, not a polygon or point")
    if shape.is_empty or not shape.is_valid:
        raise MonitorInputError(f"{where}: invalid polygon ({shapely.is_valid_reason(shape)})")
    return name.strip(), shape, None
