"""Calendar rules for due dates: monthly periods anchored on the disbursement day."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

DEFAULT_TIME_ZONE = "Asia/Shanghai"


def add_months(anchor: date, months: int) -> date:
    """``anchor`` moved by ``months`` calendar months, clamped to the month's last day.

    Anchoring on the original day (not on the previous due date) keeps a loan disbursed on
    Jan 31 due on Feb 28/29, Mar 31, Apr 30, ... rather than drifting to the 28th forever.
    """
    month_index = anchor.month - 1 + months
    year = anchor.year + month_index // 12
    month = month_index % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return date(year, month, day)


def due_dates(start: date, term: int) -> list[date]:
    """The ``term`` monthly due dates of a loan disbursed on ``start``, the first a month later."""
    return [add_months(start, n) for n in range(1, term + 1)]


def local_date(moment: datetime, time_zone: str = DEFAULT_TIME_ZONE) -> date:
    """The calendar date of ``moment`` (timezone-aware, e.g. a UTC timestamp) in the loan's
    IANA ``time_zone``: due dates and payment value dates are local dates.

    Raises :class:`ValueError` naming ``moment`` for a naive datetime.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"moment: {moment.isoformat()} has no time zone")
    return moment.astimezone(ZoneInfo(time_zone)).date()


def ended_business_day(now: datetime, time_zone: str = DEFAULT_TIME_ZONE) -> date:
    """The last business day that has ended at ``now`` in ``time_zone``: yesterday there.
    The nightly run describes the end of a day, so this is the latest day it can run for."""
    return local_date(now, time_zone) - timedelta(days=1)
