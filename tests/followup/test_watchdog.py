"""The SLA watchdog's verdicts, priority bump and restart window (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lienwatch.followup.watchdog import (
    URGENT,
    Verdict,
    Watched,
    breach_note,
    escalated_priority,
    judge,
    restart_deadline,
    warning_note,
)

NOW = datetime(2026, 5, 21, 1, 0, tzinfo=UTC)
LEAD = timedelta(hours=2)


def test_a_step_is_escalated_once_within_the_lead_and_breached_at_its_deadline():
    assert judge(Watched(NOW + timedelta(hours=3)), now=NOW, lead=LEAD) is Verdict.ON_TRACK
    assert judge(Watched(NOW + LEAD), now=NOW, lead=LEAD) is Verdict.ESCALATE
    warned = Watched(NOW + timedelta(hours=1), warned_at=NOW - timedelta(minutes=5))
    assert judge(warned, now=NOW, lead=LEAD) is Verdict.ON_TRACK
    assert judge(Watched(NOW), now=NOW, lead=LEAD) is Verdict.BREACH
    assert judge(Watched(NOW - timedelta(days=1), warned_at=NOW), now=NOW,
                 lead=LEAD) is Verdict.BREACH  # fmt: skip


def test_an_escalated_task_goes_ahead_of_every_other_once():
    assert escalated_priority(5_000) == URGENT + 5_000 > escalated_priority(4_000)
    assert escalated_priority(escalated_priority(5_000)) == URGENT + 5_000


def test_a_breached_step_gets_a_fresh_window_from_when_it_may_be_done_again():
    morning = datetime(2026, 5, 22, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai, after a breach at 21:00
    assert restart_deadline(contactable_from=morning, sla=timedelta(hours=4)) == \
        datetime(2026, 5, 22, 4, 0, tzinfo=UTC)


def test_notes_name_the_step_and_its_deadline():
    assert warning_note("step 2", NOW) == "SLA of step 2 ends 05-21T01:00"
    assert breach_note("repossession step appraise", NOW) == \
        "SLA of repossession step appraise ended 2026-05-21 01:00Z"
