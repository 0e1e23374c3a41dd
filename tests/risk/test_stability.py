"""PSI over bins: zero for the same mix, the textbook value for a known shift."""

from __future__ import annotations

import math

import pytest

from lienwatch.risk.stability import FLOOR, psi


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
