"""The compliance guard: the one choke point every outbound contact passes.

A channel sends nothing without a :class:`Permit`, and a permit is honoured only by the guard
that issued it, once (:meth:`ComplianceGuard.redeem`): a hand-made or reused permit is refused.
Profiles:

* ``cn`` (NIFA 2024 / China Banking Association): no contact 22:00–08:00 borrower-local unless
  the debtor agreed; at most 3 connected calls per debtor per local day, counted across the
  lender and its agencies; third parties (emergency contacts) only to restore contact; field
  visits carry a recording reference.
* ``us`` (Regulation F): contact only 08:00–21:00 at the consumer's location unless consented
  (§1006.6(b)(1)); at most 7 call attempts in 7 consecutive days, and none within 7 days after
  a telephone conversation, the conversation's day being the first (§1006.14(b)(2)); calls made
  with the consumer's prior consent do not count.

Do-not-contact and dispute holds refuse every contact. A refusal names its rule and, when
one exists, the next time the same contact would be allowed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from lienwatch.followup.model import Channel, FollowupError

Recipient = Literal["debtor", "emergency_contact"]
Purpose = Literal["collection", "routine", "restore_contact"]


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    day_start: time  # first allowed local time
    day_end: time  # first forbidden local time
    connected_calls_per_day: int | None  # cn
    attempts_per_week: int | None  # us: call attempts in 7 consecutive days
    quiet_days_after_conversation: int  # us: 7 (the conversation's day counts)
    visit_needs_recording: bool


_MAX_DEFERRALS = 32

PROFILES: dict[str, Profile] = {
    "cn": Profile("cn", time(8), time(22), 3, None, 0, True),
    "us": Profile("us", time(8), time(21), None, 7, 7, False),
}


def profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise FollowupError(f"profile: unknown compliance profile {name!r} (cn, us)") from None


@dataclass(frozen=True, slots=True)
class PastContact:
    """A contact already made with the debtor, by the lender or any of its agencies."""

    at: datetime
    channel: Channel
    connected: bool = False  # a call that was answered
    conversation: bool = False  # a telephone conversation about the debt took place
    consented: bool = False  # made with the consumer's prior consent (not counted under us)


@dataclass(frozen=True, slots=True)
class ContactRequest:
    loan: str
    channel: Channel
    at: datetime  # aware
    time_zone: str  # the borrower's IANA zone
    recipient: Recipient = "debtor"
    purpose: Purpose = "collection"
    consented: bool = False  # the debtor agreed to this contact at this time
    do_not_contact: bool = False
    dispute_hold: bool = False


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to make exactly one contact; only meaningful to the guard that issued it."""

    number: int
    request: ContactRequest


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rule: str  # "ok" or the rule that refused
    next_allowed_at: datetime | None = None
    permit: Permit | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, object]:
        nxt = self.next_allowed_at
        return {
            "allowed": self.allowed,
            "reason": self.rule,
            "next_allowed_at": nxt.astimezone(UTC).isoformat() if nxt else None,
        }


