"""Days past due, buckets, loan status and the bucket history.

DPD counts from the due date of the oldest installment with more than a tolerance unpaid,
less the product's grace days, never below zero. Buckets are non-overlapping DPD ranges, the
last one open-ended; the first range holding the DPD wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

import numpy as np


class LoanStatus(StrEnum):
    """Where a loan stands. Repossessed, settled and written-off are set by an operator."""

    ACTIVE = "active"
    DELINQUENT = "delinquent"
    CHARGED_OFF = "charged-off"  # accounting state: still collected, undone when the loan cures
    REPOSSESSED = "repossessed"
    SETTLED = "settled"  # paid off before maturity
    WRITTEN_OFF = "written-off"
    CLOSED = "closed"  # paid in full
    #: Paid in full, but the vehicle's mortgage registration (抵押登记) is not released yet:
    #: a loan is closed only once its registration is released.
    RELEASE_PENDING = "release-pending"


MANUAL_STATUSES = frozenset({LoanStatus.REPOSSESSED, LoanStatus.SETTLED, LoanStatus.WRITTEN_OFF})
#: Loans still followed up (collected, checked); the others' triggers all end.
LIVE_STATUSES = frozenset({LoanStatus.ACTIVE, LoanStatus.DELINQUENT, LoanStatus.CHARGED_OFF})
FINAL_STATUSES = frozenset(LoanStatus) - LIVE_STATUSES


@dataclass(frozen=True, slots=True)
class Bucket:
    """A named DPD range ``low``–``high`` inclusive; ``high`` ``None`` means open-ended."""

    name: str
    low: int
    high: int | None


@dataclass(frozen=True, slots=True)
class BucketScheme:
    """Contiguous buckets starting at DPD 0, the last one open-ended."""

    buckets: tuple[Bucket, ...]

    def __post_init__(self) -> None:
        if not self.buckets or self.buckets[0].low != 0:
            raise ValueError("buckets: the first bucket must start at DPD 0")
        for before, after in zip(self.buckets, self.buckets[1:], strict=False):
            if before.high is None or after.low != before.high + 1:
                raise ValueError(f"buckets: {after.name} must start right after {before.name}")
        if self.buckets[-1].high is not None:
            raise ValueError(f"buckets: the last bucket {self.buckets[-1].name} must be open-ended")
        if len({b.name for b in self.buckets}) != len(self.buckets):
            raise ValueError("buckets: names must be unique")

    @classmethod
    def from_bounds(cls, names: Sequence[str], upper_bounds: Sequence[int]) -> BucketScheme:
        """Buckets from names and the inclusive upper DPD of all but the last."""
        if len(names) != len(upper_bounds) + 1:
            raise ValueError("buckets: need exactly one more name than upper bounds")
        lows = [0, *(high + 1 for high in upper_bounds)]
        highs = [*upper_bounds, None]
        return cls(tuple(Bucket(n, lo, hi) for n, lo, hi in zip(names, lows, highs, strict=True)))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.buckets)

    def index(self, dpd: int) -> int:
        """Position of the bucket holding ``dpd`` (a non-negative number of days)."""
        if dpd < 0:
            raise ValueError(f"dpd: must not be negative, got {dpd}")
        return int(np.searchsorted(self._lows, dpd, side="right")) - 1

    def name_for(self, dpd: int) -> str:
        """Name of the bucket holding ``dpd``."""
        return self.buckets[self.index(dpd)].name

    def indices(self, dpd: np.ndarray) -> np.ndarray:
        """:meth:`index` over an array of DPDs."""
        return np.searchsorted(self._lows, dpd, side="right").astype(np.int8) - 1

    @property
    def _lows(self) -> np.ndarray:
        return np.array([b.low for b in self.buckets], dtype=np.int64)


DEFAULT_BUCKETS = BucketScheme.from_bounds(
    ["M0", "M1", "M2", "M3", "M4", "M5", "M6", "M7+"], [0, 30, 60, 90, 120, 150, 180]
)


def days_past_due(as_of: date, oldest_unpaid_due: date | None, grace_days: int = 0) -> int:
    """``as_of`` − ``oldest_unpaid_due`` − ``grace_days``, never below 0; 0 if nothing is unpaid."""
    if oldest_unpaid_due is None:
        return 0
    return max(0, (as_of - oldest_unpaid_due).days - grace_days)


def derive_status(
    *, dpd: int, paid_in_full: bool, matured: bool, charge_off_dpd: int,
    manual: LoanStatus | None = None,
) -> LoanStatus:
    """The status implied by the figures, unless an operator set a terminal one.

    Paid in full → ``closed`` (``settled`` when paid before maturity); DPD at or above
    ``charge_off_dpd`` → ``charged-off``; any DPD → ``delinquent``; else ``active``.
    """
    if manual is not None:
        if manual not in MANUAL_STATUSES:
            raise ValueError(f"status: {manual} cannot be set by hand")
        return manual
    if paid_in_full:
        return LoanStatus.CLOSED if matured else LoanStatus.SETTLED
    if dpd >= charge_off_dpd:
        return LoanStatus.CHARGED_OFF
    return LoanStatus.DELINQUENT if dpd > 0 else LoanStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class BucketChanged:
    """Event: a loan moved from one bucket to another on a date (consumed by follow-up)."""

    loan: str
    on: date
    from_bucket: str | None  # None: the loan's first recorded bucket
    to_bucket: str
    dpd: int

    def as_dict(self) -> dict[str, object]:
        """The event's wire form: ``{"loan", "date", "from", "to", "dpd"}``."""
        return {"loan": self.loan, "date": self.on.isoformat(), "from": self.from_bucket,
                "to": self.to_bucket, "dpd": self.dpd}


@dataclass
class BucketHistory:
    """Append-only bucket history of one loan: one row per change, dates never going back."""

    loan: str
    _rows: list[BucketChanged] = field(default_factory=list)

    @property
    def rows(self) -> tuple[BucketChanged, ...]:
        return tuple(self._rows)

    @property
    def current(self) -> str | None:
        return self._rows[-1].to_bucket if self._rows else None

    def observe(self, on: date, bucket: str, dpd: int) -> BucketChanged | None:
        """Record the bucket seen on ``on``; return the event when it differs from the last.

        Raises :class:`ValueError` for a date before the last recorded change: history is
        never rewritten, a correction is a new row.
        """
        if self._rows and on < self._rows[-1].on:
            raise ValueError(f"date: {on} is before the last bucket change {self._rows[-1].on}")
        if bucket == self.current:
            return None
        event = BucketChanged(self.loan, on, self.current, bucket, dpd)
        self._rows.append(event)
        return event
