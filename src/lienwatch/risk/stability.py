"""Population stability: how far a distribution over the same bins has moved (PSI)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from itertools import pairwise

#: A bin empty on one side counts as this share, so one empty bin does not make PSI infinite.
FLOOR = 1e-4


def psi(expected: Sequence[int], actual: Sequence[int]) -> float | None:
    """Σ (a − e) · ln(a / e) over the bins' shares; None when either side is empty. Read as
    usual: under 0.1 stable, 0.1 to 0.25 a shift worth a look, over 0.25 a shift."""
    if len(expected) != len(actual):
        raise ValueError(f"expected has {len(expected)} bins, actual {len(actual)}")
    e_total, a_total = sum(expected), sum(actual)
    if not e_total or not a_total:
        return None
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e_share, a_share = max(e / e_total, FLOOR), max(a / a_total, FLOOR)
        total += (a_share - e_share) * math.log(a_share / e_share)
    return total


#: Score bands of a scorecard's reference: its training scores cut at their deciles.
SCORE_BANDS = 10


def score_edges(scores: Sequence[float], bands: int = SCORE_BANDS) -> list[float]:
    """The inner edges cutting ``scores`` (a fit's training scores) into ``bands`` bands of
    about equal counts; repeated cut points are kept once."""
    ordered = sorted(scores)
    if not ordered:
        return []
    cuts = {ordered[min(len(ordered) - 1, (k * len(ordered)) // bands)] for k in range(1, bands)}
    return sorted(cuts - {ordered[0]})


def band_counts(scores: Sequence[float], edges: Sequence[float]) -> list[int]:
    """How many ``scores`` fall in each band ``[edge k-1, edge k)`` (the first open below,
    the last open above): ``len(edges) + 1`` counts."""
    counts = [0] * (len(edges) + 1)
    for score in scores:
        counts[bisect.bisect_right(edges, score)] += 1
    return counts


def band_labels(edges: Sequence[float]) -> list[str]:
    """``< e1``, ``e1–e2``, …, ``≥ en``: the bands of :func:`band_counts` as a reader sees them."""
    if not edges:
        return ["all"]
    inner = [f"{low:g}–{high:g}" for low, high in pairwise(edges)]
    return [f"< {edges[0]:g}", *inner, f"≥ {edges[-1]:g}"]


def distribution_psi(
    labels: Sequence[str], reference: Sequence[int], actual: Mapping[str, int]
) -> dict[str, object]:
    """One characteristic's (or the score's) stability: for each label, the reference count
    and the actual count, and the PSI between them (None while either side is empty).
    Actual labels the reference does not know count in no bin (they cannot be compared)."""
    counts = [actual.get(label, 0) for label in labels]
    found = psi(list(reference), counts)
    return {
        "psi": None if found is None else round(found, 4),
        "bins": [{"label": label, "reference": ref, "actual": n}
                 for label, ref, n in zip(labels, reference, counts, strict=True)],
    }  # fmt: skip
