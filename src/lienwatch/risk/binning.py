"""Weight-of-evidence binning and information value, fitted on training rows only.

A characteristic is cut into bins; each bin carries its weight of evidence

    WOE = ln( (goods in bin / all goods) / (bads in bin / all bads) )

(positive: better than average), with half a row added to each count so that a bin with no
bads or no goods keeps a finite WOE. The information value of a characteristic is
``Σ (good share − bad share) · WOE`` over its bins.

- **Numeric** characteristics are pre-cut at training quantiles, then merged by dynamic
  programming into the bins of highest IV whose bad rate is monotonic (ascending or
  descending, whichever gives the higher IV), each bin holding at least ``min_share`` of the
  training rows. Where a monotonic trend does not make sense the caller asks for
  ``trend="free"``: adjacent pre-bins are merged only for size.
- **Categorical** characteristics keep one bin per category with at least ``min_share`` of the
  rows; rarer categories are pooled into one ``other`` bin (also the bin of a category never
  seen in training).
- **Missing values** (NaN, empty text) are their own bin. With no missing value in training
  the bin has WOE 0 (the average applicant), and the table says so (``count`` 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from lienwatch.errors import LienwatchError

Trend = Literal["auto", "ascending", "descending", "peak", "valley", "free"]
SHAPES = ("ascending", "descending")
#: The label of the bin pooling categories rarer than ``min_share`` and unseen ones.
OTHER = "other"
MISSING = "missing"


class BinningError(LienwatchError, ValueError):
    """A characteristic that cannot be binned (no rows, one class only, a bad option)."""


@dataclass(frozen=True, slots=True)
class Bin:
    """One bin of a characteristic: what it holds, its training counts and its WOE.

    A numeric bin holds ``low <= x < high`` (``None`` = unbounded); a categorical bin holds
    the ``categories`` listed; the missing bin holds NaN or empty values."""

    label: str
    woe: float
    goods: int
    bads: int
    low: float | None = None
    high: float | None = None
    categories: tuple[str, ...] = ()
    missing: bool = False

    @property
    def count(self) -> int:
        return self.goods + self.bads


@dataclass(frozen=True, slots=True)
class Binning:
    """The fitted bins of one characteristic (numeric or categorical), in order, the missing
    bin last; ``iv`` is its information value on the training rows."""

    name: str
    kind: Literal["numeric", "categorical"]
    bins: tuple[Bin, ...]
    iv: float

    def bin_index(self, values: np.ndarray) -> np.ndarray:
        """The index into :attr:`bins` of each value (numbers or text as the kind says)."""
        if self.kind == "numeric":
            x = np.asarray(values, dtype=float)
            edges = np.array([b.high for b in self.bins[:-2]], dtype=float)
            index = np.searchsorted(edges, x, side="right")
            return np.where(np.isnan(x), len(self.bins) - 1, index)
        lookup = {c: i for i, b in enumerate(self.bins) for c in b.categories}
        other = next(i for i, b in enumerate(self.bins) if b.label == OTHER)
        last = len(self.bins) - 1
        return np.array(
            [last if _is_missing(v) else lookup.get(str(v), other) for v in values], dtype=np.intp
        )

    def woe(self, values: np.ndarray) -> np.ndarray:
        """The WOE of each value."""
        return np.array([b.woe for b in self.bins])[self.bin_index(values)]


def _is_missing(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def _woe(goods: np.ndarray, bads: np.ndarray, total_goods: int, total_bads: int) -> np.ndarray:
    return np.log(((goods + 0.5) / (total_goods + 0.5)) / ((bads + 0.5) / (total_bads + 0.5)))


def _iv(goods: np.ndarray, bads: np.ndarray, total_goods: int, total_bads: int) -> np.ndarray:
    """The IV contribution of bins with these counts (elementwise)."""
    share_good = (goods + 0.5) / (total_goods + 0.5)
    share_bad = (bads + 0.5) / (total_bads + 0.5)
    return (share_good - share_bad) * np.log(share_good / share_bad)


def _classes(y: np.ndarray) -> tuple[np.ndarray, int, int]:
    bad = np.asarray(y, dtype=bool)
    total_bads = int(bad.sum())
    total_goods = int(bad.size - total_bads)
    if total_bads == 0 or total_goods == 0:
        raise BinningError("binning needs both good and bad rows")
    return bad, total_goods, total_bads


def _prebins(x: np.ndarray, max_prebins: int) -> np.ndarray:
    """Cut points (sorted, each the low edge of a pre-bin after the first) at quantiles."""
    distinct = np.unique(x)
    if distinct.size <= max_prebins:
        return distinct[1:]
    cuts = np.quantile(x, np.linspace(0, 1, max_prebins + 1)[1:-1], method="higher")
    return np.unique(cuts[cuts > distinct[0]])


def _monotonic_prefixes(
    goods: np.ndarray, bads: np.ndarray, total_goods: int, total_bads: int,
    min_count: int, ascending: bool,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """For every prefix ``[0, j)`` of the pre-bins, the highest IV of a partition into bins of
    monotonic bad rate holding ``min_count`` rows each (−inf if none), and the back pointers.

    ``best[i, j]``: the best IV of pre-bins ``[0, j)`` whose last bin is ``[i, j)``."""
    n = goods.size
    cum_g = np.concatenate([[0], np.cumsum(goods)])
    cum_b = np.concatenate([[0], np.cumsum(bads)])
    g = cum_g[None, :] - cum_g[:, None]  # g[i, j]: goods in pre-bins [i, j)
    b = cum_b[None, :] - cum_b[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(g + b > 0, b / (g + b), 0.0)
        value = np.where(g + b >= min_count, _iv(g, b, total_goods, total_bads), -np.inf)
    best = np.full((n + 1, n + 1), -np.inf)
    back = np.full((n + 1, n + 1), -1, dtype=int)
    best[0, 1:] = value[0, 1:]
    for i in range(1, n):  # every last bin [i, j) at once, j > i
        previous = best[:i, i, None]  # the best prefixes [0, i) by their last bin [k, i)
        later = rate[i, i + 1 :][None, :]
        allowed = rate[:i, i, None] <= later if ascending else rate[:i, i, None] >= later
        candidates = np.where(allowed, previous, -np.inf)
        k = np.argmax(candidates, axis=0)
        reach = candidates[k, np.arange(k.size)] + value[i, i + 1 :]
        best[i, i + 1 :] = reach
        back[i, i + 1 :] = np.where(np.isfinite(reach), k, -1)
    return best, back


def _starts(best: np.ndarray, back: np.ndarray, j: int) -> list[int]:
    """The bin starts of the best partition of the prefix ``[0, j)``."""
    starts, i = [], int(np.argmax(best[:, j]))
    while i > 0:
        starts.append(i)
        i, j = int(back[i, j]), i
    return [0, *reversed(starts)]


def _shaped_partition(
    goods: np.ndarray, bads: np.ndarray, total_goods: int, total_bads: int,
    min_count: int, shape: str,
) -> tuple[list[int], float]:  # fmt: skip
    """Bin starts (pre-bin indexes) of the highest-IV partition whose bad rate follows
    ``shape`` (ascending, descending, peak: up then down, valley: down then up), with its IV."""
    n = goods.size
    first_up = shape in ("ascending", "peak")
    left = _monotonic_prefixes(goods, bads, total_goods, total_bads, min_count, first_up)
    left_iv = left[0].max(axis=0)
    if shape in ("ascending", "descending"):
        return _starts(*left, n), float(left_iv[n])
    # the second leg read backwards is a prefix of the reversed pre-bins, of the same sense
    right = _monotonic_prefixes(goods[::-1], bads[::-1], total_goods, total_bads, min_count,
                                first_up)  # fmt: skip
    right_iv = right[0].max(axis=0)
    total = left_iv[1:n] + right_iv[n - 1 : 0 : -1]  # turn t = 1 .. n-1
    if not np.isfinite(total).any():
        return [0], -np.inf
    turn = int(np.argmax(total)) + 1
    # the reversed prefix's bins [a, b) are [n - b, n - a): their starts are n - (their ends)
    ends = _starts(*right, n - turn)[1:]
    return sorted({*_starts(*left, turn), turn, *(n - end for end in ends)}), float(
        total[turn - 1]
    )


def _size_partition(counts: np.ndarray, min_count: int) -> list[int]:
    """Starts of bins merging adjacent pre-bins left to right until each holds ``min_count``."""
    starts, held = [0], 0
    for i, count in enumerate(counts):
        if held >= min_count:
            starts.append(i)
            held = 0
        held += count
    if held < min_count and len(starts) > 1:
        starts.pop()
    return starts


def bin_numeric(
    name: str, x: np.ndarray, y: np.ndarray, *, trend: Trend = "auto",
    min_share: float = 0.05, max_prebins: int = 20,
) -> Binning:  # fmt: skip
    """Fit the bins of a numeric characteristic on training rows ``x`` (NaN = missing) with
    ``y`` true for a bad outcome. ``trend``: ``auto`` tries ascending and descending bad
    rates and keeps the higher IV; ``free`` merges pre-bins for size only."""
    x = np.asarray(x, dtype=float)
    bad, total_goods, total_bads = _classes(y)
    present = ~np.isnan(x)
    if not present.any():
        raise BinningError(f"{name}: no value to bin")
    cuts = _prebins(x[present], max_prebins)
    pre = np.searchsorted(cuts, x[present], side="right")
    goods = np.bincount(pre[~bad[present]], minlength=cuts.size + 1)
    bads = np.bincount(pre[bad[present]], minlength=cuts.size + 1)
    min_count = max(1, math.ceil(min_share * x.size))
    if trend == "free":
        starts = _size_partition(goods + bads, min_count)
    else:
        shapes = SHAPES if trend == "auto" else (trend,)
        found = [
            _shaped_partition(goods, bads, total_goods, total_bads, min_count, shape)
            for shape in shapes
        ]
        starts = max(found, key=lambda f: f[1])[0]
    edges = [None, *[float(cuts[s - 1]) for s in starts[1:]], None]
    bins = []
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else cuts.size + 1
        g, b = int(goods[start:stop].sum()), int(bads[start:stop].sum())
        low, high = edges[k], edges[k + 1]
        label = f"[{_edge(low, '-inf')}, {_edge(high, 'inf')})"
        bins.append(Bin(label, 0.0, g, b, low=low, high=high))
    missing_goods = int((~present & ~bad).sum())
    missing_bads = int((~present & bad).sum())
    bins.append(Bin(MISSING, 0.0, missing_goods, missing_bads, missing=True))
    return _weighted(name, "numeric", bins, total_goods, total_bads)


def _edge(value: float | None, unbounded: str) -> str:
    return unbounded if value is None else f"{value:g}"


def bin_categorical(
    name: str, x: np.ndarray, y: np.ndarray, *, min_share: float = 0.05
) -> Binning:
    """Fit the bins of a categorical characteristic on training rows ``x`` (text; empty =
    missing) with ``y`` true for a bad outcome: one bin per category holding at least
    ``min_share`` of the rows, the rarer ones pooled in the ``other`` bin."""
    bad, total_goods, total_bads = _classes(y)
    text = np.array(["" if _is_missing(v) else str(v) for v in x], dtype=object)
    min_count = max(1, math.ceil(min_share * text.size))
    kept: list[Bin] = []
    rare: list[str] = []
    for category in sorted(set(text) - {""}):
        rows = text == category
        g, b = int((rows & ~bad).sum()), int((rows & bad).sum())
        if g + b >= min_count:
            kept.append(Bin(category, 0.0, g, b, categories=(category,)))
        else:
            rare.append(category)
    rows = np.isin(text, rare)
    other = Bin(OTHER, 0.0, int((rows & ~bad).sum()), int((rows & bad).sum()),
                categories=tuple(rare))  # fmt: skip
    rows = text == ""
    missing = Bin(MISSING, 0.0, int((rows & ~bad).sum()), int((rows & bad).sum()), missing=True)
    kept.sort(key=lambda b: (b.bads + 0.5) / (b.count + 1))  # best first: readable tables
    return _weighted(name, "categorical", [*kept, other, missing], total_goods, total_bads)


def _weighted(
    name: str, kind: Literal["numeric", "categorical"], bins: list[Bin],
    total_goods: int, total_bads: int,
) -> Binning:  # fmt: skip
    """The bins with their WOE (0 for an empty bin: the average applicant) and the IV."""
    goods = np.array([b.goods for b in bins])
    bads = np.array([b.bads for b in bins])
    woe = np.where(goods + bads > 0, _woe(goods, bads, total_goods, total_bads), 0.0)
    iv = float(np.where(goods + bads > 0, _iv(goods, bads, total_goods, total_bads), 0.0).sum())
    weighted = tuple(
        Bin(b.label, float(w), b.goods, b.bads, b.low, b.high, b.categories, b.missing)
        for b, w in zip(bins, woe, strict=True)
    )
    return Binning(name, kind, weighted, iv)
