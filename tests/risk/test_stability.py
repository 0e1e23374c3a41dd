"""PSI over bins: zero for the same mix, the textbook value for a known shift."""

from __future__ import annotations

import math

import pytest

from lienwatch.risk.stability import (
    FLOOR,
    band_counts,
    band_labels,
    distribution_psi,
    psi,
    score_edges,
)


def test_the_same_mix_is_stable_and_a_shift_is_measured():
    assert psi([10, 20, 70], [1, 2, 7]) == 0.0
    expected = (0.5 - 0.25) * math.log(0.5 / 0.25) + (0.5 - 0.75) * math.log(0.5 / 0.75)
    assert psi([25, 75], [50, 50]) == pytest.approx(expected)


def test_an_empty_bin_is_floored_and_an_empty_side_has_no_psi():
    assert psi([100, 0], [50, 50]) == pytest.approx(
        (0.5 - 1) * math.log(0.5 / 1) + (0.5 - FLOOR) * math.log(0.5 / FLOOR))
    assert psi([0, 0], [1, 2]) is None
    with pytest.raises(ValueError, match="expected has 2 bins, actual 3"):
        psi([1, 2], [1, 2, 3])


def test_score_bands_cut_the_fit_at_its_deciles():
    scores = list(range(100))  # 0..99
    edges = score_edges(scores)
    assert edges == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert band_counts(scores, edges) == [10] * 10
    assert band_counts([9, 10, 10, 500], edges) == [1, 2, 0, 0, 0, 0, 0, 0, 0, 1]
    assert band_labels(edges)[:2] == ["< 10", "10–20"] and band_labels(edges)[-1] == "≥ 90"
    assert score_edges([5, 5, 5, 5]) == [] and band_counts([1, 2], []) == [2]
    assert band_labels([]) == ["all"]


def test_a_distribution_against_its_reference():
    same = distribution_psi(["a", "b"], [50, 50], {"a": 5, "b": 5})
    assert same == {"psi": 0.0, "bins": [{"label": "a", "reference": 50, "actual": 5},
                                         {"label": "b", "reference": 50, "actual": 5}]}
    moved = distribution_psi(["a", "b"], [50, 50], {"a": 9, "b": 1, "unknown": 7})
    assert moved["psi"] == round(psi([50, 50], [9, 1]), 4) > 0.25  # an unknown label counts nowhere
    assert distribution_psi(["a"], [3], {})["psi"] is None
