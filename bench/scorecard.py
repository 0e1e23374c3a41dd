"""The application scorecard against peers on the German credit data, one protocol for all.

Every method sees the same repeated stratified folds (scikit-learn's RepeatedStratifiedKFold,
10 folds x 5 repeats, seed 0 by default) and fits on each fold's training rows only:

- lienwatch: WOE binning, IV selection, logistic regression, whole points (lienwatch.risk);
- optbinning (optional peer, `pip install 'lienwatch[bench]'`): BinningProcess with its
  defaults (optimal binning of every variable, categorical ones declared) feeding a
  scikit-learn LogisticRegression with its defaults;
- baseline: one-hot categorical and standardised numeric columns, LogisticRegression.

Prints AUC (mean, std), KS and the median fit time of each, and lienwatch's ratios.

    python bench/scorecard.py [--cv 10x5] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from lienwatch.data import german_credit_path
from lienwatch.risk.backtest import auc_ks
from lienwatch.risk.datasets import GERMAN_CREDIT, GERMAN_CREDIT_TARGET, Dataset, columns_of
from lienwatch.risk.scorecard import fit_scorecard
from lienwatch.tabular import csv_rows

NAMES = [c.name for c in GERMAN_CREDIT.characteristics]
NUMERIC = [c.name for c in GERMAN_CREDIT.characteristics if c.kind == "numeric"]
CATEGORICAL = [c.name for c in GERMAN_CREDIT.characteristics if c.kind == "categorical"]

#: fit(train) -> a function giving the risk (higher = worse) of test rows
Method = Callable[[Dataset], Callable[[Dataset], np.ndarray]]


def lienwatch(train: Dataset) -> Callable[[Dataset], np.ndarray]:
    card = fit_scorecard(train.columns, train.bad, GERMAN_CREDIT)
    return lambda test: -card.score(test.columns)


def _frame(data: Dataset):
    import pandas

    return pandas.DataFrame({name: data.columns[name] for name in NAMES})


def optbinning(train: Dataset) -> Callable[[Dataset], np.ndarray]:
    from optbinning import BinningProcess

    model = Pipeline([
        ("binning", BinningProcess(NAMES, categorical_variables=CATEGORICAL)),
        ("regression", LogisticRegression(max_iter=1000)),
    ])  # fmt: skip
    model.fit(_frame(train), train.bad)
    return lambda test: model.predict_proba(_frame(test))[:, 1]


def one_hot(train: Dataset) -> Callable[[Dataset], np.ndarray]:
    def matrix(data: Dataset) -> np.ndarray:
        return np.column_stack([data.columns[n] for n in NAMES]).astype(object)

    numeric = [NAMES.index(n) for n in NUMERIC]
    categorical = [NAMES.index(n) for n in CATEGORICAL]
    model = Pipeline([
        ("encode", ColumnTransformer([
            ("numeric", StandardScaler(), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
        ])),
        ("regression", LogisticRegression(max_iter=1000)),
    ])  # fmt: skip
    model.fit(matrix(train), train.bad)
    return lambda test: model.predict_proba(matrix(test))[:, 1]


def run(method: Method, data: Dataset, folds: int, repeats: int, seed: int) -> dict[str, float]:
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    aucs, kss, fits = [], [], []
    for train, test in splitter.split(np.zeros(data.bad.size), data.bad):
        training, held_out = data.rows(train), data.rows(test)
        started = time.perf_counter()
        risk = method(training)
        fits.append(time.perf_counter() - started)
        auc, ks = auc_ks(held_out.bad, -risk(held_out))
        aucs.append(auc)
        kss.append(ks)
    return {"auc_mean": float(np.mean(aucs)), "auc_std": float(np.std(aucs, ddof=1)),
            "ks_mean": float(np.mean(kss)), "fit_s": float(np.median(fits))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", default="10x5")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folds, repeats = (int(part) for part in args.cv.split("x"))
    path = german_credit_path()
    data = columns_of(csv_rows(path)[1], GERMAN_CREDIT.characteristics, str(path),
                      target=GERMAN_CREDIT_TARGET)  # fmt: skip
    methods: dict[str, Method] = {"lienwatch": lienwatch, "one-hot LR (baseline)": one_hot}
    try:
        import optbinning as _  # noqa: F401

        methods["optbinning (peer)"] = optbinning
    except ModuleNotFoundError:
        print("optbinning not installed (pip install 'lienwatch[bench]'): peer skipped")
    results = {}
    warnings.filterwarnings("ignore")  # optbinning's solver chatter
    for name, method in methods.items():
        results[name] = run(method, data, folds, repeats, args.seed)
        r = results[name]
        print(f"{name:<22} AUC {r['auc_mean']:.4f} ± {r['auc_std']:.4f}  KS {r['ks_mean']:.4f}  "
              f"fit median {r['fit_s'] * 1000:.0f} ms")  # fmt: skip
    ours = results["lienwatch"]
    for name, r in results.items():
        if name != "lienwatch":
            print(f"lienwatch / {name}: AUC x{ours['auc_mean'] / r['auc_mean']:.4f}, "
                  f"fit time x{ours['fit_s'] / r['fit_s']:.2f}")


if __name__ == "__main__":
    main()
