"""The compliance guard: quiet hours in borrower-local time (DST included), call caps, holds,
third parties, and permits that only the issuing guard honours, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lienwatch.followup.compliance import (
    ComplianceGuard,
    ContactRequest,
    PastContact,
    Permit,
    authorize_tracker_command,
)
from lienwatch.followup.model import Channel, FollowupError

SHANGHAI = "Asia/Shanghai"
NEW_YORK = "America/New_York"


def at_local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def call(zone: str, when: datetime, channel: Channel = Channel.CALL, **kw) -> ContactRequest:
    return ContactRequest("L1", channel, when, zone, **kw)


def test_cn_quiet_hours_refuse_with_the_next_morning():
    guard = ComplianceGuard("cn")
    decision = guard.check(call(SHANGHAI, at_local(SHANGHAI, 2026, 3, 1, 22, 30)))
    assert (decision.allowed, decision.rule) == (False, "quiet_hours")
    assert decision.next_allowed_at == at_local(SHANGHAI, 2026, 3, 2, 8, 0)
    assert guard.check(call(SHANGHAI, at_local(SHANGHAI, 2026, 3, 1, 21, 59))).allowed


def test_cn_caps_connected_calls_per_day_across_agencies():
    guard = ComplianceGuard("cn")
    morning = at_local(SHANGHAI, 2026, 3, 1, 9, 0)
    history = [
        PastContact(morning + timedelta(hours=h), Channel.CALL, connected=True) for h in range(3)
    ]
    unanswered = [PastContact(morning, Channel.CALL, connected=False)] * 5
    later = morning + timedelta(hours=5)
    assert guard.check(call(SHANGHAI, later), history[:2] + unanswered).allowed
    refused = guard.check(call(SHANGHAI, later), history)
    assert refused.rule == "connected_calls_per_day"
    assert refused.next_allowed_at == at_local(SHANGHAI, 2026, 3, 2, 8, 0)
    assert guard.check(call(SHANGHAI, later, Channel.SMS), history).allowed  # caps are calls


def test_us_seven_attempts_in_seven_days_and_consented_calls_do_not_count():
    guard = ComplianceGuard("us")
    start = at_local(NEW_YORK, 2026, 5, 1, 10, 0)
    attempts = [PastContact(start + timedelta(days=d), Channel.CALL) for d in range(7)]
    on_day_7 = start + timedelta(days=6, hours=3)
    refused = guard.check(call(NEW_YORK, on_day_7), attempts)
    assert refused.rule == "call_attempts_in_7_days"
    assert refused.next_allowed_at == at_local(NEW_YORK, 2026, 5, 8, 8, 0)
    consented = [PastContact(p.at, p.channel, consented=True) for p in attempts]
    assert guard.check(call(NEW_YORK, on_day_7), consented).allowed


def test_us_no_call_within_seven_days_after_a_conversation_across_dst():
    guard = ComplianceGuard("us")
    talk = [PastContact(at_local(NEW_YORK, 2026, 3, 2, 10, 0), Channel.CALL, True, True)]
    refused = guard.check(call(NEW_YORK, at_local(NEW_YORK, 2026, 3, 8, 12, 0)), talk)
    assert refused.rule == "call_after_conversation"
    # The conversation's day is the first of seven; clocks moved forward on 8 March.
    assert refused.next_allowed_at == at_local(NEW_YORK, 2026, 3, 9, 8, 0)
    assert refused.next_allowed_at.hour == 12  # 08:00 EDT


@pytest.mark.parametrize(
    ("request_kw", "rule"),
    [
        ({"do_not_contact": True}, "do_not_contact"),
        ({"dispute_hold": True}, "dispute_hold"),
        ({"recipient": "emergency_contact"}, "third_party_only_to_restore_contact"),
    ],
)
def test_holds_and_third_parties_are_refused_without_a_next_time(request_kw, rule):
    decision = ComplianceGuard("cn").check(
        call(SHANGHAI, at_local(SHANGHAI, 2026, 3, 1, 10, 0), **request_kw)
    )
    assert (decision.allowed, decision.rule, decision.next_allowed_at) == (False, rule, None)


def test_emergency_contact_allowed_only_to_restore_contact():
    request = call(
        SHANGHAI,
        at_local(SHANGHAI, 2026, 3, 1, 10, 0),
        recipient="emergency_contact",
        purpose="restore_contact",
    )
    assert ComplianceGuard("cn").check(request).allowed


def test_permits_are_single_use_and_only_from_their_guard():
    guard, other = ComplianceGuard("cn"), ComplianceGuard("cn")
    request = call(SHANGHAI, at_local(SHANGHAI, 2026, 3, 1, 10, 0), Channel.SMS)
    permit = guard.check(request).permit
    assert permit is not None
    with pytest.raises(FollowupError, match="not issued by this compliance guard"):
        other.redeem(permit, Channel.SMS)
    with pytest.raises(FollowupError, match="not issued by this compliance guard"):
        guard.redeem(Permit(permit.number, request), Channel.SMS)  # a forged copy
    with pytest.raises(FollowupError, match="issued for sms, not call"):
        guard.redeem(permit, Channel.CALL)
    assert guard.redeem(permit, Channel.SMS) is request
    with pytest.raises(FollowupError, match="already used"):
        guard.redeem(permit, Channel.SMS)


def test_tracker_commands_need_past_due_and_a_supervisor():
    assert (
        authorize_tracker_command(dpd=0, approved_by="sam", approver_role="supervisor").rule
        == "tracker_command_not_past_due"
    )
    assert (
        authorize_tracker_command(dpd=9, approved_by="ann", approver_role="agent").rule
        == "tracker_command_needs_supervisor"
    )
    assert authorize_tracker_command(dpd=9, approved_by="sam", approver_role="supervisor").allowed


ZONES = [
    "Asia/Shanghai",
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Australia/Sydney",
    "Pacific/Auckland",
    "America/St_Johns",
    "Asia/Kolkata",
]
instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
past = st.lists(  # (hours before the contact, channel, connected, conversation, consented)
    st.tuples(
        st.integers(0, 9 * 24),
        st.sampled_from([Channel.CALL, Channel.VOICE, Channel.SMS]),
        st.booleans(),
        st.booleans(),
        st.booleans(),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(
    profile=st.sampled_from(["cn", "us"]),
    zone=st.sampled_from(ZONES),
    at=instants,
    channel=st.sampled_from([Channel.SMS, Channel.CALL, Channel.VISIT]),
    history=past,
)
def test_never_permits_quiet_hours_and_next_allowed_time_is_allowed(
    profile, zone, at, channel, history
):
    guard = ComplianceGuard(profile)
    history = [PastContact(at - timedelta(hours=h), *rest) for h, *rest in history]
    decision = guard.check(call(zone, at, channel), history)
    local_hour = at.astimezone(ZoneInfo(zone)).time()
    inside = guard.profile.day_start <= local_hour < guard.profile.day_end
    if decision.allowed:
        assert inside
    else:
        assert decision.next_allowed_at is not None and decision.next_allowed_at > at
        again = guard.check(call(zone, decision.next_allowed_at, channel), history)
        assert again.allowed, (decision, again)
