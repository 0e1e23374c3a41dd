"""The process's clock: the one place lienwatch reads the current time.

Services, jobs and commands that need "now" call :func:`now` (or :func:`timestamp`), never
``datetime.now`` or ``time.time``, so that the time is an input: a test sets it, a drill on a
copy of last month's book replays it, and a suite passes on any day it runs.

The clock is the system clock shifted by a constant offset, zero by default; it runs at the
system clock's speed from wherever it was set, so a scheduler started at a set time still
ticks. Two ways set it:

- ``LIENWATCH_CLOCK=2026-02-17T08:30:00+08:00`` in the environment of a process: its clock
  starts at that time (read once, when the process first asks the time). Tests pass it to
  the ``serve``, ``worker`` and ``followup run`` processes they start; ``GET /api/v1/health``
  reports the offset so that an operator sees a process that does not run on real time.
- :func:`travel` inside one process (tests of in-process servers and jobs).

Durations (timeouts, intervals) are measured with ``time.monotonic``, which no one sets.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from lienwatch.errors import LienwatchError

ENVIRONMENT_VARIABLE = "LIENWATCH_CLOCK"


class ClockError(LienwatchError, ValueError):
    """``LIENWATCH_CLOCK`` is not an ISO time with a UTC offset."""


def _parse(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ClockError(f"{ENVIRONMENT_VARIABLE}: {text!r} is not an ISO time") from None
    if moment.tzinfo is None:
        raise ClockError(
            f"{ENVIRONMENT_VARIABLE}: {text!r} needs a UTC offset, e.g. 2026-02-17T08:30:00+08:00"
        )
    return moment


def _offset_from_environment() -> float:
    text = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    return _parse(text).timestamp() - time.time() if text else 0.0


_offset_s: float | None = None  # read from the environment at the first question


def _offset() -> float:
    global _offset_s
    if _offset_s is None:
        _offset_s = _offset_from_environment()
    return _offset_s


def timestamp() -> float:
    """Seconds since the Unix epoch on the process's clock."""
    return time.time() + _offset()


def now() -> datetime:
    """The current time on the process's clock, aware, in UTC."""
    return datetime.fromtimestamp(timestamp(), UTC)


def offset() -> timedelta:
    """How far the process's clock is from the system clock (zero unless it was set)."""
    return timedelta(seconds=_offset())


@contextmanager
def travel(to: datetime) -> Iterator[None]:
    """Run the block with the clock set to ``to`` (aware), running from there; restored on
    exit. For tests: one process has one clock, so blocks must not overlap across threads."""
    if to.tzinfo is None:
        raise ClockError(f"travel: {to.isoformat()} needs a UTC offset")
    global _offset_s
    saved, _offset_s = _offset_s, to.timestamp() - time.time()
    try:
        yield
    finally:
        _offset_s = saved
