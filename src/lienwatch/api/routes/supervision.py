"""A supervisor's desk: tracker command requests and their approval or refusal, reassigning
and escalating a case."""

# No `from __future__ import annotations`: FastAPI reads the signatures at run time.
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from lienwatch import clock
from lienwatch.api.context import (
    ERRORS,
    ApiContext,
    Cursor,
    Id,
    Limit,
    Ref,
    decode_time_cursor,
    next_cursor,
    time_key,
)
from lienwatch.api.schemas import (
    CaseMoved,
    TrackerCommandSent,
    TrackerRequestList,
    TrackerRequestOut,
)
from lienwatch.followup.model import TrackerCommand
from lienwatch.services.reads.book import loan_of_viewer
from lienwatch.services.reads.cases import (
    case_brief,
    tracker_request_view,
    visible_case,
    visible_tracker_request,
)

if TYPE_CHECKING:
    from lienwatch.store.tables import Action

Username = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._-]+$")]
Why = Annotated[str, Field(min_length=1, max_length=500)]


class TrackerRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: TrackerCommand
    why: str = Field("", max_length=500)


class DeclineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    why: Why


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Username


class EscalateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Literal["escalated", "legal"]
    why: Why


def sent(action: "Action", loan: str) -> TrackerCommandSent:
    """A tracker command request's answer (the command sent or declined) as the API shows it."""
    return TrackerCommandSent(loan=loan, command=action.details["command"], case=action.case_id,
                              action=action.id, outcome=action.outcome)  # fmt: skip


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["supervision"], responses=ERRORS)
    Caller = context.caller

    @api.post("/loans/{ref}/tracker-command-requests", response_model=TrackerRequestOut,
              status_code=201)
    def request_command(ref: Ref, body: TrackerRequestIn, caller: Caller) -> TrackerRequestOut:
        """Ask a supervisor to send a command to the loan's tracker (the loan must be past
        due: else 409 with the rule, the refusal recorded). Asking again while the request
        waits answers the same request."""
        with context.session() as session:
            loan_of_viewer(session, caller.viewer, ref)
            action = context.followup(session).request_tracker_command(
                loan_ref=ref, command=body.command, by=caller.username, at=clock.now(),
                why=body.why,
            )  # fmt: skip
            return TrackerRequestOut(**tracker_request_view(session, action, ref))

    @api.get("/tracker-command-requests", response_model=TrackerRequestList)
    def waiting(caller: Caller, limit: Limit = 100, cursor: Cursor = None) -> TrackerRequestList:
        """The requests waiting for a supervisor's answer on the cases the caller reaches (a
        supervisor: their team's), oldest first, by pages."""
        after = decode_time_cursor(cursor)
        with context.session(write=False) as session:
            pending = context.followup(session).pending_tracker_commands(
                viewer=caller.viewer, limit=limit, after=after)  # fmt: skip
        items = [TrackerRequestOut(request=p.request_id, case=p.case_id, loan=p.loan,
                                   command=p.command, requested_at=p.requested_at,
                                   requested_by=p.requested_by, why=p.why)
                 for p in pending]  # fmt: skip
        return TrackerRequestList(items=items, next_cursor=next_cursor(
            pending, limit, lambda p: time_key(p.requested_at, p.request_id)))

    @api.post("/tracker-command-requests/{request_id}/approve", response_model=TrackerCommandSent,
              status_code=201)  # fmt: skip
    def approve(request_id: Id, caller: Caller) -> TrackerCommandSent:
        """Approve a request of the team: the command is sent (409 if the loan is no longer
        past due, the refusal recorded; 409 if the request was answered already)."""
        with context.session() as session:
            request, loan = visible_tracker_request(session, caller.viewer, request_id)
            action = context.followup(session).approve_tracker_command(
                request_id=request.id, by=caller.username, at=clock.now()
            )
            return sent(action, loan)

    @api.post("/tracker-command-requests/{request_id}/decline", response_model=TrackerCommandSent)
    def decline(request_id: Id, body: DeclineIn, caller: Caller) -> TrackerCommandSent:
        """Decline a request of the team, saying why (409 if it was answered already)."""
        with context.session() as session:
            request, loan = visible_tracker_request(session, caller.viewer, request_id)
            action = context.followup(session).decline_tracker_command(
                request_id=request.id, by=caller.username, at=clock.now(), why=body.why
            )
            session.flush()
            return sent(action, loan)

    @api.post("/cases/{case_id}/reassign", response_model=CaseMoved)
    def reassign(case_id: Id, body: ReassignIn, caller: Caller) -> CaseMoved:
        """Give a case of the team and its queued tasks to another agent of the team."""
        with context.session() as session:
            visible_case(session, caller.viewer, case_id)
            case = context.followup(session).reassign_case(case_id=case_id, to=body.to,
                                                           by=caller.username, at=clock.now())
            return CaseMoved(**case_brief(session, case))

    @api.post("/cases/{case_id}/escalate", response_model=CaseMoved)
    def escalate(case_id: Id, body: EscalateIn, caller: Caller) -> CaseMoved:
        """Escalate a case of the team (to ``escalated`` or ``legal``), with the reason on its
        timeline; a move the case's status machine forbids is a 422."""
        with context.session() as session:
            visible_case(session, caller.viewer, case_id)
            case = context.followup(session).escalate_case(
                case_id=case_id, to=body.to, by=caller.username, why=body.why, at=clock.now()
            )
            return CaseMoved(**case_brief(session, case))

    return api
