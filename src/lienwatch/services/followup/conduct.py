"""Collection conduct: complaints received and resolved, and the holds that stop a case's
contacts (a dispute under review, a do-not-contact request), each on the case's timeline and
in the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select

from lienwatch.errors import NotFoundError
from lienwatch.followup.model import (
    ComplaintCategory,
    ComplaintChannel,
    FollowupError,
    Hold,
    Role,
)
from lienwatch.services.followup.model import ServiceState
from lienwatch.store.tables import Case, Complaint, Loan, User


@dataclass(frozen=True, slots=True)
class ComplaintView:
    """A complaint as the CLI, the API and the console show it."""

    id: int
    loan: str
    category: ComplaintCategory
    channel: ComplaintChannel
    summary: str
    received_at: datetime
    received_by: str
    resolved_at: datetime | None
    resolution: str | None
    upheld: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "loan": self.loan, "category": self.category.value,
                "channel": self.channel.value, "summary": self.summary,
                "received_at": self.received_at.isoformat(), "received_by": self.received_by,
                "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
                "resolution": self.resolution, "upheld": self.upheld}  # fmt: skip


class Conduct(ServiceState):
    """The follow-up service's complaints and holds (a part of :class:`FollowupService`)."""

    def record_complaint(
        self, *, loan: str, category: ComplaintCategory | str, channel: ComplaintChannel | str,
        summary: str, by: str, at: datetime, hold: Hold | str | None = None,
    ) -> Complaint:  # fmt: skip
        """Record a complaint about loan ``loan`` (its reference) received by ``by``: on the
        loan's latest case, with the case on ``hold`` when the complaint asks for one (a
        disputed amount, a request not to be contacted)."""
        category, channel = _choice(ComplaintCategory, category), _choice(ComplaintChannel, channel)
        if not summary.strip():
            raise FollowupError("summary: a complaint needs what the person said")
        user, case = self._user(by), self._latest_case(loan)
        complaint = Complaint(case_id=case.id, loan_id=case.loan_id, received_at=at,
                              received_by=user.id, category=category.value,
                              channel=channel.value, summary=summary.strip())  # fmt: skip
        self.session.add(complaint)
        self.session.flush()
        self._log(case, "complaint", at, user.id, outcome=category.value, note=complaint.summary,
                  details={"complaint": complaint.id, "channel": channel.value})  # fmt: skip
        if hold is not None:
            self._hold(case, _choice(Hold, hold), user, at, f"complaint {complaint.id}")
        return complaint

    def resolve_complaint(
        self, *, complaint_id: int, resolution: str, upheld: bool, by: str, at: datetime
    ) -> Complaint:
        """A supervisor closes a complaint: what was found and done, and whether it was
        justified (an upheld complaint counts against the collection conduct figures)."""
        complaint = self.session.get(Complaint, complaint_id)
        if complaint is None:
            raise NotFoundError(f"complaint: complaint {complaint_id} does not exist")
        if complaint.resolved_at is not None:
            raise FollowupError(f"complaint: complaint {complaint_id} was resolved at "
                                f"{complaint.resolved_at.isoformat()}")  # fmt: skip
        if not resolution.strip():
            raise FollowupError("resolution: say what was found and done")
        user = self._supervisor(by, "resolve a complaint")
        complaint.resolved_at, complaint.resolved_by = at, user.id
        complaint.resolution, complaint.upheld = resolution.strip(), upheld
        case = self.session.get_one(Case, complaint.case_id)
        self._log(case, "complaint_resolved", at, user.id,
                  outcome="upheld" if upheld else "not_upheld", note=complaint.resolution,
                  details={"complaint": complaint.id})  # fmt: skip
        return complaint

    def complaints(
        self, *, open_only: bool = False, loan: str | None = None, complaint_id: int | None = None
    ) -> list[ComplaintView]:
        """Complaints, newest first (the open ones only, one loan's, or one complaint)."""
        query = (select(Complaint, Loan.ref, User.username)
                 .join(Loan, Loan.id == Complaint.loan_id)
                 .join(User, User.id == Complaint.received_by)
                 .order_by(Complaint.received_at.desc(), Complaint.id.desc()))  # fmt: skip
        if open_only:
            query = query.where(Complaint.resolved_at.is_(None))
        if loan is not None:
            query = query.where(Loan.ref == loan)
        if complaint_id is not None:
            query = query.where(Complaint.id == complaint_id)
        return [
            ComplaintView(c.id, ref, ComplaintCategory(c.category), ComplaintChannel(c.channel),
                          c.summary, c.received_at, username, c.resolved_at, c.resolution,
                          c.upheld)
            for c, ref, username in self.session.execute(query)
        ]  # fmt: skip

    def set_hold(self, *, loan: str, hold: Hold | str | None, why: str, by: str,
                 at: datetime) -> Case:  # fmt: skip
        """Put loan ``loan``'s open case on ``hold`` (its automatic contacts stop) or lift the
        hold (None: a supervisor only, once the dispute is settled or the person agreed to be
        contacted again)."""
        if not why.strip():
            raise FollowupError("why: say why the hold changes")
        case = self._latest_case(loan)
        if case.closed_at is not None:
            raise FollowupError(f"loan: loan {loan} has no open follow-up case")
        if hold is None:
            user = self._supervisor(by, "lift a hold")
            if case.hold is not None:
                previous, case.hold = case.hold, None
                self._log(case, "hold_lifted", at, user.id, outcome=previous, note=why.strip())
            return case
        self._hold(case, _choice(Hold, hold), self._user(by), at, why.strip())
        return case

    def _hold(self, case: Case, hold: Hold, user: User, at: datetime, why: str) -> None:
        if case.hold == hold.value:
            return
        case.hold = hold.value
        self._log(case, "hold", at, user.id, outcome=hold.value, note=why)

    def _latest_case(self, loan: str) -> Case:
        case = self.session.scalar(
            select(Case).join(Loan, Loan.id == Case.loan_id).where(Loan.ref == loan)
            .order_by(Case.opened_at.desc(), Case.id.desc()).limit(1))  # fmt: skip
        if case is None:
            raise NotFoundError(f"loan: loan {loan!r} has no follow-up case")
        return case

    def _supervisor(self, username: str, act: str) -> User:
        user = self._user(username)
        if user.role != Role.SUPERVISOR:
            raise FollowupError(f"by: {username} is a {user.role}; only a supervisor may {act}")
        return user


E = TypeVar("E", ComplaintCategory, ComplaintChannel, Hold)


def _choice(kind: type[E], value: E | str) -> E:
    try:
        return kind(value)
    except ValueError:
        name = {ComplaintCategory: "category", ComplaintChannel: "channel", Hold: "hold"}[kind]
        raise FollowupError(f"{name}: {value!r} is not one of "
                            f"{', '.join(v.value for v in kind)}") from None
