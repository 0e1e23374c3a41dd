"""The follow-up vocabulary: trigger kinds, case statuses, channels, outcomes, durations."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Any

from lienwatch.errors import LienwatchError, Refused


class FollowupError(LienwatchError, ValueError):
    """Bad follow-up input (a strategy key, an outcome, a status change); names the field."""


class FollowupRefused(FollowupError, Refused):
    """A contact or a tracker command the rules refused; the refusal is recorded and kept."""


class TriggerKind(StrEnum):
    PRE_DUE = "pre_due"  # an installment coming due
    MISSED_INSTALLMENT = "missed_installment"
    BUCKET_CHANGE = "bucket_change"
    COLLATERAL_ALERT = "collateral_alert"
    BROKEN_PROMISE = "broken_promise"
    LTV_BREACH = "ltv_breach"
    PAYMENT_ANOMALY = "payment_anomaly"
    WELCOME_CALL = "welcome_call"  # 首期回访 after disbursement
    TRACKER_REVIEW = "tracker_review"  # periodic (monthly) tracker health review
    INSPECTION = "inspection"  # periodic (yearly) inspection with photos


class Role(StrEnum):
    """What a user of lienwatch does (the console's rights follow it)."""

    AGENT = "agent"  # works a queue: calls, visits, reviews
    SUPERVISOR = "supervisor"  # a team's: approves, reassigns, records for an agent
    ANALYST = "analyst"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Skill(StrEnum):
    """What an agent's tasks are: the channel mode assignment matches on."""

    PHONE = "phone"
    FIELD = "field"
    RECOVERY = "recovery"


def checked_daily_capacity(tasks: int) -> int:
    """An agent's capacity in tasks a day, refused (naming ``--capacity``) outside 1–1000."""
    if not 1 <= tasks <= 1000:
        raise LienwatchError(f"--capacity: {tasks} is not within 1-1000 tasks a day")
    return tasks


def agent_skills(skills: dict[str, Any]) -> tuple[str, ...]:
    """An agent's skills from their user record's ``skills``: ``modes`` (an agent of several,
    e.g. phone and field), else the one ``mode``, else phone."""
    return tuple(skills.get("modes") or (str(skills.get("mode") or Skill.PHONE.value),))


class TrackerCommand(StrEnum):
    """Remote commands to a car's tracker, each needing a supervisor's approval."""

    FUEL_CUT = "fuel_cut"  # 断油
    IMMOBILISE = "immobilise"  # 锁车: the engine will not start again once stopped


class CaseStatus(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    ESCALATED = "escalated"
    REPOSSESSION = "repossession"
    LEGAL = "legal"
    CLOSED = "closed"


class TaskStatus(StrEnum):
    """An agent task: waiting in a queue, done, or taken off when its trigger resolved."""

    QUEUED = "queued"
    DONE = "done"
    CANCELLED = "cancelled"


class PromiseStatus(StrEnum):
    OPEN = "open"
    KEPT = "kept"
    BROKEN = "broken"


class Hold(StrEnum):
    """Why a case's automatic contacts stop: a dispute under review, a do-not-contact request."""

    DISPUTE = "dispute"
    DO_NOT_CONTACT = "do_not_contact"


class ComplaintCategory(StrEnum):
    """What a borrower (or someone contacted about a loan) complains of."""

    HARASSMENT = "harassment"  # too many contacts, threats, abuse
    THIRD_PARTY = "third_party"  # family, employer or contacts told of the debt
    WRONG_AMOUNT = "wrong_amount"  # the amount asked for is disputed
    PRIVACY = "privacy"  # personal data used or shown where it should not be
    CONDUCT = "conduct"  # an agent's or a field visit's manner
    REPOSSESSION = "repossession"  # how a car was taken or is held
    OTHER = "other"


class ComplaintChannel(StrEnum):
    """How a complaint reached the lender."""

    PHONE = "phone"
    LETTER = "letter"
    ONLINE = "online"
    IN_PERSON = "in_person"
    REGULATOR = "regulator"  # forwarded by a regulator (e.g. a 12378 hotline referral)


# The case status machine: new → in progress → escalated → (repossession | legal) → closed.
# Any open case may close (every trigger resolved); a case never reopens.
TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.NEW: frozenset({CaseStatus.IN_PROGRESS, CaseStatus.ESCALATED, CaseStatus.CLOSED}),
    CaseStatus.IN_PROGRESS: frozenset({CaseStatus.ESCALATED, CaseStatus.CLOSED}),
    CaseStatus.ESCALATED: frozenset({CaseStatus.REPOSSESSION, CaseStatus.LEGAL, CaseStatus.CLOSED}),
    CaseStatus.REPOSSESSION: frozenset({CaseStatus.LEGAL, CaseStatus.CLOSED}),
    CaseStatus.LEGAL: frozenset({CaseStatus.CLOSED}),
    CaseStatus.CLOSED: frozenset(),
}


def check_transition(current: str, target: str) -> CaseStatus:
    """``target`` as a status if the machine allows ``current → target``, else FollowupError."""
    try:
        source, goal = CaseStatus(current), CaseStatus(target)
    except ValueError:
        raise FollowupError(f"status: unknown case status {target!r}") from None
    if goal not in TRANSITIONS[source]:
        raise FollowupError(f"status: a case cannot go from {source.value} to {goal.value}")
    return goal


class Channel(StrEnum):
    SMS = "sms"
    VOICE = "voice"  # automated call
    CALL = "call"  # agent call
    EMAIL = "email"
    LETTER = "letter"  # a dunning letter queued for print and mail through a provider
    VISIT = "visit"  # field visit
    GPS_CHECK = "gps_check"
    REVIEW = "review"  # a desk review (collateral check, repossession review)
    LEGAL = "legal"
    TRACKER_COMMAND = "tracker_command"

    @property
    def automatic(self) -> bool:
        """Executed by the scheduler itself; the others go into an agent's queue."""
        return self in _AUTOMATIC

    @property
    def contacts_borrower(self) -> bool:
        """An outbound contact: it must pass the compliance guard."""
        return self in _CONTACTS

    @property
    def keeps_contact_hours(self) -> bool:
        """Bound by quiet hours: a letter is printed and posted, it does not ring at night."""
        return self.contacts_borrower and self is not Channel.LETTER

    @property
    def is_call(self) -> bool:
        return self in (Channel.VOICE, Channel.CALL)


_AUTOMATIC = frozenset(
    {Channel.SMS, Channel.VOICE, Channel.EMAIL, Channel.LETTER, Channel.GPS_CHECK}
)
_CONTACTS = frozenset(
    {Channel.SMS, Channel.VOICE, Channel.CALL, Channel.EMAIL, Channel.LETTER, Channel.VISIT}
)


class Outcome(StrEnum):
    DELIVERED = "delivered"  # an automatic message went out
    RIGHT_PARTY_CONTACT = "rpc"
    PROMISE_TO_PAY = "promise_to_pay"
    NO_ANSWER = "no_answer"
    WRONG_NUMBER = "wrong_number"
    REFUSED = "refused"
    DISPUTE = "dispute"
    UNREACHABLE = "unreachable"
    HARDSHIP = "hardship"  # restructure request
    CHECKED = "checked"  # a review or GPS check done

    @property
    def right_party(self) -> bool:
        return self in _RIGHT_PARTY


_RIGHT_PARTY = frozenset(
    {Outcome.RIGHT_PARTY_CONTACT, Outcome.PROMISE_TO_PAY, Outcome.REFUSED, Outcome.DISPUTE,
     Outcome.HARDSHIP}
)  # fmt: skip

_DURATION = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_duration(text: str, *, field: str | None = None) -> timedelta:
    """``"3d"``, ``"4h"``, ``"30m"`` or ``"0"`` as a timedelta; negative or malformed values
    raise FollowupError (naming ``field`` when given)."""
    value = str(text).strip()
    if value == "0":
        return timedelta(0)
    match = _DURATION.match(value)
    if match is None:
        where = f"{field}: " if field else ""
        raise FollowupError(
            f"{where}{text!r} is not a duration like '3d', '4h' or '30m' (never negative)"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
