"""Repeated stratified cross-validation of the scorecard, leak-free: every fold bins, selects
and fits on its training rows alone and is judged on rows it never saw, scored with the
points table as it would be deployed (whole points)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from lienwatch.risk.datasets import Dataset
from lienwatch.risk.scorecard import ScorecardSpec, fit_scorecard


@dataclass(frozen=True, slots=True)
class Fold:
    """One fold's figures: AUC and KS of the score on the held-out rows, the fit time, the
    number of characteristics kept."""

    repeat: int
    fold: int
    auc: float
    ks: float
    fit_seconds: float
    characteristics: int


def auc_ks(bad: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """AUC and KS of ``scores`` (higher = better credit) for the outcome ``bad``."""
    from sklearn.metrics import roc_auc_score, roc_curve

    risk = -np.asarray(scores, dtype=float)
    fpr, tpr, _ = roc_curve(bad, risk)
    return float(roc_auc_score(bad, risk)), float(np.max(tpr - fpr))


def cross_validate(
    data: Dataset, spec: ScorecardSpec, *, folds: int, repeats: int, seed: int
) -> list[Fold]:
    """Fit and judge the scorecard on ``folds`` × ``repeats`` stratified folds (scikit-learn's
    RepeatedStratifiedKFold with ``seed``)."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    found = []
    for k, (train, test) in enumerate(splitter.split(np.zeros(data.bad.size), data.bad)):
        training = data.rows(train)
        started = time.perf_counter()  # a duration, not the time of day
        card = fit_scorecard(training.columns, training.bad, spec)
        fit_seconds = time.perf_counter() - started
        held_out = data.rows(test)
        auc, ks = auc_ks(held_out.bad, card.score(held_out.columns))
        found.append(Fold(k // folds, k % folds, auc, ks, fit_seconds, len(card.characteristics)))
    return found


def summary(found: list[Fold]) -> dict[str, Any]:
    """``{auc_mean, auc_std, ks_mean, fit_seconds_median, folds: [...]}`` of a backtest."""
    auc = np.array([f.auc for f in found])
    return {
        "auc_mean": round(float(auc.mean()), 4),
        "auc_std": round(float(auc.std(ddof=1)) if auc.size > 1 else 0.0, 4),
        "ks_mean": round(float(np.mean([f.ks for f in found])), 4),
        "fit_seconds_median": round(float(np.median([f.fit_seconds for f in found])), 4),
        "folds": [
            {"repeat": f.repeat, "fold": f.fold, "auc": round(f.auc, 4), "ks": round(f.ks, 4),
             "fit_seconds": round(f.fit_seconds, 4), "characteristics": f.characteristics}
            for f in found
        ],
    }  # fmt: skip
