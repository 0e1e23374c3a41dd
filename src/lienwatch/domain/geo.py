"""Geometry on the WGS-84 sphere, vectorized over numpy arrays (degrees in, metres out)."""

from __future__ import annotations

import math

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


def unit_vectors(lat: ArrayLike, lon: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points as unit vectors (x, y, z) from the Earth's centre.

    Per-point state machines compare squared chords of these vectors against
    :func:`chord2_of_m` thresholds: three subtractions instead of trigonometry per fix.
    """
    phi, lam = np.radians(lat), np.radians(lon)
    cos_phi = np.cos(phi)
    return cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi)


def chord2_of_m(metres: float) -> float:
    """The squared unit-sphere chord of a great-circle distance in metres."""
    return (2.0 * math.sin(min(metres / EARTH_RADIUS_M, math.pi) / 2.0)) ** 2


def m_of_chord2(chord2: float) -> float:
    """The great-circle distance in metres of a squared unit-sphere chord."""
    return 2.0 * EARTH_RADIUS_M * math.asin(min(math.sqrt(chord2) / 2.0, 1.0))
