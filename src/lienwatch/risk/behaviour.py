"""The behaviour score (贷后行为评分): the probability that a current or early-delinquent loan
rolls to M2 or worse (more than 30 days past due) within 60 days of a month's observation,
from its payment behaviour and its car's signals. Pure: observations in, model and figures
out; the book's observations are gathered in ``services/behaviour.py`` (docs/risk.md).

Fitted and judged with a time-based split (fit on the earlier months, judge on the later), so
the figures never see the rows they are judged on. The challenger priority it feeds ranks the
follow-up work by expected loss (score × exposure) against the champion's exposure alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lienwatch.errors import LienwatchError
from lienwatch.risk.backtest import auc_ks

#: What the score reads, one column each (docs/risk.md says how each is counted).
FEATURES = (
    "dpd",  # days past due at the observation
    "max_dpd_6m",  # worst DPD at the six month ends before
    "months_late_6m",  # month ends past due among those six
    "partial_payments_3m",  # payments under the installment in the last 90 days
    "broken_promises_3m",  # promises to pay broken in the last 90 days
    "channel_changes_3m",  # payments through another channel than the one before
    "open_alerts",  # the car's collateral alerts open at the observation
    "night_relocation",  # one of them: the night parking place moved
    "tracker_offline",  # one of them: a tracker silent too long
    "tracker_removed",  # one of them: a tracker removed or its power cut
    # ln(1 + hours) the car's trackers were offline in the last 90 days (the log keeps a
    # months-long silence from swamping the fit: raw hours cost up to 0.12 AUC, docs/risk.md)
    "log_offline_hours_3m",
)
ROLL_DPD = 30  # more than this is M2 or worse
HORIZON_DAYS = 60
ELIGIBLE_MAX_DPD = 30  # current (0) or early delinquent (M1)


class BehaviourError(LienwatchError, ValueError):
    """Too little history to fit or judge the score; the message says what is missing,
    ``reason`` names it for a reader in another language (``one_class``: the months named
    lack loans that rolled or loans that did not; ``few_months``: fewer observation months
    with a known outcome than a time split needs; ``capacity``) with the ``months`` seen."""

    def __init__(self, message: str, *, reason: str = "capacity",
                 months: list[str] | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.reason, self.months = reason, months or []


@dataclass(frozen=True, slots=True)
class Observations:
    """One row per eligible loan and month end: ``features`` in :data:`FEATURES` order,
    ``month`` as ``YYYY-MM``, ``exposure`` in fen, ``rolled`` whether it rolled to M2+ within
    the horizon (only rows whose horizon has passed are observations)."""

    loan: list[str]
    month: np.ndarray
    features: np.ndarray
    exposure: np.ndarray
    rolled: np.ndarray

    def __len__(self) -> int:
        return len(self.loan)

    def where(self, mask: np.ndarray) -> Observations:
        return Observations([loan for loan, keep in zip(self.loan, mask, strict=True) if keep],
                            self.month[mask], self.features[mask], self.exposure[mask],
                            self.rolled[mask])  # fmt: skip


@dataclass(frozen=True, slots=True)
class BehaviourModel:
    """A logistic regression on standardized features, as a table a person can read."""

    mean: np.ndarray
    scale: np.ndarray
    coefficient: np.ndarray
    intercept: float

    def probability(self, features: np.ndarray) -> np.ndarray:
        z = (features - self.mean) / self.scale @ self.coefficient + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    @classmethod
    def from_json(cls, table: dict[str, Any]) -> BehaviourModel:
        """The model back from its :meth:`as_json` table; a table naming other features
        than :data:`FEATURES` (another version's) is refused."""
        names = tuple(row["name"] for row in table["features"])
        if names != FEATURES:
            raise BehaviourError(f"model: its features {', '.join(names)} are not this "
                                 f"version's ({', '.join(FEATURES)}); refit it")  # fmt: skip
        column = {key: np.array([row[key] for row in table["features"]], dtype=float)
                  for key in ("mean", "scale", "coefficient")}  # fmt: skip
        return cls(column["mean"], column["scale"], column["coefficient"],
                   float(table["intercept"]))  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {"intercept": round(self.intercept, 6),
                "features": [{"name": n, "mean": round(float(m), 6), "scale": round(float(s), 6),
                              "coefficient": round(float(c), 6)}
                             for n, m, s, c in zip(FEATURES, self.mean, self.scale,
                                                   self.coefficient, strict=True)]}  # fmt: skip


def fit_behaviour(obs: Observations) -> BehaviourModel:
    """Fit on every row of ``obs`` (scikit-learn's L2 logistic regression)."""
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(obs.rolled)) < 2:
        months = sorted(set(obs.month.tolist()))
        raise BehaviourError(f"the fitting months ({', '.join(months)}) need "
                             "both loans that rolled to M2+ and loans that did not",
                             reason="one_class", months=months)  # fmt: skip
    mean = obs.features.mean(axis=0)
    scale = obs.features.std(axis=0)
    scale[scale == 0] = 1.0
    fitted = LogisticRegression(max_iter=1000).fit((obs.features - mean) / scale, obs.rolled)
    return BehaviourModel(mean, scale, fitted.coef_[0], float(fitted.intercept_[0]))


