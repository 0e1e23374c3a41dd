"""Complaints and holds on both backends: on the case's timeline and in the ledger, a hold
that stops contacts and only a supervisor lifts, complaints resolved by a supervisor, the
disclosure pack's complaints table."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from lienwatch.errors import NotFoundError
from lienwatch.followup.model import FollowupError
from lienwatch.reports.disclosure import write_disclosure
from lienwatch.store.db import write_deferred
from lienwatch.store.tables import Action, Case, LedgerEntry
from tests.services.test_repossession import book_delinquent_loan, service

AT = datetime(2026, 5, 21, 2, 0, tzinfo=UTC)


@pytest.fixture
def followup(db_session):
    book_delinquent_loan(db_session)  # loan L1's case; ann (agent) and sam (supervisor)
    return service(db_session).followup


def timeline(session, kind: str) -> list[Action]:
    return list(session.scalars(select(Action).where(Action.kind == kind).order_by(Action.id)))


def test_a_complaint_with_a_hold_is_on_the_timeline_and_in_the_ledger(db_session, followup):
    complaint = followup.record_complaint(
        loan="L1", category="third_party", channel="regulator", hold="do_not_contact",
        summary="her employer was called about the debt", by="ann", at=AT,
    )  # fmt: skip
    case = db_session.get(Case, complaint.case_id)
    assert case.hold == "do_not_contact"
    [received] = timeline(db_session, "complaint")
    assert (received.outcome, received.details) == (
        "third_party", {"complaint": complaint.id, "channel": "regulator"})
    assert timeline(db_session, "hold")[0].note == f"complaint {complaint.id}"
    write_deferred(db_session)
    actions = [json.loads(b)["data"]["action"] for b in db_session.scalars(
        select(LedgerEntry.body).where(LedgerEntry.kind == "case_action"))]  # fmt: skip
    assert {"complaint", "hold"} <= set(actions)
    [view] = followup.complaints(open_only=True)
    assert (view.loan, view.received_by, view.resolved_at) == ("L1", "ann", None)

    with pytest.raises(FollowupError, match="only a supervisor may resolve a complaint"):
        followup.resolve_complaint(complaint_id=complaint.id, resolution="x", upheld=True,
                                   by="ann", at=AT)  # fmt: skip
    followup.resolve_complaint(complaint_id=complaint.id, upheld=True, by="sam",
                               resolution="agent retrained; the employer apologised to",
                               at=AT + timedelta(days=2))  # fmt: skip
    assert followup.complaints(open_only=True) == []
    with pytest.raises(FollowupError, match="was resolved at"):
        followup.resolve_complaint(complaint_id=complaint.id, resolution="again", upheld=False,
                                   by="sam", at=AT + timedelta(days=3))  # fmt: skip
    assert timeline(db_session, "complaint_resolved")[0].outcome == "upheld"

    with pytest.raises(FollowupError, match="only a supervisor may lift a hold"):
        followup.set_hold(loan="L1", hold=None, why="agreed", by="ann", at=AT)
    followup.set_hold(loan="L1", hold=None, why="she agreed to calls again", by="sam",
                      at=AT + timedelta(days=3))  # fmt: skip
    assert case.hold is None and timeline(db_session, "hold_lifted")[0].outcome == \
        "do_not_contact"


def test_the_disclosure_pack_counts_complaints_in_the_period(db_session, followup, tmp_path):
    first, *_ = [
        followup.record_complaint(loan="L1", category=category, channel="phone", by="ann",
                                  summary="too many calls", at=AT + timedelta(days=days))
        for category, days in (("harassment", 0), ("harassment", 1), ("wrong_amount", 2))
    ]  # fmt: skip
    followup.resolve_complaint(complaint_id=first.id, resolution="calls capped", upheld=True,
                               by="sam", at=AT + timedelta(days=3))  # fmt: skip
    files = write_disclosure(db_session, day="2026-05-25", at=AT + timedelta(days=4),
                             out=tmp_path)  # fmt: skip
    [complaints] = [p for p in files if p.stem == "complaints"]
    rows = list(csv.reader(complaints.open(encoding="utf-8")))
    assert rows == [["category", "channel", "received", "resolved", "upheld", "open"],
                    ["harassment", "phone", "2", "1", "1", "1"],
                    ["wrong_amount", "phone", "1", "0", "0", "1"]]  # fmt: skip


def test_bad_input_is_named(db_session, followup):
    with pytest.raises(FollowupError, match="category: 'rude' is not one of harassment"):
        followup.record_complaint(loan="L1", category="rude", channel="phone", summary="x",
                                  by="ann", at=AT)  # fmt: skip
    with pytest.raises(FollowupError, match="summary: a complaint needs"):
        followup.record_complaint(loan="L1", category="other", channel="phone", summary=" ",
                                  by="ann", at=AT)  # fmt: skip
    with pytest.raises(NotFoundError, match="loan: loan 'L9' has no follow-up case"):
        followup.record_complaint(loan="L9", category="other", channel="phone", summary="x",
                                  by="ann", at=AT)  # fmt: skip
    with pytest.raises(NotFoundError, match="complaint: complaint 1000000000 does not exist"):
        followup.resolve_complaint(complaint_id=10**9, resolution="x", upheld=False, by="sam",
                                   at=AT)  # fmt: skip
    with pytest.raises(FollowupError, match="hold: 'later' is not one of dispute"):
        followup.set_hold(loan="L1", hold="later", why="x", by="ann", at=AT)
