"""Offline reverse geocoding against exact point-in-polygon tests and real city locations."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import shapely

from lienwatch.data import china_cities_csv, china_provinces
from lienwatch.domain.provinces import OUTSIDE, ProvinceIndex


@pytest.fixture(scope="module")
def index() -> ProvinceIndex:
    return ProvinceIndex(china_provinces())


def test_all_34_provinces_with_both_names(index):
    assert len(index.provinces) == 34
    assert index.by_code("44").name_zh == "广东省"
    assert index.by_code("65").name_en == "Xinjiang"
    with pytest.raises(ValueError, match="'99'"):
        index.by_code("99")


def test_grid_answers_equal_exact_polygon_tests(index):
    rng = np.random.default_rng(2026)
    lon = rng.uniform(73, 135, 200_000)
    lat = rng.uniform(18, 54, 200_000)
    exact = np.full(lon.size, OUTSIDE)
    for i, polygon in enumerate(index._shapes):
        exact[shapely.contains_xy(polygon, lon, lat) & (exact == OUTSIDE)] = i
    got = index.lookup(lat, lon)
    inside = exact != OUTSIDE
    assert np.array_equal(got[inside], exact[inside])
    # Points outside every polygon get a province only when within the coast tolerance of it.
    rescued = ~inside & (got != OUTSIDE)
    distance = shapely.distance(
        shapely.points(lon[rescued], lat[rescued]), index._shapes[got[rescued]]
    )
    assert distance.max() <= 0.1
    far = ~inside & (got == OUTSIDE)
    sample = np.flatnonzero(far)[:500]
    points = shapely.points(lon[sample], lat[sample])
    nearest = np.min([shapely.distance(points, p) for p in index._shapes], axis=0)
    assert nearest.min() > 0.09


def test_a_few_points_get_the_answers_they_get_among_many(index):
    """A handful of points is tested against every bounding box at once, many points one
    province at a time: the answers are the same, near borders and coasts too."""
    rng = np.random.default_rng(7)
    outline = shapely.get_coordinates(shapely.boundary(index._shapes))
    near = outline[rng.integers(0, len(outline), 1_000)] + rng.normal(0, 0.02, (1_000, 2))
    lon, lat = near[:, 0], near[:, 1]
    found = index.lookup(lat, lon)
    codes = index.codes(found)
    together = index.within(lat, lon, codes, margin_deg=0.02)
    assert together.any() and not together.all()
    for part in np.array_split(np.arange(lon.size), 100):  # ten points at a time
        assert np.array_equal(index.lookup(lat[part], lon[part]), found[part])
        assert np.array_equal(index.within(lat[part], lon[part], codes[part], margin_deg=0.02),
                              together[part])  # fmt: skip


def test_every_shipped_city_lands_in_its_province(index):
    rows = list(csv.DictReader(io.StringIO(china_cities_csv())))
    lon = np.array([float(r["lon"]) for r in rows])
    lat = np.array([float(r["lat"]) for r in rows])
    codes = index.codes(index.lookup(lat, lon))
    wrong = [
        (r["name_en"], r["province_gb2260"], c)
        for r, c in zip(rows, codes, strict=True)
        if c != r["province_gb2260"]
    ]
    assert wrong == []


@pytest.mark.parametrize(
    ("lon", "lat", "code"),
    [
        (118.0894, 24.4798, "35"),  # Xiamen, just off Natural Earth's coastline
        (113.5767, 22.2707, "44"),  # Zhuhai
        (121.4737, 31.2304, "31"),  # Shanghai
        (87.6168, 43.8256, "65"),  # Urumqi
        (114.1694, 22.3193, "81"),  # Hong Kong
    ],
)
def test_known_places(index, lon, lat, code):
    assert index.province_of(lat, lon).code == code


def test_outside_china_and_bad_input(index):
    assert index.province_of(35.69, 139.69) is None  # Tokyo
    assert index.province_of(40.7, -74.0) is None  # New York, off the grid
    assert index.lookup(np.array([30.0]), np.array([np.nan]))[0] == OUTSIDE
    with pytest.raises(ValueError, match="shape"):
        index.lookup(np.zeros(3), np.zeros(2))
