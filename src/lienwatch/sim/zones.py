"""Risk zones: small circle-ish polygons around places where pledged cars end up."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lienwatch.domain.geo import offset_m
from lienwatch.sim.places import City, safely_in, scatter

ZONE_CATEGORIES = (
    "used_car_market",
    "pawnshop",
    "secondary_pledge_lender",
    "scrapyard",
    "tracker_removal_shop",
)
# Where a secondary pledge takes the car (the lender, or a market/pawnshop that fronts for one).
PLEDGE_CATEGORIES = ("secondary_pledge_lender", "used_car_market", "pawnshop")
_NAME_PATTERNS = {
    "used_car_market": "{city}{word}二手车交易市场",
    "pawnshop": "{city}{word}典当行",
    "secondary_pledge_lender": "{city}{word}汽车抵押服务部",
    "scrapyard": "{city}{word}报废汽车回收拆解厂",
    "tracker_removal_shop": "{word}汽车电子GPS安装维修店",
}
_WORDS = [
    "金盛",
    "恒信",
    "鑫达",
    "宝利",
    "永兴",
    "通达",
    "华安",
    "利民",
    "诚达",
    "兴旺",
    "好运",
    "聚鑫",
]
_VERTICES = 20


@dataclass(frozen=True, slots=True)
class RiskZone:
    """One zone: a circle-ish polygon of ``radius_m`` around its centre."""

    zone_id: str
    category: str
    name: str
    city: City
    lat: float
    lon: float
    radius_m: float

    def feature(self) -> dict[str, Any]:
        """The zone as a GeoJSON Feature (exterior ring counter-clockwise, per RFC 7946)."""
        angles = np.linspace(0, 2 * math.pi, _VERTICES, endpoint=False)
        # A slight, deterministic wobble so the polygon is not a perfect circle; never below 0.9 r.
        radius = self.radius_m * (0.95 + 0.05 * np.sin(3 * angles + len(self.zone_id)))
        lat, lon = offset_m(
            np.full(_VERTICES, self.lat),
            np.full(_VERTICES, self.lon),
            radius * np.cos(angles),
            radius * np.sin(angles),
        )
        ring = [[round(float(x), 6), round(float(y), 6)] for x, y in zip(lon, lat, strict=True)]
        ring.append(ring[0])
        return {
            "type": "Feature",
            "id": self.zone_id,
            "properties": {
                "zone_id": self.zone_id,
                "category": self.category,
                "name": self.name,
                "city": self.city.name_en,
                "province_code": self.city.province_code,
                "centre": [round(self.lon, 6), round(self.lat, 6)],
                "radius_m": round(self.radius_m, 1),
            },
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }


def build_zones(rng: np.random.Generator, cities: list[City]) -> list[RiskZone]:
    """Four to seven zones in each city: one of each pledge category plus some others."""
    zones: list[RiskZone] = []
    for city in cities:
        extra = rng.choice(ZONE_CATEGORIES, int(rng.integers(1, 5)))
        for category in (*PLEDGE_CATEGORIES, *extra):
            lat, lon = scatter(rng, city.lat, city.lon, 2_000, 12_000, 8)
            ok = safely_in(lat, lon, city.province_code)
            pick = int(np.argmax(ok)) if ok.any() else 0
            zone_id = f"RZ{len(zones) + 1:05d}"
            name = _NAME_PATTERNS[str(category)].format(city=city.name_zh, word=rng.choice(_WORDS))
            zones.append(
                RiskZone(
                    zone_id,
                    str(category),
                    name,
                    city,
                    float(lat[pick]),
                    float(lon[pick]),
                    float(rng.uniform(100, 300)),
                )
            )
    return zones


def feature_collection(zones: list[RiskZone]) -> dict[str, Any]:
    """All zones as one GeoJSON FeatureCollection."""
    return {"type": "FeatureCollection", "features": [zone.feature() for zone in zones]}
