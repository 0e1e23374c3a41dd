"""The behaviour score's rules without a database: time split, fit, judgement, priorities."""

from __future__ import annotations

import numpy as np
import pytest

from lienwatch.risk.behaviour import (
    FEATURES,
    BehaviourError,
    Observations,
    backtest,
    calibration,
    priorities,
    time_split,
)


def _book(months=("2026-07", "2026-08", "2026-09"), per_month=400, seed=0) -> Observations:
    """Loans whose roll to M2 depends on DPD and open alerts, as the score should learn."""
    rng = np.random.default_rng(seed)
    n = len(months) * per_month
    x = np.zeros((n, len(FEATURES)))
    x[:, 0] = rng.choice([0, 0, 0, 5, 15, 25], n)  # dpd
    x[:, 6] = rng.poisson(0.3, n)  # open alerts
    logit = -4 + 0.12 * x[:, 0] + 1.2 * x[:, 6]
    rolled = rng.random(n) < 1 / (1 + np.exp(-logit))
    return Observations([f"L{k}" for k in range(n)], np.repeat(months, per_month), x,
                        rng.integers(1_000_000, 20_000_000, n), rolled)  # fmt: skip


def test_the_split_fits_on_earlier_months_and_judges_on_the_last():
    fit, judge = time_split(_book())
    assert sorted(set(fit.month)) == ["2026-07", "2026-08"] and set(judge.month) == {"2026-09"}
    assert len(fit) + len(judge) == 1200


def test_a_split_needs_more_months_than_it_judges_on():
    with pytest.raises(BehaviourError, match=r"more than 1 observation month\(s\) .* has 1: "
                       "2026-07"):  # fmt: skip
        time_split(_book(months=("2026-07",)))


def test_the_backtest_learns_the_planted_signal_and_reports_auc_ks_and_calibration():
    result = backtest(_book(), capacity=0.2)
    assert result["fit_months"] == ["2026-07", "2026-08"] and result["test_months"] == ["2026-09"]
    assert result["auc"] > 0.75 and 0 < result["ks"] <= 1
    observed = [band["observed"] for band in result["calibration"]]
    assert observed[-1] > observed[0]  # the riskiest fifth rolls more than the safest
    coefficients = {f["name"]: f["coefficient"] for f in result["model"]["features"]}
    assert coefficients["dpd"] > 0 and coefficients["open_alerts"] > 0


def test_fitting_needs_both_outcomes():
    book = _book()
    still = Observations(book.loan, book.month, book.features, book.exposure,
                         np.zeros(len(book), dtype=bool))  # fmt: skip
    with pytest.raises(BehaviourError, match="need both loans that rolled"):
        backtest(still)


def test_calibration_bands_are_equal_sized_by_score():
    probability = np.linspace(0, 1, 10)
    rolled = probability > 0.5
    bands = calibration(probability, rolled, bands=5)
    assert [b["loans"] for b in bands] == [2] * 5
    assert [b["observed"] for b in bands] == [0.0, 0.0, 0.5, 1.0, 1.0]


def test_expected_loss_reaches_the_rolls_that_exposure_alone_misses():
    """Ten loans, capacity 30 %: the three largest never roll; three mid-sized ones with a
    high score do. The champion reaches none of them, the challenger all three."""
    exposure = np.array([100, 90, 80, 50, 45, 40, 10, 10, 10, 10])
    probability = np.array([0.01, 0.01, 0.01, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1])
    rolled = np.array([0, 0, 0, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    found = priorities(probability, exposure, rolled, capacity=0.3)
    assert found == {"rolls": 3, "champion": 0, "challenger": 3}
    with pytest.raises(BehaviourError, match=r"capacity: 1\.5 is not a share"):
        priorities(probability, exposure, rolled, capacity=1.5)
