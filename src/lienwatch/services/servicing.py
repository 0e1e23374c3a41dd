"""The nightly servicing run: the book as of a business day, recorded in the caller's
transaction, and the catch-up of the days a stopped scheduler missed. A loan paid in full
closes only once its vehicle's mortgage registration is released (``release-pending`` until
then)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from itertools import pairwise

import numpy as np
from sqlalchemy.orm import Session

from lienwatch.ledger.collateral import Registration, pledged_loans
from lienwatch.services.ledger import collateral_registrations
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.servicing.portfolio import hold_until_released, run_portfolio
from lienwatch.store.locks import NIGHTLY_LOCK, try_advisory_lock
from lienwatch.store.servicing import (
    RunCounts,
    StoredBook,
    book_as_of,
    last_run_day,
    load_book,
    record_run,
)


def run_nightly(
    session: Session, catalogue: ProductCatalogue, *, as_of: date, workers: int = 1
) -> RunCounts:
    """The nightly portfolio run as of the end of ``as_of``, in the caller's transaction,
    computed in ``workers`` processes."""
    stored = load_book(session, catalogue, as_of=as_of)
    return _run(session, stored, collateral_registrations(session), as_of, workers)


def run_nightly_days(
    session: Session, catalogue: ProductCatalogue, *, days: Sequence[date], workers: int = 1
) -> list[RunCounts]:
    """The nightly runs of ``days`` one after the other, in the caller's transaction: what
    :func:`run_nightly` records day by day (the history of a book brought in mid-life), with
    the book, its payments and the ledger's registrations read once. Raises
    :class:`ValueError` unless ``days`` are in increasing order (each run starts from the
    buckets the one before recorded)."""
    if any(later <= earlier for earlier, later in pairwise(days)):
        raise ValueError(f"days: must be in increasing order, got {[str(d) for d in days]}")
    if not days:
        return []
    book = load_book(session, catalogue, as_of=days[-1])
    registered = collateral_registrations(session)
    return [_run(session, book_as_of(session, book, day), registered, day, workers)
            for day in days]  # fmt: skip


def _run(session: Session, stored: StoredBook, registered: Sequence[Registration], as_of: date,
         workers: int) -> RunCounts:  # fmt: skip
    result = run_portfolio(
        stored.book,
        stored.payments,
        as_of,
        previous_bucket=stored.previous_bucket,
        manual_status=stored.manual_status,
        workers=workers,
    )
    pledged = pledged_loans(registered, as_of)
    held = np.fromiter((ref in pledged for ref in stored.book.loan_id), bool, len(stored.book))
    result = replace(result, status=hold_until_released(result.status, held))
    return record_run(session, stored, result)


@dataclass(frozen=True, slots=True)
class NightlyStep:
    """What :func:`run_next_missing_day` did: the day it ran (None: nothing was missing, or
    ``busy``: another worker holds the nightly run)."""

    day: date | None
    counts: RunCounts | None = None
    busy: bool = False


def run_next_missing_day(
    session: Session, catalogue: ProductCatalogue, *, through: date, max_days: int,
    after: date | None = None, workers: int = 1,
) -> NightlyStep:  # fmt: skip
    """Run the oldest business day not yet run, up to ``through``, in the caller's transaction.

    The missing days are those after the latest snapshot (and after ``after``, the day the
    caller ran last), at most the last ``max_days`` before ``through``; a book without
    snapshots misses only ``through``. Days run oldest first, because each run starts from
    the previous day's buckets, and a day already recorded is never run again: re-running an
    old day after a newer one would move loan statuses back. Older gaps stay gaps (run them
    with ``lienwatch servicing run --as-of`` one by one, oldest first).

    On PostgreSQL a transaction-level advisory lock lets one worker at a time run; the others
    get ``busy`` and skip. The missing day is read under the lock, so a day another worker
    has just committed is not run twice.
    """
    if not try_advisory_lock(session, NIGHTLY_LOCK):
        return NightlyStep(None, busy=True)
    day = _next_missing_day(session, through=through, max_days=max_days, after=after)
    if day is None:
        return NightlyStep(None)
    return NightlyStep(day, run_nightly(session, catalogue, as_of=day, workers=workers))


def _next_missing_day(
    session: Session, *, through: date, max_days: int, after: date | None
) -> date | None:
    if max_days < 1:
        raise ValueError(f"max_days: must be at least 1, got {max_days}")
    latest = last_run_day(session)
    candidates = [through - timedelta(days=max_days - 1)]
    candidates += [d + timedelta(days=1) for d in (latest, after) if d is not None]
    if latest is None and after is None:
        candidates = [through]
    day = max(candidates)
    return day if day <= through else None

