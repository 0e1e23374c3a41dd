"""The one place a case's timeline is written: each action, and each contact the compliance
guard refused, goes in with its ledger entry, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from lienwatch.followup.model import Channel
from lienwatch.ledger.entries import EntryKind
from lienwatch.services.ledger import record
from lienwatch.store.db import defer_insert
from lienwatch.store.tables import Action, Case, ContactAttempt, User


def log_action(
    session: Session, case: Case, *, loan_ref: str, kind: str, at: datetime,
    by: User | None = None, outcome: str | None = None, note: str | None = None,
    details: dict[str, Any] | None = None, key: str | None = None,
) -> Action:  # fmt: skip
    """Add an action to ``case``'s timeline and its entry to the ledger. ``key`` makes the
    action happen once (a generated one when None)."""
    key = key or f"{kind}:{case.id}:{at:%Y%m%dT%H%M%S}:{uuid4().hex[:16]}"
    action = Action(case_id=case.id, kind=kind, performed_at=at,
                    performed_by=by.id if by else None, outcome=outcome, note=note,
                    details=details or {}, idempotency_key=key)  # fmt: skip
    session.add(action)
    _record_action(session, case.id, loan_ref=loan_ref, kind=kind, at=at, by=by,
                   outcome=outcome, note=note, details=details or {}, key=key)  # fmt: skip
    return action


#: A contact attempt linked to the action of its key (``action_key``), deferred after it.
_ATTEMPT_OF_ACTION = insert(ContactAttempt.__table__).values(
    action_id=select(Action.id)
    .where(Action.idempotency_key == bindparam("action_key"))
    .scalar_subquery()
)


def log_contact(
    session: Session, *, case_id: int, loan_id: int, loan_ref: str, channel: Channel,
    at: datetime, agency: str, outcome: str, details: dict[str, Any], key: str,
) -> None:  # fmt: skip
    """A contact an automatic step made, the guard having allowed it: its action on the
    case's timeline (kind: the channel), its ledger entry, and the contact attempt the guard
    counts from now on, linked to the action. All three are deferred (:func:`defer_insert`):
    a batch of steps writes them with one insert per table instead of an object each."""
    defer_insert(session, Action, {
        "case_id": case_id, "kind": channel.value, "performed_at": at, "performed_by": None,
        "outcome": outcome, "note": None, "details": details, "idempotency_key": key,
    })  # fmt: skip
    _record_action(session, case_id, loan_ref=loan_ref, kind=channel.value, at=at, by=None,
                   outcome=outcome, note=None, details=details, key=key)  # fmt: skip
    defer_insert(session, _ATTEMPT_OF_ACTION, {
        "loan_id": loan_id, "channel": channel.value, "at": at, "recipient": "debtor",
        "agency": agency, "allowed": True, "rule": "ok", "next_allowed_at": None,
        "connected": False, "conversation": False, "consented": False, "action_key": key,
    })  # fmt: skip


def _record_action(
    session: Session, case_id: int, *, loan_ref: str, kind: str, at: datetime,
    by: User | None, outcome: str | None, note: str | None, details: dict[str, Any], key: str,
) -> None:  # fmt: skip
    record(session, EntryKind.CASE_ACTION, subject=loan_ref, at=at,
           by=by.username if by else None,
           data={"case": case_id, "action": kind, "outcome": outcome, "note": note,
                 "details": details, "key": key})  # fmt: skip


def log_refusal(
    session: Session, *, loan_id: int, loan_ref: str, channel: Channel, at: datetime,
    agency: str, rule: str, next_allowed_at: datetime | None, by: User | None = None,
) -> ContactAttempt:  # fmt: skip
    """Record a contact the compliance guard refused, and its ledger entry: the refusal is
    kept even when the act that asked for it is rolled back (``transaction()`` commits a
    :class:`~lienwatch.errors.Refused` before it goes up)."""
    attempt = ContactAttempt(loan_id=loan_id, channel=channel.value, at=at, agency=agency,
                             allowed=False, rule=rule, next_allowed_at=next_allowed_at)  # fmt: skip
    session.add(attempt)
    until = next_allowed_at.isoformat() if next_allowed_at else None
    record(session, EntryKind.CONTACT_REFUSED, subject=loan_ref, at=at,
           by=by.username if by else None,
           data={"channel": channel.value, "rule": rule, "agency": agency,
                 "next_allowed_at": until})  # fmt: skip
    return attempt
