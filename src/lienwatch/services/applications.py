"""Decisions on loan applications (贷前调查, 贷款审批) for callers that hold them as rows of
text: the API's ``POST /api/v1/applications``. The checks, scorecard and policy are the
pure rules of :mod:`lienwatch.risk`, the same as ``lienwatch risk score`` (docs/risk.md)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from functools import cache
from pathlib import Path

from lienwatch.data import german_credit_path
from lienwatch.risk.applications import REQUIRED, ApplicationError, decide_batch, parse_application
from lienwatch.risk.datasets import (
    GERMAN_CREDIT,
    GERMAN_CREDIT_BAD,
    GERMAN_CREDIT_TARGET,
    Dataset,
    columns_of,
)
from lienwatch.risk.policy import Decision, Policy, shipped_policy
from lienwatch.risk.scorecard import Scorecard, fit_scorecard
from lienwatch.tabular import InputFileError, csv_rows


def german_credit(path: Path | None = None) -> Dataset:
    """The German credit rows with their outcome: the shipped file, or one of the same
    layout; a file without both good and bad rows is an :class:`InputFileError`."""
    path = path or german_credit_path()
    needed = (GERMAN_CREDIT_TARGET, *(c.name for c in GERMAN_CREDIT.characteristics))
    _, rows = csv_rows(path, required=needed)
    data = columns_of(rows, GERMAN_CREDIT.characteristics, str(path),
                      target=GERMAN_CREDIT_TARGET, bad_value=GERMAN_CREDIT_BAD)  # fmt: skip
    if data.bad.all() or not data.bad.any():
        raise InputFileError(f"{path}: column {GERMAN_CREDIT_TARGET} needs both good and bad rows")
    return data


@cache
def shipped_scorecard() -> Scorecard:
    """The scorecard fitted on every row of the shipped German credit data (once a process;
    the same table ``lienwatch risk fit`` prints)."""
    data = german_credit()
    return fit_scorecard(data.columns, data.bad, GERMAN_CREDIT)


def decide_applications(
    rows: Sequence[Mapping[str, str]], *, card: Scorecard | None = None,
    policy: Policy | None = None, blacklist: Mapping[str, Collection[str]] | None = None,
) -> list[Decision]:  # fmt: skip
    """Check, score and decide each application (a row of the columns of docs/risk.md, as
    text), the batch linked for fraud rings; a bad row is an :class:`ApplicationError`
    naming ``applications[k]`` and the column."""
    card = card or shipped_scorecard()
    for k, row in enumerate(rows):
        missing = [c for c in (*REQUIRED, *card.names) if c not in row]
        if missing:
            raise ApplicationError(f"applications[{k}], column {missing[0]}: missing")
    apps = [parse_application(f"applications[{k}]", row) for k, row in enumerate(rows)]
    columns = columns_of(enumerate(rows), card.inputs, "applications").columns
    return decide_batch(apps, columns, card, policy or shipped_policy(),
                        blacklist=blacklist or {})  # fmt: skip
