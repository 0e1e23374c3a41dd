"""Geometry on the WGS-84 sphere, vectorized over numpy arrays (degrees in, metres out)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)


def haversine_m(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> np.ndarray:
    """Great-circle distance in metres between points given in degrees."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = (
        np.sin((p2 - p1) / 2) ** 2
        + np.cos(p1) * np.cos(p2) * np.sin(np.radians(np.subtract(lon2, lon1)) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def offset_m(
    lat: ArrayLike, lon: ArrayLike, east_m: ArrayLike, north_m: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Points moved by metres east and north (equirectangular: exact enough below ~100 km)."""
    dlat = np.degrees(np.divide(north_m, EARTH_RADIUS_M))
    dlon = np.degrees(np.divide(east_m, EARTH_RADIUS_M * np.cos(np.radians(lat))))
    return np.add(lat, dlat), np.add(lon, dlon)
