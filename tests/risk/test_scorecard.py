"""The scorecard on the shipped German credit data: scaling, reason codes, the document, and a
cheap leak-free backtest (the full 10x5 protocol is `lienwatch risk backtest`, bench/)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lienwatch.data import german_credit_path
from lienwatch.risk.backtest import auc_ks, cross_validate, summary
from lienwatch.risk.datasets import GERMAN_CREDIT, GERMAN_CREDIT_TARGET, columns_of
from lienwatch.risk.scorecard import (
    Characteristic,
    ScorecardError,
    ScorecardSpec,
    fit_scorecard,
    scorecard_document,
    scorecard_from_document,
)
from lienwatch.tabular import csv_rows


@pytest.fixture(scope="module")
def german():
    path = german_credit_path()
    return columns_of(csv_rows(path)[1], GERMAN_CREDIT.characteristics, str(path),
                      target=GERMAN_CREDIT_TARGET)  # fmt: skip


@pytest.fixture(scope="module")
def card(german):
    return fit_scorecard(german.columns, german.bad, GERMAN_CREDIT)


def test_the_shipped_data_is_the_german_credit_data(german):
    assert german.bad.size == 1000 and german.bad.sum() == 300


def test_points_scale_to_600_at_50_to_1_with_20_points_to_double_the_odds(card):
    assert float(card.probability_bad(600)) == pytest.approx(1 / 51)
    odds = [(1 - p) / p for p in card.probability_bad(np.array([600, 620, 580]))]
    assert odds == pytest.approx([50, 100, 25])
    # each row's score is the scaled log-odds of the regression, up to the whole-point rounding
    first = {name: column[:5] for name, column in _columns(card).items()}
    woe = np.column_stack([c.binning.woe(first[c.name]) for c in card.characteristics])
    log_odds_bad = card.intercept + woe @ np.array([c.coefficient for c in card.characteristics])
    exact = 600 - 20 / math.log(2) * (math.log(50) + log_odds_bad)
    assert np.abs(card.score(first) - exact).max() <= 0.5 * len(card.characteristics)


def _columns(card):
    path = german_credit_path()
    return columns_of(csv_rows(path)[1], card.inputs, str(path)).columns


def test_weak_characteristics_are_dropped_with_their_reason(card):
    assert "telephone" in card.dropped and "information value" in card.dropped["telephone"]
    assert all(c.coefficient < 0 for c in card.characteristics)  # points rise with WOE
    assert {"status_of_existing_checking_account", "duration_in_month"} <= set(card.names)


def test_reason_codes_name_the_four_costliest_characteristics(card, german):
    reasons = card.reasons(german.columns)
    points = card.points(german.columns)
    for row in (0, 1, 2):
        lost = [c.max_points - p for c, p in zip(card.characteristics, points[row], strict=True)]
        expected = sorted((x for x in lost if x > 0), reverse=True)[:4]
        assert [r.points_lost for r in reasons[row]] == expected
        assert len(reasons[row]) <= 4
    best = {c.name: np.array([c.binning.bins[int(np.argmax(c.points))].categories[0]
                              if c.binning.kind == "categorical"
                              else (c.binning.bins[int(np.argmax(c.points))].low or 0.0)])
            for c in card.characteristics}  # fmt: skip
    assert card.reasons(best) == [[]]  # every characteristic at its maximum: no reason


def test_the_scorecard_document_reads_back_the_same(card, german):
    again = scorecard_from_document(scorecard_document(card))
    assert np.array_equal(again.score(german.columns), card.score(german.columns))
    assert again.reasons(german.columns)[:3] == card.reasons(german.columns)[:3]
    with pytest.raises(ScorecardError, match="missing key 'scaling'"):
        scorecard_from_document({})


def test_scoring_needs_every_kept_characteristic(card):
    with pytest.raises(ScorecardError, match="missing characteristic"):
        card.score({})


def test_a_cheap_backtest_is_leak_free_and_sane(german):
    found = cross_validate(german, GERMAN_CREDIT, folds=2, repeats=2, seed=0)
    result = summary(found)
    assert len(result["folds"]) == 4
    assert 0.74 <= result["auc_mean"] <= 0.85 and result["ks_mean"] > 0.3
    # leak-free: fitting on one half only must not judge the other half better than the
    # whole-data fit judges its own rows
    card = fit_scorecard(german.columns, german.bad, GERMAN_CREDIT)
    in_sample, _ = auc_ks(german.bad, card.score(german.columns))
    assert result["auc_mean"] < in_sample


def test_fitting_needs_a_characteristic_with_information():
    x = np.tile(np.array([1.0, 2.0]), 50)
    bad = np.repeat(np.array([True, False]), 50)
    spec = ScorecardSpec((Characteristic("x", "numeric"),))
    with pytest.raises(ScorecardError, match="no characteristic"):
        fit_scorecard({"x": x}, bad, spec)


def test_each_row_s_attributes_are_the_bins_its_points_come_from(card, german):
    attributes = card.attributes(german.columns)
    points = card.points(german.columns)
    assert len(attributes) == 1000 and set(attributes[0]) == set(card.names)
    for row in (0, 1, 999):
        for k, c in enumerate(card.characteristics):
            labels = [b.label for b in c.binning.bins]
            assert c.points[labels.index(attributes[row][c.name])] == points[row, k]
    # the fit's own rows fall in each bin as often as the bin's training counts say
    first = card.characteristics[0]
    counts = {b.label: b.count for b in first.binning.bins}
    seen = {label: sum(a[first.name] == label for a in attributes) for label in counts}
    assert seen == counts
    assert card.attributes({name: np.array([]) for name in card.names}) == []
