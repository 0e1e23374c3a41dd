"""Population stability: how far a distribution over the same bins has moved (PSI)."""

from __future__ import annotations

import math
from collections.abc import Sequence

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
