"""What an agent may record as a task's outcome: rules on values, no database."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from lienwatch.followup.model import Channel, FollowupError, Outcome

UNREACHED = frozenset({Outcome.NO_ANSWER, Outcome.WRONG_NUMBER, Outcome.UNREACHABLE})
MAX_PROMISE_FEN = 10**12  # 10,000,000,000.00 yuan: the API's bound, and within a BIGINT


def check_outcome(
    outcome: Outcome,
    channel: Channel,
    *,
    promised_on: date | None,
    amount: int | None,
    recording_ref: str | None,
    visit_needs_recording: bool,
    at: datetime,
    promise_within: timedelta = timedelta(days=30),
) -> None:
    """Refuse an outcome the task cannot have, naming the field: a promise without a date,
    a positive amount (at most :data:`MAX_PROMISE_FEN`), with a date in the past or further
    ahead than ``promise_within`` (the strategy's); a field
    visit without its recording where the profile requires one; ``delivered``, which only
    automatic messages have."""
    if at.tzinfo is None:
        raise FollowupError("at: must carry a time zone")
    if outcome is Outcome.PROMISE_TO_PAY:
        if promised_on is None:
            raise FollowupError("promised_on: a promise to pay needs a date")
        if amount is None or amount <= 0:
            raise FollowupError("amount: a promise to pay needs a positive amount")
        if amount > MAX_PROMISE_FEN:
            raise FollowupError("amount: a promise to pay is at most 10,000,000,000.00 yuan")
        if promised_on < at.date() - timedelta(days=1):
            raise FollowupError("promised_on: a promise cannot be dated in the past")
        if promised_on > at.date() + promise_within:
            raise FollowupError(f"promised_on: a promise to pay is at most "
                                f"{promise_within.days} days ahead (the strategy's "
                                "promise_within)")  # fmt: skip
    if channel is Channel.VISIT and visit_needs_recording and not recording_ref:
        raise FollowupError("recording_ref: a field visit must carry a recording reference")
    if outcome is Outcome.DELIVERED:
        raise FollowupError("outcome: delivered is for automatic messages, not agent work")
