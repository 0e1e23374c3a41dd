"""Training data as columns: the German credit data set's layout and the one way to turn rows of
text (a CSV file as :mod:`lienwatch.tabular` reads it) into the columns a scorecard takes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lienwatch.errors import LienwatchError
from lienwatch.risk.scorecard import Characteristic, ScorecardSpec


class DatasetError(LienwatchError, ValueError):
    """A row that does not fit the data set's layout; the message names line and column."""


@dataclass(frozen=True, slots=True)
class Dataset:
    """Columns by characteristic name and the outcome (true = bad), one entry per row."""

    columns: dict[str, np.ndarray]
    bad: np.ndarray

    def rows(self, index: np.ndarray) -> Dataset:
        """The rows at ``index`` (a fold)."""
        return Dataset({k: v[index] for k, v in self.columns.items()}, self.bad[index])


_NUMERIC = ("duration_in_month", "credit_amount",
            "installment_rate_in_percentage_of_disposable_income", "present_residence_since",
            "age_in_years", "number_of_existing_credits_at_this_bank",
            "number_of_people_being_liable_to_provide_maintenance_for")  # fmt: skip
_CATEGORICAL = ("status_of_existing_checking_account", "credit_history", "purpose",
                "savings_account_and_bonds", "present_employment_since",
                "personal_status_and_sex", "other_debtors_or_guarantors", "property",
                "other_installment_plans", "housing", "job", "telephone",
                "foreign_worker")  # fmt: skip

#: The German credit data set (UCI Statlog, 1,000 applications, 300 bad; data/SOURCES.md).
#: Every numeric characteristic's bad rate is monotonic except the credit amount's, which is
#: a valley: small loans and large loans are both riskier than middling ones (the shape the
#: credit literature reports for this data). The hyper-parameters are the defaults of
#: ScorecardSpec, fixed once (docs/risk.md says how).
GERMAN_CREDIT = ScorecardSpec(
    characteristics=(
        *(Characteristic(name, "numeric", "valley" if name == "credit_amount" else "auto")
          for name in _NUMERIC),
        *(Characteristic(name, "categorical") for name in _CATEGORICAL),
    )
)  # fmt: skip
GERMAN_CREDIT_TARGET, GERMAN_CREDIT_BAD = "creditability", "bad"


def columns_of(
    rows: Iterable[tuple[int, Mapping[str, str]]], characteristics: Sequence[Characteristic],
    where: str,
    target: str | None = None, bad_value: str = "bad",
) -> Dataset:  # fmt: skip
    """Columns of ``characteristics`` from (line, row) pairs of text: numbers parsed (empty =
    missing), categories kept as text (empty = missing); with ``target`` the outcome, true
    where it is ``bad_value``. A bad number is a :class:`DatasetError` naming ``where``, line
    and column."""
    values: dict[str, list] = {c.name: [] for c in characteristics}
    outcome: list[bool] = []
    numeric = {c.name for c in characteristics if c.kind == "numeric"}
    for line, row in rows:
        for name, column in values.items():
            text = (row.get(name) or "").strip()
            if name not in numeric:
                column.append(text)
                continue
            try:
                column.append(float(text) if text else float("nan"))
            except ValueError:
                raise DatasetError(
                    f"{where}:{line}: column {name}: not a number {text!r}"
                ) from None
        if target is not None:
            outcome.append((row.get(target) or "").strip() == bad_value)
    columns = {name: np.array(column, dtype=float if name in numeric else object)
               for name, column in values.items()}  # fmt: skip
    return Dataset(columns, np.array(outcome, dtype=bool))
