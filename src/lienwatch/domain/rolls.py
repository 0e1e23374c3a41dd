"""The one definition of roll rate and cure rate (pure; the report, the follow-up KPIs, the
console and the CLI all compute them here).

Loans are observed twice, at a start and at an end (two month-ends for the report's
month-over-month matrix; the first and the last nightly snapshot of a period for the follow-up
KPIs; a case's bucket when it opened and its loan's standing when it ended). Each observation
is a :class:`Move`: the bucket at the start, the bucket at the end and a weight (the
outstanding principal at the start in fen, or 1 to count loans or cases).

* **Roll rate** of bucket *b*: of the weight in *b* at the start, the share that is in a
  **deeper** bucket at the end (any deeper bucket: over one month a loan can only move one
  bucket deeper unless a bucket is shorter than the month).
* **Cure rate** of bucket *b* (not the first): the share that is in the **first** bucket
  (current) at the end.

Only moves observed at both ends count; a rate over nothing is ``None``, never 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Move:
    """One loan (or case) observed at the start in ``start`` and at the end in ``end``."""

    start: str
    end: str
    weight: int = 1  # fen of outstanding principal at the start, or 1 to count


@dataclass(frozen=True, slots=True)
class Flow:
    """Where the weight of one bucket at the start was at the end."""

    bucket: str
    count: int  # moves from this bucket
    weight: int  # their weight at the start
    to: dict[str, int] = field(default_factory=dict)  # end bucket -> weight
    rolled: int = 0  # weight in a deeper bucket at the end
    cured: int = 0  # weight in the first bucket at the end (0 for the first bucket)

    @property
    def roll_rate(self) -> float | None:
        return self.rolled / self.weight if self.weight else None

    @property
    def cure_rate(self) -> float | None:
        return self.cured / self.weight if self.weight else None

    def share_to(self, bucket: str) -> float | None:
        """The share of this bucket's weight that ended in ``bucket`` (a matrix cell)."""
        return self.to.get(bucket, 0) / self.weight if self.weight else None


def flows(moves: Iterable[Move], buckets: Sequence[str]) -> list[Flow]:
    """One :class:`Flow` per bucket of ``buckets`` (current first, deepest last), in order.

    Raises :class:`ValueError` naming a bucket that is not one of ``buckets``."""
    depth = {name: i for i, name in enumerate(buckets)}
    totals = {name: [0, 0, 0, 0, {}] for name in buckets}  # count, weight, rolled, cured, to
    for move in moves:
        for name in (move.start, move.end):
            if name not in depth:
                raise ValueError(f"bucket: {name!r} is not one of {', '.join(buckets)}")
        total = totals[move.start]
        total[0] += 1
        total[1] += move.weight
        total[4][move.end] = total[4].get(move.end, 0) + move.weight
        if depth[move.end] > depth[move.start]:
            total[2] += move.weight
        if depth[move.end] == 0 and depth[move.start] > 0:
            total[3] += move.weight
    return [
        Flow(name, count, weight, to, rolled, cured)
        for name, (count, weight, rolled, cured, to) in totals.items()
    ]
