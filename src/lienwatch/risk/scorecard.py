"""The application scorecard: WOE bins, variable selection, logistic regression, points.

Fitting (:func:`fit_scorecard`), on training rows only:

1. every characteristic of the :class:`ScorecardSpec` is binned (:mod:`lienwatch.risk.binning`);
2. characteristics with an information value under ``min_iv`` are dropped;
3. a logistic regression (scikit-learn, L2 with inverse strength ``c``) predicts a bad outcome
   from the WOE of the kept characteristics; a characteristic whose coefficient comes out
   positive (more evidence of good, more bad: collinearity) is dropped and the model refitted,
   so that every kept characteristic's points rise with its WOE;
4. log-odds become points: ``score = offset + factor · ln(good:bad odds)`` with
   ``factor = pdo / ln 2`` and ``offset = base_score − factor · ln(base_odds)`` (600 points at
   50:1, 20 points to double the odds by default), the intercept shared evenly among the
   characteristics; each attribute's points are rounded to a whole point.

Reason codes (:meth:`Scorecard.reasons`) name the characteristics that cost an applicant the
most points against the **maximum points** of each characteristic (the reference a credit
officer reads off the table: "you lost 23 points on the checking account").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from lienwatch.errors import LienwatchError
from lienwatch.risk.binning import Bin, Binning, Trend, bin_categorical, bin_numeric

Kind = Literal["numeric", "categorical"]


class ScorecardError(LienwatchError, ValueError):
    """A scorecard that cannot be fitted, read or applied; the message names what is wrong."""


@dataclass(frozen=True, slots=True)
class Characteristic:
    """An input of the scorecard: a column, numeric or categorical, and for a numeric one the
    trend its bad rate must follow (``auto``: ascending or descending, whichever fits)."""

    name: str
    kind: Kind
    trend: Trend = "auto"


@dataclass(frozen=True, slots=True)
class ScorecardSpec:
    """What to fit and how: the characteristics and the fixed hyper-parameters.

    ``min_share``: the smallest bin, as a share of the training rows; ``max_prebins``: the
    quantile pre-bins a numeric characteristic is cut into before merging; ``min_iv``: the
    information value a characteristic needs to be kept; ``c``: the logistic regression's
    inverse L2 strength."""

    characteristics: tuple[Characteristic, ...]
    min_share: float = 0.05
    max_prebins: int = 30
    min_iv: float = 0.02
    c: float = 1.0
    base_score: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason code: the characteristic, the applicant's attribute (bin) and the points it
    cost against that characteristic's maximum."""

    code: str
    characteristic: str
    attribute: str
    points: int
    points_lost: int

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "characteristic": self.characteristic,
                "attribute": self.attribute, "points": self.points,
                "points_lost": self.points_lost}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ScoredCharacteristic:
    """A kept characteristic: its bins, its coefficient and the points of each bin."""

    binning: Binning
    coefficient: float
    points: tuple[int, ...]

    @property
    def name(self) -> str:
        return self.binning.name

    @property
    def max_points(self) -> int:
        """The reference of the reason codes: the most points this characteristic gives."""
        return max(self.points)