class ComplianceGuard:
    """Checks contacts against a profile and issues single-use permits for the allowed ones."""

    def __init__(self, profile_name: str) -> None:
        self.profile = profile(profile_name)
        self._numbers = itertools.count(1)
        self._outstanding: dict[int, Permit] = {}

    def check(self, request: ContactRequest, history: Sequence[PastContact] = ()) -> Decision:
        """Decide ``request`` given the debtor's past contacts; an allowed decision carries a
        permit for exactly this contact."""
        if request.at.tzinfo is None:
            raise FollowupError("at: a contact time must carry a time zone")
        if not request.channel.contacts_borrower:
            raise FollowupError(f"channel: {request.channel.value} is not an outbound contact")
        refusal = self._refusal(request, history)
        if refusal is not None:
            return self._with_next_allowed(refusal, request, history)
        permit = Permit(next(self._numbers), request)
        self._outstanding[permit.number] = permit
        return Decision(True, "ok", request.at, permit)

    def redeem(self, permit: Permit, channel: Channel) -> ContactRequest:
        """Consume ``permit`` for a contact on ``channel``; anything not issued here, used
        already or for another channel raises FollowupError."""
        issued = self._outstanding.get(permit.number)
        if issued is None or issued is not permit:
            raise FollowupError("permit: not issued by this compliance guard, or already used")
        if permit.request.channel is not channel:
            raise FollowupError(
                f"permit: issued for {permit.request.channel.value}, not {channel.value}"
            )
        del self._outstanding[permit.number]
        return permit.request

    def _with_next_allowed(
        self, refusal: Decision, request: ContactRequest, history: Sequence[PastContact]
    ) -> Decision:
        """Move ``next_allowed_at`` on until every rule allows it (one rule's opening can be
        another rule's quiet time, e.g. the day after a cap falls in quiet hours)."""
        later = refusal.next_allowed_at
        for _ in range(_MAX_DEFERRALS):
            if later is None:
                return refusal
            again = self._refusal(replace(request, at=later), history)
            if again is None:
                return Decision(False, refusal.rule, later.astimezone(UTC))
            later = again.next_allowed_at
        raise FollowupError(f"at: no allowed time found for {request.loan} after {request.at}")

    def _refusal(self, request: ContactRequest, history: Sequence[PastContact]) -> Decision | None:
        if request.do_not_contact:
            return Decision(False, "do_not_contact")
        if request.dispute_hold:
            return Decision(False, "dispute_hold")
        if request.recipient == "emergency_contact" and request.purpose != "restore_contact":
            return Decision(False, "third_party_only_to_restore_contact")
        zone = ZoneInfo(request.time_zone)
        local = request.at.astimezone(zone)
        if (
            request.channel.keeps_contact_hours
            and not request.consented
            and not self._within_hours(local)
        ):
            return Decision(False, "quiet_hours", self._next_open(local, local.date(), zone))
        if request.channel.is_call and request.recipient == "debtor":
            return self._call_refusal(local, zone, history)
        return None

    def _within_hours(self, local: datetime) -> bool:
        return self.profile.day_start <= local.time().replace(tzinfo=None) < self.profile.day_end

    def contact_window_opens(self, at: datetime, time_zone: str) -> datetime:
        """The first moment at or after ``at`` inside the contact hours of ``time_zone``, in
        UTC: when a contact step's SLA clock starts (quiet hours do not count against it)."""
        zone = ZoneInfo(time_zone)
        local = at.astimezone(zone)
        return self._next_open(local, local.date(), zone).astimezone(UTC)

    def _next_open(self, local: datetime, earliest: date, zone: ZoneInfo) -> datetime:
        """The first allowed local moment on or after ``earliest`` and not before ``local``."""
        day = earliest
        while True:
            opening = datetime.combine(day, self.profile.day_start, tzinfo=zone)
            # Round-trip through UTC so a DST gap resolves to a real wall-clock time.
            opening = opening.astimezone(UTC).astimezone(zone)
            if day == local.date() and self._within_hours(local):
                return local
            if opening > local and self._within_hours(opening):
                return opening
            day += timedelta(days=1)

    def _call_refusal(
        self, local: datetime, zone: ZoneInfo, history: Sequence[PastContact]
    ) -> Decision | None:
        calls = [c for c in history if c.channel.is_call and c.at <= local]
        days = [c.at.astimezone(zone).date() for c in calls]
        cap = self.profile.connected_calls_per_day
        if cap is not None:
            connected = sum(
                1 for c, d in zip(calls, days, strict=True) if c.connected and d == local.date()
            )
            if connected >= cap:
                nxt = self._next_open(local, local.date() + timedelta(days=1), zone)
                return Decision(False, "connected_calls_per_day", nxt)
        quiet = self.profile.quiet_days_after_conversation
        if quiet:
            talks = [d for c, d in zip(calls, days, strict=True) if c.conversation]
            if talks and (local.date() - max(talks)).days < quiet:
                nxt = self._next_open(local, max(talks) + timedelta(days=quiet), zone)
                return Decision(False, "call_after_conversation", nxt)
        weekly = self.profile.attempts_per_week
        if weekly is not None:
            counted = sorted(d for c, d in zip(calls, days, strict=True) if not c.consented)
            day = local.date()
            while sum(1 for d in counted if 0 <= (day - d).days < 7) >= weekly:
                day += timedelta(days=1)
            if day != local.date():
                return Decision(False, "call_attempts_in_7_days", self._next_open(local, day, zone))
        return None


#: The rule refusing a tracker command that no supervisor approved.
NEEDS_SUPERVISOR = "tracker_command_needs_supervisor"


def authorize_tracker_command(
    *, dpd: int, approved_by: str | None, approver_role: str | None
) -> Decision:
    """Immobilisation or fuel cut: only on a loan past due, with a supervisor's approval."""
    if dpd <= 0:
        return Decision(False, "tracker_command_not_past_due")
    if not approved_by or approver_role != "supervisor":
        return Decision(False, NEEDS_SUPERVISOR)
    return Decision(True, "ok")