def time_split(obs: Observations, test_months: int = 1) -> tuple[Observations, Observations]:
    """The earlier months to fit on and the last ``test_months`` months to judge on."""
    months = sorted(set(obs.month.tolist()))
    if len(months) <= test_months:
        raise BehaviourError(f"a time-based split needs more than {test_months} observation "
                             f"month(s) with a known outcome; the book has {len(months)}"
                             f"{': ' + ', '.join(months) if months else ''}",
                             reason="few_months", months=months)  # fmt: skip
    first_test = months[-test_months]
    later = obs.month >= first_test
    return obs.where(~later), obs.where(later)


def calibration(probability: np.ndarray, rolled: np.ndarray, bands: int = 5) -> list[dict]:
    """Predicted against observed roll rate in ``bands`` groups of equal size by score."""
    order = np.argsort(probability, kind="stable")
    return [{"band": k + 1, "loans": int(part.size),
             "predicted": round(float(probability[part].mean()), 4),
             "observed": round(float(rolled[part].mean()), 4)}
            for k, part in enumerate(np.array_split(order, bands)) if part.size]  # fmt: skip


def priorities(probability: np.ndarray, exposure: np.ndarray, rolled: np.ndarray, *,
               capacity: float) -> dict[str, int]:  # fmt: skip
    """Champion (work the largest exposures first) against challenger (the largest expected
    loss, score × exposure, first) when the team reaches the first ``capacity`` share of the
    loans: how many of the loans that went on to roll (``rolls``) each reached in time."""
    if not 0 < capacity <= 1:
        raise BehaviourError(f"capacity: {capacity} is not a share in (0, 1]")
    reach = int(np.ceil(capacity * len(rolled)))

    def reached(order_by: np.ndarray) -> int:
        worked = np.argsort(-order_by, kind="stable")[:reach]
        return int(rolled[worked].sum())

    return {"rolls": int(rolled.sum()), "champion": reached(exposure.astype(float)),
            "challenger": reached(probability * exposure)}  # fmt: skip


def judge(model: BehaviourModel, test: Observations, *, capacity: float) -> dict[str, Any]:
    """The score on the judging rows: AUC, KS, the calibration table and the priorities."""
    if len(np.unique(test.rolled)) < 2:
        months = sorted(set(test.month.tolist()))
        raise BehaviourError(f"the judging months ({', '.join(months)}) need "
                             "both loans that rolled to M2+ and loans that did not",
                             reason="one_class", months=months)  # fmt: skip
    probability = model.probability(test.features)
    auc, ks = auc_ks(test.rolled, -probability)  # auc_ks reads higher as better
    return {"rows": len(test), "rolled": int(test.rolled.sum()), "auc": round(auc, 4),
            "ks": round(ks, 4), "calibration": calibration(probability, test.rolled),
            "capacity": capacity,
            "reached": priorities(probability, test.exposure, test.rolled,
                                  capacity=capacity)}  # fmt: skip


def backtest(obs: Observations, *, test_months: int = 1, capacity: float = 0.2) -> dict[str, Any]:
    """Fit on the earlier months, judge on the last ``test_months``; the fitted model too."""
    train, test = time_split(obs, test_months)
    model = fit_behaviour(train)
    return {"fit_months": sorted(set(train.month.tolist())),
            "test_months": sorted(set(test.month.tolist())), "fit_rows": len(train),
            **judge(model, test, capacity=capacity), "model": model.as_json()}  # fmt: skip
