"""Abnormal payments (异常交易行为): named rules and an unsupervised score over a table of
payments. Each finding is a payment with its reason codes, ready to become a
``payment_anomaly`` alert; the unsupervised score orders payments for review and data quality
and must not feed credit decisions (it has no label behind it).

Rules (reason codes):

- ``PAYER_NOT_BORROWER``: the paying account is not one the borrower registered;
- ``SHARED_PAYER``: one paying account pays for ``shared_payer_min`` or more borrowers;
- ``SPLIT_PAYMENT``: ``split_min_parts`` or more payments of one loan on one day, each under
  the installment, together within ``split_tolerance`` of it;
- ``ROUND_SUM``: a multiple of ``round_unit`` that is not the installment (cash deposits);
- ``JUST_UNDER_THRESHOLD``: within ``under_threshold_margin`` below a reporting threshold;
- ``CHANNEL_CHANGE``: a channel the loan never used in its ``history_min`` or more earlier
  payments, other than the ``ordinary_channels`` (a failed debit followed by a transfer from
  the borrower's own account is how repayment normally goes);
- ``TIME_CHANGE``: ``hour_shift`` hours or more from the loan's usual (median) local hour over
  its ``history_min`` or more earlier payments.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from lienwatch.errors import LienwatchError


class PaymentRulesError(LienwatchError, ValueError):
    """Payment columns that do not line up."""


@dataclass(frozen=True, slots=True)
class Payments:
    """Payments as parallel columns, sorted by time: ``paid_at`` epoch seconds, ``local_hour``
    0–23 in the borrower's zone (-1 when only the value date is known: a payment imported
    from a file without times, which the hour rule neither judges nor learns from), money in
    fen; ``installment`` is the loan's regular installment."""

    payment_id: Sequence[str]
    loan: Sequence[str]
    borrower: Sequence[str]
    payer_account: Sequence[str]
    paid_at: np.ndarray
    local_hour: np.ndarray
    amount: np.ndarray
    channel: Sequence[str]
    installment: np.ndarray

    def __len__(self) -> int:
        return len(self.payment_id)


@dataclass(frozen=True, slots=True)
class PaymentLimits:
    """The rules' thresholds."""

    shared_payer_min: int = 3
    split_min_parts: int = 3
    split_tolerance: float = 0.05
    round_unit: int = 100_000  # 1,000 yuan
    thresholds: tuple[int, ...] = (5_000_000,)  # 50,000 yuan: large cash transactions
    under_threshold_margin: float = 0.05
    history_min: int = 3
    hour_shift: int = 6
    ordinary_channels: tuple[str, ...] = ("bank_debit", "transfer")


@dataclass(frozen=True, slots=True)
class PaymentFinding:
    """A payment a rule flagged, with every reason code that fired."""

    payment_id: str
    loan: str
    reasons: tuple[str, ...]
    details: dict[str, str] = field(default_factory=dict)

    def as_alert(self) -> dict[str, object]:
        """The finding as the payload of a ``payment_anomaly`` alert."""
        return {"type": "payment_anomaly", "loan": self.loan, "payment": self.payment_id,
                "reasons": list(self.reasons), "details": self.details}  # fmt: skip


def _shared_payers(p: Payments, limits: PaymentLimits) -> dict[str, int]:
    borrowers: dict[str, set[str]] = defaultdict(set)
    for account, borrower in zip(p.payer_account, p.borrower, strict=True):
        borrowers[account].add(borrower)
    return {a: len(b) for a, b in borrowers.items() if len(b) >= limits.shared_payer_min}


