"""Travel time of a field visit from the borrower's province and city: a data table
(``rules/travel.csv`` is shipped) of one-way minutes from the field office that serves a city,
and the rule the shipped table was derived by from the Natural Earth populated places shipped
in ``lienwatch/data`` (public domain; see its SOURCES.md):

- the lender keeps field agents in every city of its province with at least ``office_from``
  people (500,000, Natural Earth's ``population``) and in every capital (``Admin-0 capital``,
  ``Admin-0 region capital``, ``Admin-1 capital``); a city is served from the nearest;
- the road is the great-circle distance times ``circuity`` (1.3), driven at ``speed_kmh``
  (60), plus ``in_town`` minutes (20) to find the address, at most ``max_one_way`` (180: a
  farther trip is planned as a day's work whatever its length);
- a city not in the table takes its province's median, an unknown province the rules'
  ``unknown`` minutes.

A visit costs its on-site minutes plus the round trip."""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lienwatch.domain.geo import haversine_m
from lienwatch.followup.model import FollowupError

CAPITALS = frozenset({"Admin-0 capital", "Admin-0 region capital", "Admin-1 capital"})
COLUMNS = ("province", "city", "city_zh", "office", "km", "minutes")


@dataclass(frozen=True, slots=True)
class TravelRule:
    """How a one-way trip is timed from its distance."""

    in_town: int = 20
    circuity: float = 1.3
    speed_kmh: float = 60.0
    max_one_way: int = 180
    office_from: int = 500_000  # people: a city this large has its own field agents

    def minutes(self, km: float) -> int:
        return min(self.max_one_way, round(self.in_town + km * self.circuity / self.speed_kmh * 60))


@dataclass(frozen=True, slots=True)
class TravelTable:
    """One-way minutes by (province code, city name); a province's median for a city the
    table does not name; ``unknown`` for a province it does not know."""

    minutes: Mapping[tuple[str, str], int]
    medians: Mapping[str, int]
    unknown: int

    def one_way(self, province: str | None, city: str | None) -> int:
        found = self.minutes.get((province or "", city or ""))
        return found if found is not None else self.medians.get(province or "", self.unknown)


def derive(places: Iterable[Mapping[str, str]], rule: TravelRule) -> list[dict[str, object]]:
    """The table's rows from Natural Earth populated places (``china_cities.csv``'s columns
    ``name_en``, ``name_zh``, ``lat``, ``lon``, ``featurecla``,
    ``population``, ``province_gb2260``), each city timed from the nearest field office of
    its province (provinces without one are left out)."""
    rows = [p for p in places if p["province_gb2260"]]
    capitals: dict[str, list[Mapping[str, str]]] = {}
    for place in rows:
        if place["featurecla"] in CAPITALS or float(place["population"]) >= rule.office_from:
            capitals.setdefault(place["province_gb2260"], []).append(place)
    table = []
    for place in rows:
        offices = capitals.get(place["province_gb2260"])
        if not offices:
            continue
        km, office = min(
            (float(haversine_m(float(place["lat"]), float(place["lon"]),
                               float(o["lat"]), float(o["lon"]))) / 1000, o["name_en"])
            for o in offices
        )  # fmt: skip
        table.append({"province": place["province_gb2260"], "city": place["name_en"],
                      "city_zh": place["name_zh"], "office": office, "km": round(km, 1),
                      "minutes": rule.minutes(km)})  # fmt: skip
    return sorted(table, key=lambda row: (str(row["province"]), str(row["city"])))


def to_csv(rows: Iterable[Mapping[str, object]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def parse_table(text: str, *, unknown: int, source: str) -> TravelTable:
    """The table from CSV text with ``province``, ``city`` and ``minutes`` columns (and
    ``city_zh``, the city's Chinese name, when given)."""
    minutes: dict[tuple[str, str], int] = {}
    for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            value = int(row["minutes"])
            key = (row["province"].strip(), row["city"].strip())
        except (KeyError, TypeError, ValueError, AttributeError):
            raise FollowupError(
                f"{source}:{n}: a row needs province, city and whole minutes") from None
        if value < 0:
            raise FollowupError(f"{source}:{n}: minutes must not be negative")
        minutes[key] = value
        if (row.get("city_zh") or "").strip():  # a book may name its cities in Chinese
            minutes.setdefault((key[0], row["city_zh"].strip()), value)
    by_province: dict[str, list[int]] = {}
    for (province, _), value in minutes.items():
        by_province.setdefault(province, []).append(value)
    medians = {p: round(statistics.median(m)) for p, m in by_province.items()}
    return TravelTable(minutes, medians, unknown)
