"""Tracker commands as a request and a supervisor's answer: an agent (or a supervisor) asks
for an immobilisation or a fuel cut on a loan past due; a supervisor approves it (the command
is sent) or declines it with a reason. Each step is an action on the case's timeline (and in
the ledger); the request's action id names it for the answer.

:meth:`TrackerRequests.command_tracker` is the one-step form of the same path, not a second
one: a supervisor's command is their request and their approval of it at once (both on the
timeline); anyone else's is recorded as a request refused for want of a supervisor, which
waits for one as a request does.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from lienwatch.errors import ConflictError, NotFoundError
from lienwatch.followup.compliance import NEEDS_SUPERVISOR, authorize_tracker_command
from lienwatch.followup.model import (
    CaseStatus,
    Channel,
    FollowupError,
    FollowupRefused,
    Role,
    TrackerCommand,
)
from lienwatch.services.followup.model import ServiceState
from lienwatch.store.tables import Action, Case, Loan, User

REQUESTED = "requested"  # an answer is awaited
SENT = "sent"  # approved and sent (also a supervisor's own command)
DECLINED = "declined"  # a supervisor said no
#: The outcomes of an action that waits for a supervisor's answer.
AWAITING = frozenset({REQUESTED, NEEDS_SUPERVISOR})
#: Past-due rule of the request itself: nobody asks to stop a car on a loan that is current.
NOT_PAST_DUE = "tracker_command_not_past_due"


class TrackerRequests(ServiceState):
    """Requesting a tracker command and answering it (a part of :class:`FollowupService`)."""

    def request_tracker_command(
        self, *, loan_ref: str, command: TrackerCommand | str, by: str, at: datetime,
        why: str = "",
    ) -> Action:  # fmt: skip
        """Ask a supervisor to send ``command`` to the loan's tracker. The loan must be past
        due (else the refusal is recorded and FollowupRefused raised); asking again while a
        request of the same command waits returns that request (idempotent)."""
        return self._ask(loan_ref, command, by, at, why=why, outcome=REQUESTED)

    def command_tracker(
        self, *, loan_ref: str, command: TrackerCommand | str, by: str | None, at: datetime
    ) -> Action:
        """Send ``command`` to the loan's tracker in one step, through the request and the
        approval: ``by`` a supervisor, their request (or the one already waiting) is approved
        at once and the command sent; by anyone else (or nobody), the attempt is recorded as
        a request refused for want of a supervisor, which waits for one like any request,
        and FollowupRefused is raised (``transaction()`` commits the record)."""
        if by is not None and self._user(by).role == Role.SUPERVISOR:
            request = self._ask(loan_ref, command, by, at, outcome=REQUESTED)
            return self.approve_tracker_command(request_id=request.id, by=by, at=at)
        self._ask(loan_ref, command, by, at, outcome=NEEDS_SUPERVISOR)
        raise FollowupRefused(f"command: refused ({NEEDS_SUPERVISOR})", rule=NEEDS_SUPERVISOR)

    def _ask(
        self, loan_ref: str, command: TrackerCommand | str, by: str | None, at: datetime, *,
        outcome: str, why: str = "",
    ) -> Action:  # fmt: skip
        """Record ``by``'s request of ``command`` on the loan's open case with ``outcome``
        (a request's outcome is REQUESTED: then one already waiting is returned instead);
        on a loan not past due the refusal is recorded and FollowupRefused raised."""
        command = parse_tracker_command(command)
        loan_id = self.session.scalar(select(Loan.id).where(Loan.ref == loan_ref))
        view = self._loan_views({loan_id}, at).get(loan_id) if loan_id is not None else None
        if loan_id is None or view is None:
            raise NotFoundError(f"loan: no loan {loan_ref!r}")
        case = self._open_cases({loan_id}).get(loan_id)
        if case is None:
            raise FollowupError(f"loan: loan {view.ref} has no open case")
        user = self._user(by) if by is not None else None
        waiting = self._awaiting(case.id, command) if outcome == REQUESTED else None
        if waiting is not None:
            return waiting
        outcome = outcome if view.dpd > 0 else NOT_PAST_DUE
        action = self._log(case, Channel.TRACKER_COMMAND.value, at, user.id if user else None,
                           outcome=outcome, note=why.strip() or None,
                           details={"command": command.value, "dpd": view.dpd})  # fmt: skip
        self.session.flush()
        if outcome == NOT_PAST_DUE:
            raise FollowupRefused(f"command: refused ({outcome})", rule=outcome)
        return action

    def approve_tracker_command(self, *, request_id: int, by: str, at: datetime) -> Action:
        """A supervisor of the requester's team approves request ``request_id``: the command
        is sent, if the loan is still past due (else the refusal is recorded and
        FollowupRefused raised). An answered request is a ConflictError."""
        request, case, supervisor = self._answerable(request_id, by)
        command = request.details["command"]
        view = self._loan_views({case.loan_id}, at)[case.loan_id]
        decision = authorize_tracker_command(dpd=view.dpd, approved_by=by,
                                             approver_role=supervisor.role)  # fmt: skip
        action = self._log(case, Channel.TRACKER_COMMAND.value, at, supervisor.id,
                           outcome=SENT if decision.allowed else decision.rule,
                           details={"command": command, "dpd": view.dpd,
                                    "request": request.id})  # fmt: skip
        self.session.flush()
        if not decision.allowed:
            raise FollowupRefused(f"command: refused ({decision.rule})", rule=decision.rule)
        return action

    def decline_tracker_command(
        self, *, request_id: int, by: str, at: datetime, why: str
    ) -> Action:
        """A supervisor of the requester's team declines request ``request_id``, saying why;
        an answered request is a ConflictError."""
        if not why.strip():
            raise FollowupError("why: say why the command is declined")
        request, case, supervisor = self._answerable(request_id, by)
        return self._log(case, Channel.TRACKER_COMMAND.value, at, supervisor.id,
                         outcome=DECLINED, note=why.strip(),
                         details={"command": request.details["command"],
                                  "request": request.id})  # fmt: skip

    def _awaiting(self, case_id: int, command: TrackerCommand) -> Action | None:
        """The case's request of ``command`` still waiting for an answer, if any."""
        rows = self.session.scalars(
            select(Action).where(Action.case_id == case_id,
                                 Action.kind == Channel.TRACKER_COMMAND.value)
            .order_by(Action.performed_at, Action.id)
        )  # fmt: skip
        waiting: Action | None = None
        for action in rows:
            if action.details.get("command") != command.value:
                continue
            if action.outcome in AWAITING:
                waiting = waiting or action
            elif action.outcome in (SENT, DECLINED):
                waiting = None
        return waiting

    def _answerable(self, request_id: int, by: str) -> tuple[Action, Case, User]:
        """The request, its open case and the supervisor answering it, or why not."""
        request = self.session.get(Action, request_id)
        if request is None or request.kind != Channel.TRACKER_COMMAND.value or (
                request.outcome not in AWAITING):  # fmt: skip
            raise NotFoundError(f"request_id: no tracker command request {request_id}")
        case = self.session.get_one(Case, request.case_id)
        if case.status == CaseStatus.CLOSED:
            raise ConflictError(f"request_id: case {case.id} is closed")
        command = parse_tracker_command(request.details["command"])
        if self._awaiting(case.id, command) is not request:
            raise ConflictError(f"request_id: request {request_id} was answered already")
        supervisor = self._user(by)
        if supervisor.role != Role.SUPERVISOR:
            raise FollowupError(f"by: {by} is not a supervisor")
        asker = self.session.get(User, request.performed_by) if request.performed_by else None
        if asker is not None and asker.team != supervisor.team:
            raise FollowupError(f"by: {by} does not supervise team {asker.team} of "
                                f"{asker.username}")  # fmt: skip
        return request, case, supervisor


def parse_tracker_command(command: TrackerCommand | str) -> TrackerCommand:
    """``command`` as a :class:`TrackerCommand`, else a FollowupError naming the known ones."""
    try:
        return TrackerCommand(command)
    except ValueError:
        known = ", ".join(c.value for c in TrackerCommand)
        raise FollowupError(f"command: unknown tracker command {command!r} ({known})") from None
