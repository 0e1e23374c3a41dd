"""What a due step does and which outcomes an agent may record, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from lienwatch.followup.model import Channel, FollowupError, Outcome, TriggerKind
from lienwatch.followup.outcomes import check_outcome
from lienwatch.followup.steps import delivery_route, message_text, next_step, step_key
from lienwatch.followup.strategy import shipped_strategy
from lienwatch.followup.triggers import (
    Candidate,
    adopted,
    bucket_move,
    latest_delinquency_per_loan,
    past_due_kind,
    repeats,
)

CN = shipped_strategy("cn")
ANCHOR = datetime(2026, 2, 16, 0, 0, tzinfo=UTC)
BUCKETS = ("M0", "M1", "M2", "M3")


def ladder(name: str):
    return next(ladder for ladder in CN.ladders if ladder.name == name)


def test_the_next_step_falls_due_at_its_offset_from_the_anchor_never_before_now():
    missed = ladder("missed-installment")
    early = next_step(missed, done=0, anchor_at=ANCHOR, at=ANCHOR + timedelta(hours=1),
                      repeats=True)  # fmt: skip
    assert early.index == 1 and early.due == ANCHOR + missed.steps[1].offset
    late_at = ANCHOR + missed.steps[1].offset + timedelta(days=1)  # done late: due at once
    assert next_step(missed, done=0, anchor_at=ANCHOR, at=late_at, repeats=True).due == late_at


def test_a_finished_ladder_repeats_its_last_step_or_ends():
    missed = ladder("missed-installment")
    last = len(missed.steps) - 1
    at = ANCHOR + timedelta(days=40)
    again = next_step(missed, done=last, anchor_at=ANCHOR, at=at, repeats=True)
    assert (again.index, again.due) == (last, at + missed.repeat_every)
    assert next_step(ladder("inspection"), done=0, anchor_at=ANCHOR, at=at, repeats=False) is None
    assert repeats(TriggerKind.BUCKET_CHANGE) and repeats(TriggerKind.COLLATERAL_ALERT)
    assert not repeats(TriggerKind.INSPECTION) and not repeats(TriggerKind.PRE_DUE)


def test_an_email_without_an_address_goes_by_text_and_a_letter_to_the_postal_address():
    kw = {"phone": "13800000001", "address": "1 Road, Beijing"}
    assert delivery_route(Channel.EMAIL, email=None, **kw) == (Channel.SMS, "13800000001")
    assert delivery_route(Channel.EMAIL, email="a@b.cn", **kw) == (Channel.EMAIL, "a@b.cn")
    assert delivery_route(Channel.LETTER, email=None, **kw) == (Channel.LETTER, "1 Road, Beijing")
    assert delivery_route(Channel.SMS, email="a@b.cn", **kw) == (Channel.SMS, "13800000001")


def test_a_message_names_the_loan_never_an_amount_and_is_sent_once_per_step():
    reminder = message_text(TriggerKind.PRE_DUE, "L7")
    assert "L7" in reminder and "soon" in reminder and message_text("pre_due", "L7") == reminder
    assert message_text(TriggerKind.BUCKET_CHANGE, "L7") == "Please contact us about loan L7."
    assert step_key(5, 1, ANCHOR) == "step:5:1:20260216T0000" != step_key(5, 2, ANCHOR)


@pytest.mark.parametrize(("was", "becomes", "kind"), [
    ("M0", "M1", TriggerKind.MISSED_INSTALLMENT),
    (None, "M1", TriggerKind.MISSED_INSTALLMENT),
    ("M1", "M2", TriggerKind.BUCKET_CHANGE),
    ("M2", "M1", None),
    ("M1", "M1", None),
])  # fmt: skip
def test_a_bucket_move_raises_by_its_direction(was, becomes, kind):
    assert bucket_move(BUCKETS, was, becomes) is kind


def test_a_loan_found_past_due_owes_the_trigger_of_its_depth():
    assert past_due_kind(BUCKETS, "M1") is TriggerKind.MISSED_INSTALLMENT
    assert past_due_kind(BUCKETS, "M3") is TriggerKind.BUCKET_CHANGE
    assert past_due_kind(BUCKETS, "M9") is TriggerKind.MISSED_INSTALLMENT  # unknown: earliest


def test_one_delinquency_ladder_per_loan_the_latest_and_go_live_anchors_at_now():
    old = Candidate(1, TriggerKind.MISSED_INSTALLMENT, "event:a", ANCHOR)
    deeper = Candidate(1, TriggerKind.BUCKET_CHANGE, "event:b", ANCHOR + timedelta(days=30))
    alert = Candidate(1, TriggerKind.COLLATERAL_ALERT, "alert:1", ANCHOR)
    assert latest_delinquency_per_loan([old, alert, deeper]) == [alert, deeper]
    now = ANCHOR + timedelta(days=60)
    lifted = adopted(old, now)
    assert lifted.anchor_at == now and lifted.details["found_by"] == "go-live"
    assert adopted(deeper, ANCHOR).anchor_at == deeper.anchor_at  # never moved back


AT = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


def outcome(result: Outcome, channel: Channel = Channel.CALL, **given) -> None:
    fields = {"promised_on": None, "amount": None, "recording_ref": None,
              "visit_needs_recording": True, "at": AT, **given}  # fmt: skip
    check_outcome(result, channel, **fields)


@pytest.mark.parametrize(("given", "field"), [
    ({}, "promised_on"),
    ({"promised_on": date(2026, 3, 9)}, "amount"),
    ({"promised_on": date(2026, 3, 9), "amount": 0}, "amount"),
    ({"promised_on": date(2026, 2, 20), "amount": 100}, "promised_on"),
    ({"promised_on": date(2026, 4, 2), "amount": 100}, "promised_on"),  # 31 days ahead
    ({"promised_on": date(2026, 3, 9), "amount": 100, "promise_within": timedelta(days=5)},
     "promised_on"),
])  # fmt: skip
def test_a_promise_needs_a_date_not_past_nor_too_far_and_a_positive_amount(given, field):
    with pytest.raises(FollowupError, match=f"^{field}:"):
        outcome(Outcome.PROMISE_TO_PAY, **given)
    outcome(Outcome.PROMISE_TO_PAY, promised_on=date(2026, 3, 9), amount=100)
    outcome(Outcome.PROMISE_TO_PAY, promised_on=date(2026, 4, 1), amount=100)  # 30 days


def test_a_visit_carries_its_recording_and_delivered_is_not_agent_work():
    with pytest.raises(FollowupError, match=r"^recording_ref:"):
        outcome(Outcome.NO_ANSWER, Channel.VISIT)
    outcome(Outcome.NO_ANSWER, Channel.VISIT, recording_ref="rec-1")
    outcome(Outcome.NO_ANSWER, Channel.VISIT, visit_needs_recording=False)
    with pytest.raises(FollowupError, match=r"^outcome:"):
        outcome(Outcome.DELIVERED)
    with pytest.raises(FollowupError, match=r"^at:"):
        outcome(Outcome.NO_ANSWER, at=AT.replace(tzinfo=None))
