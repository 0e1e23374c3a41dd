"""The routine checks a loan owes and when they are raised, without a database."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from lienwatch.followup.model import TriggerKind
from lienwatch.followup.strategy import parse_strategy, shipped_strategy
from lienwatch.followup.triggers import check_lead, current_checks

CN = shipped_strategy("cn")  # tracker review every 30 days (1-day SLA), inspection every 365 (14)
DISBURSED = date(2025, 3, 10)


def checks_on(day: date) -> dict[TriggerKind, object]:
    return {c.kind: c for c in current_checks(7, DISBURSED, day, CN)}


def test_a_new_loan_owes_no_check_until_its_first_period_is_over():
    assert checks_on(DISBURSED) == {}
    assert checks_on(DISBURSED + timedelta(days=29)) == {}
    review = checks_on(DISBURSED + timedelta(days=30))[TriggerKind.TRACKER_REVIEW]
    assert (review.period, review.starts_on, review.ends_on) == (
        1, date(2025, 4, 9), date(2025, 5, 9))  # fmt: skip
    assert review.source_key == "tracker_review:7:1"


def test_the_check_of_each_period_has_its_own_key():
    day = DISBURSED + timedelta(days=400)
    found = checks_on(day)
    assert found[TriggerKind.TRACKER_REVIEW].period == 13  # 400 // 30
    assert found[TriggerKind.INSPECTION].period == 1
    assert found[TriggerKind.INSPECTION].starts_on == DISBURSED + timedelta(days=365)


def test_a_check_is_raised_when_due_or_on_its_last_call_not_in_between():
    inspection = checks_on(DISBURSED + timedelta(days=365))[TriggerKind.INSPECTION]
    lead = check_lead(CN, TriggerKind.INSPECTION)
    assert lead == timedelta(days=14)  # the visit's SLA
    starts, ends = inspection.starts_on, inspection.ends_on
    assert inspection.just_due(starts) and inspection.just_due(starts + timedelta(days=6))
    assert not inspection.just_due(starts + timedelta(days=7))  # the catch-up is over
    middle = starts + timedelta(days=100)  # a go-live here does not send a visit at once
    assert not inspection.last_call(middle, lead)
    assert not inspection.last_call(ends - timedelta(days=15), lead)
    assert inspection.last_call(ends - timedelta(days=14), lead)  # still done in its period


def test_a_check_interval_of_zero_switches_it_off():
    data = CN.model_dump(mode="python")
    data["routine"]["inspection_every"] = timedelta(0)
    strategy = parse_strategy(data, source="test")
    kinds = {c.kind for c in current_checks(7, DISBURSED, DISBURSED + timedelta(days=800),
                                            strategy)}  # fmt: skip
    assert kinds == {TriggerKind.TRACKER_REVIEW}


@pytest.mark.parametrize(("offset", "sla", "lead"), [("0", "1d", 1), ("2d", "12h", 3)])
def test_the_lead_is_the_first_step_in_whole_days(offset, sla, lead):
    data = CN.model_dump(mode="python")
    for ladder in data["ladders"]:
        if ladder["trigger"] == "tracker_review":
            ladder["steps"][0].update(offset=offset, sla=sla)
    strategy = parse_strategy(data, source="test")
    assert check_lead(strategy, TriggerKind.TRACKER_REVIEW) == timedelta(days=lead)
