"""WOE binning: shapes, the missing bin, categories, information value; pure, no database."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lienwatch.risk.binning import OTHER, BinningError, bin_categorical, bin_numeric


def _rates(binning):
    return [b.bads / b.count for b in binning.bins if b.count and not b.missing]


def test_numeric_bins_are_monotonic_and_hold_the_minimum_share():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 100, 2000)
    bad = rng.uniform(size=x.size) < 0.1 + 0.5 * x / 100  # risk rises with x, noisily
    binning = bin_numeric("x", x, bad, min_share=0.05)
    rates = _rates(binning)
    assert rates == sorted(rates) and len(rates) >= 3
    assert all(b.count >= 100 for b in binning.bins[:-1])
    woe = [b.woe for b in binning.bins[:-1]]
    assert woe == sorted(woe, reverse=True)  # riskier bins carry less evidence of good


def test_a_valley_is_found_when_asked():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 100, 3000)
    bad = rng.uniform(size=x.size) < 0.1 + 0.5 * np.abs(x - 50) / 50
    rates = _rates(bin_numeric("x", x, bad, trend="valley"))
    low = int(np.argmin(rates))
    assert 0 < low < len(rates) - 1
    assert rates[: low + 1] == sorted(rates[: low + 1], reverse=True)
    assert rates[low:] == sorted(rates[low:])


def test_missing_values_are_their_own_bin_and_unseen_missing_weighs_nothing():
    x = np.array([1.0, 2, 3, 4, np.nan, np.nan] * 20)
    bad = np.array([0, 0, 1, 1, 1, 1] * 20, dtype=bool)
    binning = bin_numeric("x", x, bad, min_share=0.1)
    missing = binning.bins[-1]
    assert missing.missing and (missing.goods, missing.bads) == (0, 40)
    assert binning.woe(np.array([np.nan]))[0] == missing.woe < 0
    clean = bin_numeric("x", x[~np.isnan(x)], bad[~np.isnan(x)], min_share=0.1)
    assert clean.bins[-1].count == 0 and clean.woe(np.array([np.nan]))[0] == 0.0


def test_bins_apply_edges_as_low_inclusive_high_exclusive():
    x = np.arange(100, dtype=float)
    bad = x >= 50
    binning = bin_numeric("x", x, bad, min_share=0.1)
    edges = [b.high for b in binning.bins[:-2]]
    assert 50.0 in edges
    index = binning.bin_index(np.array([49.0, 50.0]))
    assert index[0] != index[1]


def test_woe_and_iv_follow_their_definition():
    x = np.array(["a"] * 50 + ["b"] * 50, dtype=object)
    bad = np.array([1] * 10 + [0] * 40 + [1] * 30 + [0] * 20, dtype=bool)
    binning = bin_categorical("x", x, bad)
    a = next(b for b in binning.bins if b.label == "a")
    expected = math.log(((40 + 0.5) / 60.5) / ((10 + 0.5) / 40.5))
    assert a.woe == pytest.approx(expected)
    assert binning.iv == pytest.approx(sum(
        ((b.goods + 0.5) / 60.5 - (b.bads + 0.5) / 40.5) * b.woe for b in binning.bins if b.count
    ))  # fmt: skip


def test_rare_and_unseen_categories_share_the_other_bin():
    x = np.array(["a"] * 60 + ["b"] * 38 + ["rare1", "rare2"], dtype=object)
    bad = np.array([0, 1] * 50, dtype=bool)
    binning = bin_categorical("x", x, bad, min_share=0.05)
    other = next(b for b in binning.bins if b.label == OTHER)
    assert set(other.categories) == {"rare1", "rare2"}
    index = binning.bin_index(np.array(["never seen", "rare1", "", None], dtype=object))
    assert binning.bins[index[0]] is other and binning.bins[index[1]] is other
    assert binning.bins[index[2]].missing and binning.bins[index[3]].missing


def test_binning_needs_both_outcomes():
    with pytest.raises(BinningError, match="both good and bad"):
        bin_numeric("x", np.arange(10.0), np.zeros(10, dtype=bool))
