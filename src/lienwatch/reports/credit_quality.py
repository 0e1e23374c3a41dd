"""Roll rates, cure rates and vintage curves, from the nightly run's ``loan_snapshots`` (read
by :func:`lienwatch.services.reads.portfolio.month_end_snapshots`).

Both look at the book month by month: a loan's figures for a calendar month are those of its
last snapshot in that month (the month-end run, or the latest before it). Balances are
outstanding principal in fen; rates are ratios of balances.

* **Roll rate** and **cure rate** of bucket *b* in month *m*: the one definition of
  :mod:`lienwatch.domain.rolls`, with the loans in *b* at the end of *m* observed again at the
  end of *m + 1*, weighted by their outstanding principal at the end of *m*: the share in a
  deeper bucket (roll) or in the first bucket (cure) a month later.
* **Vintage curve**: for the loans disbursed in one calendar month, at each month on book
  (0 = the disbursement month), the outstanding principal of those at ``DPD ≥ 30`` (and
  ``≥ 90``) over the principal the vintage disbursed.

Only loans with a snapshot at the end of both months count for a roll or cure rate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from lienwatch.domain.delinquency import DEFAULT_BUCKETS
from lienwatch.domain.rolls import Move, flows
from lienwatch.services.reads.portfolio import MonthEnd


@dataclass(frozen=True, slots=True)
class RollRate:
    """Where the balance of one bucket at the end of ``month`` was a month later."""

    month: date  # first day of the month the loans were in ``bucket``
    bucket: str
    loans: int
    balance: int  # fen, at the end of ``month``
    rolled: int  # of ``balance``: in a deeper bucket a month later
    cured: int  # of ``balance``: current a month later
    to: dict[str, int] = field(default_factory=dict)  # of ``balance``: bucket a month later

    @property
    def roll_rate(self) -> float | None:
        """``rolled / balance``; ``None`` for an empty bucket."""
        return self.rolled / self.balance if self.balance else None

    @property
    def cure_rate(self) -> float | None:
        """``cured / balance``; ``None`` for an empty bucket."""
        return self.cured / self.balance if self.balance else None


@dataclass(frozen=True, slots=True)
class VintagePoint:
    """A vintage (loans disbursed in one month) at one month on book."""

    vintage: date  # first day of the disbursement month
    months_on_book: int
    loans: int  # of the vintage
    disbursed: int  # fen, principal the vintage disbursed
    dpd30_balance: int  # fen, outstanding principal of its loans at DPD ≥ 30
    dpd90_balance: int  # fen, at DPD ≥ 90

    @property
    def dpd30_share(self) -> float:
        return self.dpd30_balance / self.disbursed

    @property
    def dpd90_share(self) -> float:
        return self.dpd90_balance / self.disbursed


def roll_rates(
    snapshots: Iterable[MonthEnd], buckets: Sequence[str] = DEFAULT_BUCKETS.names
) -> list[RollRate]:
    """Roll and cure rates per month and bucket, ordered by month then bucket.

    ``buckets`` lists the bucket names from current to deepest. Months whose next month has
    no snapshots give no rows; the deepest bucket cannot roll (its ``rolled`` is 0) and the
    first cannot cure (:func:`lienwatch.domain.rolls.flows`). Raises :class:`ValueError`
    naming ``bucket`` for a name not listed.
    """
    by_month: dict[date, dict[int, MonthEnd]] = defaultdict(dict)
    for row in snapshots:
        by_month[row.month][row.loan] = row
    rates: list[RollRate] = []
    for month in sorted(by_month):
        after = by_month.get(_next_month(month))
        if after is None:
            continue
        moves = (
            Move(row.bucket, after[loan].bucket, row.outstanding)
            for loan, row in by_month[month].items()
            if loan in after
        )
        rates.extend(
            RollRate(month, f.bucket, f.count, f.weight, f.rolled, f.cured, f.to)
            for f in flows(moves, buckets)
        )
    return rates


def vintage_curves(snapshots: Iterable[MonthEnd]) -> list[VintagePoint]:
    """30+ and 90+ balances by vintage and month on book, ordered by vintage then month.

    A vintage's disbursed principal counts every loan of it seen in ``snapshots``; months
    before a loan's first snapshot count it as current.
    """
    rows = list(snapshots)
    vintage_loans: dict[date, dict[int, int]] = defaultdict(dict)
    at_risk: dict[tuple[date, int], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        vintage = _month(row.disbursed_on)
        vintage_loans[vintage][row.loan] = row.principal
        mob = _months_between(vintage, row.month)
        balances = at_risk[vintage, mob]
        if row.dpd >= 30:
            balances[0] += row.outstanding
        if row.dpd >= 90:
            balances[1] += row.outstanding
    return [
        VintagePoint(vintage, mob, len(vintage_loans[vintage]),
                     sum(vintage_loans[vintage].values()), *at_risk[vintage, mob])
        for vintage, mob in sorted(at_risk)
    ]  # fmt: skip


def _month(day: date) -> date:
    return day.replace(day=1)


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _months_between(earlier: date, later: date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month