def _splits(p: Payments, limits: PaymentLimits) -> set[int]:
    """Rows that are parts of a split installment."""
    days: dict[tuple[str, int], list[int]] = defaultdict(list)
    paid_day = (np.asarray(p.paid_at) // 86_400).tolist()
    for k, loan_day in enumerate(zip(p.loan, paid_day, strict=True)):
        days[loan_day].append(k)
    amount = np.asarray(p.amount).tolist()
    found: set[int] = set()
    for rows in days.values():
        if len(rows) < limits.split_min_parts:
            continue
        installment = int(p.installment[rows[0]])
        total = sum(amount[k] for k in rows)
        small = all(amount[k] < installment for k in rows)
        if small and abs(total - installment) <= limits.split_tolerance * installment:
            found.update(rows)
    return found


def _habits(p: Payments, limits: PaymentLimits) -> tuple[set[int], set[int]]:
    """Rows paid through a new channel, and rows at an unusual hour, judged on the loan's
    earlier payments."""
    channels: dict[str, Counter[str]] = defaultdict(Counter)
    hours: dict[str, list[int]] = defaultdict(list)  # each loan's earlier known hours, sorted
    new_channel, odd_hour = set(), set()
    for k in np.argsort(p.paid_at, kind="stable").tolist():
        loan, hour, channel = p.loan[k], int(p.local_hour[k]), p.channel[k]
        seen, earlier = channels[loan], hours[loan]
        if (seen.total() >= limits.history_min and channel not in seen
                and channel not in limits.ordinary_channels):  # fmt: skip
            new_channel.add(k)
        if hour >= 0 and len(earlier) >= limits.history_min:
            usual = _median_hour(earlier)
            if min(abs(hour - usual), 24 - abs(hour - usual)) >= limits.hour_shift:
                odd_hour.add(k)
        seen[channel] += 1
        if hour >= 0:
            bisect.insort(earlier, hour)
    return new_channel, odd_hour


def _median_hour(hours: list[int]) -> int:
    """The median of sorted hours, the mean of the middle two rounded down when they are even
    in number (``int(np.median(hours))`` without numpy's per-call cost: one per payment)."""
    middle = len(hours) // 2
    return (hours[middle - 1 + len(hours) % 2] + hours[middle]) // 2


def payment_findings(
    p: Payments, accounts: Mapping[str, set[str]], limits: PaymentLimits = PaymentLimits()
) -> list[PaymentFinding]:
    """Every payment at least one rule flags, in the table's order. ``accounts`` maps a
    borrower to the paying accounts they registered."""
    shared = _shared_payers(p, limits)
    splits = _splits(p, limits)
    new_channel, odd_hour = _habits(p, limits)
    found = []
    for k in range(len(p)):
        reasons, details = [], {}
        amount, installment = int(p.amount[k]), int(p.installment[k])
        if p.payer_account[k] not in accounts.get(p.borrower[k], set()):
            reasons.append("PAYER_NOT_BORROWER")
        if p.payer_account[k] in shared:
            reasons.append("SHARED_PAYER")
            details["payer_borrowers"] = str(shared[p.payer_account[k]])
        if k in splits:
            reasons.append("SPLIT_PAYMENT")
        if amount % limits.round_unit == 0 and amount != installment:
            reasons.append("ROUND_SUM")
        if any((1 - limits.under_threshold_margin) * t <= amount < t for t in limits.thresholds):
            reasons.append("JUST_UNDER_THRESHOLD")
        if k in new_channel:
            reasons.append("CHANNEL_CHANGE")
        if k in odd_hour:
            reasons.append("TIME_CHANGE")
        if reasons:
            found.append(PaymentFinding(p.payment_id[k], p.loan[k], tuple(reasons), details))
    return found


#: The columns of :func:`features`, in order.
FEATURE_NAMES = ("log_amount_over_installment", "hour_sin", "hour_cos", "payer_borrowers",
                 "payer_not_borrower", "payments_that_day", "round_sum")  # fmt: skip


def features(p: Payments, accounts: Mapping[str, set[str]]) -> np.ndarray:
    """What the unsupervised score looks at, one row per payment (:data:`FEATURE_NAMES`): log
    of amount over installment, the hour on the clock face, how many borrowers the payer pays
    for, whether the payer is the borrower's, how many payments the loan made that day,
    roundness."""
    borrowers: dict[str, set[str]] = defaultdict(set)
    for account, borrower in zip(p.payer_account, p.borrower, strict=True):
        borrowers[account].add(borrower)
    per_day = Counter(zip(p.loan, (np.asarray(p.paid_at) // 86_400).tolist(), strict=True))
    amount = np.asarray(p.amount, dtype=float)
    known = np.asarray(p.local_hour) >= 0  # an unknown hour sits at the clock face's centre
    hour = np.asarray(p.local_hour, dtype=float) * 2 * np.pi / 24
    return np.column_stack([
        np.log(np.maximum(amount, 1) / np.maximum(np.asarray(p.installment, dtype=float), 1)),
        np.where(known, np.sin(hour), 0.0), np.where(known, np.cos(hour), 0.0),
        [len(borrowers[a]) for a in p.payer_account],
        [a not in accounts.get(b, set()) for a, b in zip(p.payer_account, p.borrower,
                                                         strict=True)],
        [per_day[(loan, day)] for loan, day in zip(p.loan, (np.asarray(p.paid_at) // 86_400)
                                                   .tolist(), strict=True)],
        (np.asarray(p.amount) % 100_000 == 0),
    ]).astype(float)  # fmt: skip


def anomaly_scores(p: Payments, accounts: Mapping[str, set[str]], seed: int = 0,
                   x: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """An isolation-forest score per payment (scikit-learn, seeded; higher = stranger), for
    review queues and data quality only. ``x``: the :func:`features` when already computed."""
    from sklearn.ensemble import IsolationForest

    if len(p) < 2:
        return np.zeros(len(p))
    x = features(p, accounts) if x is None else x
    forest = IsolationForest(n_estimators=200, random_state=seed).fit(x)
    return -forest.score_samples(x)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The rows of the ``k`` highest scores, highest first (ties in table order)."""
    return np.argsort(-scores, kind="stable")[:k]
