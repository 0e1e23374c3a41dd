"""KPI arithmetic: rates with Wilson score intervals, and the champion/challenger comparison
(difference of two proportions with Newcombe's hybrid score interval)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist


@dataclass(frozen=True, slots=True)
class Rate:
    hits: int
    total: int
    low: float | None  # the confidence interval of the rate
    high: float | None

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None

    def as_dict(self) -> dict[str, object]:
        return {
            "hits": self.hits,
            "total": self.total,
            "rate": _round(self.value),
            "ci": [_round(self.low), _round(self.high)],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def rate(hits: int, total: int, *, confidence: float = 0.95) -> Rate:
    """``hits / total`` with its Wilson score interval (sound for small samples and 0 or 1)."""
    if not 0 <= hits <= total:
        raise ValueError(f"hits: {hits} is not within 0..{total}")
    if total == 0:
        return Rate(0, 0, None, None)
    z = _z(confidence)
    p = hits / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return Rate(hits, total, max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True, slots=True)
class Comparison:
    champion: Rate
    challenger: Rate
    difference: float | None  # challenger − champion
    low: float | None
    high: float | None

    @property
    def significant(self) -> bool:
        """The interval of the difference excludes zero."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    def as_dict(self) -> dict[str, object]:
        return {
            "champion": self.champion.as_dict(),
            "challenger": self.challenger.as_dict(),
            "difference": _round(self.difference),
            "ci": [_round(self.low), _round(self.high)],
            "significant": self.significant,
        }


def compare(champion: Rate, challenger: Rate) -> Comparison:
    """Challenger − champion with Newcombe's interval built from the two Wilson intervals."""
    p1, p2 = champion.value, challenger.value
    if p1 is None or p2 is None:
        return Comparison(champion, challenger, None, None, None)
    assert champion.low is not None and champion.high is not None
    assert challenger.low is not None and challenger.high is not None
    d = p2 - p1
    low = d - math.sqrt((p2 - challenger.low) ** 2 + (champion.high - p1) ** 2)
    high = d + math.sqrt((challenger.high - p2) ** 2 + (p1 - champion.low) ** 2)
    return Comparison(champion, challenger, d, low, high)