@dataclass(frozen=True, slots=True)
class Scorecard:
    """A fitted scorecard: points per attribute of each kept characteristic; the score of an
    applicant is the sum of the points of their attributes."""

    characteristics: tuple[ScoredCharacteristic, ...]
    intercept: float
    base_score: float
    base_odds: float
    pdo: float
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.characteristics]

    @property
    def inputs(self) -> tuple[Characteristic, ...]:
        """The characteristics a row must carry to be scored."""
        return tuple(Characteristic(c.name, c.binning.kind) for c in self.characteristics)

    def _indexes(self, columns: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        missing = [name for name in self.names if name not in columns]
        if missing:
            raise ScorecardError(f"missing characteristic(s) {', '.join(missing)}")
        return [c.binning.bin_index(columns[c.name]) for c in self.characteristics]

    def points(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Points of every row (axis 0) on every kept characteristic (axis 1)."""
        indexes = self._indexes(columns)
        return np.column_stack(
            [np.asarray(c.points)[i] for c, i in zip(self.characteristics, indexes, strict=True)]
        )

    def score(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """The score of every row: the sum of its points."""
        return self.points(columns).sum(axis=1)

    def probability_bad(self, scores: np.ndarray) -> np.ndarray:
        """The probability of a bad outcome at each score, as the scaling defines it."""
        factor = self.pdo / math.log(2)
        offset = self.base_score - factor * math.log(self.base_odds)
        return 1.0 / (1.0 + np.exp((np.asarray(scores, dtype=float) - offset) / factor))

    def attributes(self, columns: Mapping[str, np.ndarray]) -> list[dict[str, str]]:
        """For every row, the label of the attribute (bin) it falls in on each kept
        characteristic: what a book stores of an application to watch its stability."""
        indexes = self._indexes(columns)
        labels = [[b.label for b in c.binning.bins] for c in self.characteristics]
        return [
            {c.name: labels[k][int(index[row])] for k, (c, index) in
             enumerate(zip(self.characteristics, indexes, strict=True))}
            for row in range(len(indexes[0]) if indexes else 0)
        ]  # fmt: skip

    def reasons(self, columns: Mapping[str, np.ndarray], count: int = 4) -> list[list[Reason]]:
        """For every row, the ``count`` characteristics that cost the most points against their
        maximum, most costly first (characteristics at their maximum give no reason)."""
        indexes = self._indexes(columns)
        points = np.column_stack(
            [np.asarray(c.points)[i] for c, i in zip(self.characteristics, indexes, strict=True)]
        )
        lost = np.array([c.max_points for c in self.characteristics]) - points
        found: list[list[Reason]] = []
        for row in range(points.shape[0]):
            order = sorted(range(lost.shape[1]), key=lambda k: (-lost[row, k], k))[:count]
            found.append([
                Reason(
                    code=self.characteristics[k].name,
                    characteristic=self.characteristics[k].name,
                    attribute=self.characteristics[k].binning.bins[indexes[k][row]].label,
                    points=int(points[row, k]),
                    points_lost=int(lost[row, k]),
                )
                for k in order if lost[row, k] > 0
            ])  # fmt: skip
        return found


def _bin(spec: ScorecardSpec, c: Characteristic, x: np.ndarray, bad: np.ndarray) -> Binning:
    if c.kind == "numeric":
        return bin_numeric(c.name, x, bad, trend=c.trend, min_share=spec.min_share,
                           max_prebins=spec.max_prebins)  # fmt: skip
    return bin_categorical(c.name, x, bad, min_share=spec.min_share)


def fit_scorecard(
    columns: Mapping[str, np.ndarray], bad: np.ndarray, spec: ScorecardSpec
) -> Scorecard:
    """Fit a scorecard on training rows: ``columns`` by characteristic name (numbers as floats
    with NaN for missing, categories as text with "" for missing), ``bad`` true for a bad
    outcome."""
    from sklearn.linear_model import LogisticRegression  # import cost only when fitting
    from threadpoolctl import threadpool_limits

    bad = np.asarray(bad, dtype=bool)
    dropped: dict[str, str] = {}
    binnings = []
    for c in spec.characteristics:
        if c.name not in columns:
            raise ScorecardError(f"missing characteristic {c.name}")
        binning = _bin(spec, c, columns[c.name], bad)
        if binning.iv < spec.min_iv:
            dropped[c.name] = f"information value {binning.iv:.4f} < {spec.min_iv}"
        else:
            binnings.append(binning)
    while True:
        if not binnings:
            raise ScorecardError(f"no characteristic has an information value of {spec.min_iv}")
        woe = np.column_stack([b.woe(columns[b.name]) for b in binnings])
        # one BLAS thread: on a 900 x 14 problem threads only contend (25x slower when the
        # machine is busy), and the fit is the same
        with threadpool_limits(limits=1):
            model = LogisticRegression(C=spec.c, max_iter=1000).fit(woe, bad)
        coefficients = model.coef_[0]
        wrong = [k for k, beta in enumerate(coefficients) if beta > 0]
        if not wrong:
            break
        worst = max(wrong, key=lambda k: coefficients[k])
        dropped[binnings[worst].name] = "coefficient of the wrong sign (collinear)"
        del binnings[worst]
    intercept = float(model.intercept_[0])
    share = intercept / len(binnings)
    scored = tuple(
        ScoredCharacteristic(
            b, float(beta),
            tuple(round(spec.offset / len(binnings) - spec.factor * (beta * bin_.woe + share))
                  for bin_ in b.bins),
        )
        for b, beta in zip(binnings, coefficients, strict=True)
    )  # fmt: skip
    return Scorecard(scored, intercept, spec.base_score, spec.base_odds, spec.pdo, dropped)


# --- the scorecard as a plain document (TOML or JSON) ----------------------------------------


def scorecard_document(card: Scorecard) -> dict[str, Any]:
    """The scorecard as a plain table a person reads and diffs (``lienwatch risk fit``)."""
    return {
        "scaling": {"base_score": card.base_score, "base_odds": card.base_odds,
                    "pdo": card.pdo, "intercept": card.intercept},
        "reason_reference": "maximum points of each characteristic",
        "dropped": dict(card.dropped),
        "characteristic": [
            {"name": c.name, "kind": c.binning.kind, "iv": round(c.binning.iv, 6),
             "coefficient": c.coefficient, "max_points": c.max_points,
             "attribute": [_attribute(b, p) for b, p in zip(c.binning.bins, c.points,
                                                            strict=True)]}
            for c in card.characteristics
        ],
    }  # fmt: skip


def _attribute(b: Bin, points: int) -> dict[str, Any]:
    row: dict[str, Any] = {"label": b.label, "points": points, "woe": round(b.woe, 6),
                           "goods": b.goods, "bads": b.bads}  # fmt: skip
    if b.missing:
        row["missing"] = True
    elif b.categories or b.label == "other":
        row["categories"] = list(b.categories)
    else:  # TOML has no null: an open end is left out
        row |= {k: v for k, v in (("low", b.low), ("high", b.high)) if v is not None}
    return row


def scorecard_from_document(document: Mapping[str, Any]) -> Scorecard:
    """Read back :func:`scorecard_document`; a missing or bad key is a
    :class:`ScorecardError` naming it."""
    try:
        scaling = document["scaling"]
        characteristics = []
        for c in document["characteristic"]:
            bins = tuple(
                Bin(a["label"], float(a["woe"]), int(a["goods"]), int(a["bads"]),
                    low=a.get("low"), high=a.get("high"),
                    categories=tuple(a.get("categories", ())), missing=bool(a.get("missing")))
                for a in c["attribute"]
            )  # fmt: skip
            binning = Binning(c["name"], c["kind"], bins, float(c["iv"]))
            points = tuple(int(a["points"]) for a in c["attribute"])
            characteristics.append(ScoredCharacteristic(binning, float(c["coefficient"]), points))
        return Scorecard(tuple(characteristics), float(scaling["intercept"]),
                         float(scaling["base_score"]), float(scaling["base_odds"]),
                         float(scaling["pdo"]), dict(document.get("dropped", {})))  # fmt: skip
    except KeyError as exc:
        raise ScorecardError(f"scorecard: missing key {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise ScorecardError(f"scorecard: bad value ({exc})") from None
