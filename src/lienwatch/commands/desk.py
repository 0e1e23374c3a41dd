"""``lienwatch followup request-command | approve-command | decline-command | reassign |
escalate``: a supervisor's desk, the verbs the API's and the console's routes call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from lienwatch import clock
from lienwatch.commands.common import emit, followup_service
from lienwatch.commands.options import At, By, Json
from lienwatch.followup.model import TrackerCommand
from lienwatch.services.followup.desk import ESCALATIONS

if TYPE_CHECKING:
    from lienwatch.store.tables import Action

Request = Annotated[int, typer.Argument(help="The request's id (its action on the case).")]
Case = Annotated[int, typer.Argument(help="The case's id.")]
Why = Annotated[str, typer.Option(help="Why, for the case's timeline.")]


def add_commands(followup: typer.Typer) -> None:
    """Add the desk's commands to the ``followup`` sub-app."""
    followup.command("request-command")(request_command)
    followup.command("approve-command")(approve_command)
    followup.command("decline-command")(decline_command)
    followup.command("reassign")(reassign_command)
    followup.command("escalate")(escalate_command)


def _answered(request: int, action: Action) -> dict[str, Any]:
    """Request ``request`` answered by ``action`` (the command sent or declined), as shown."""
    return {"request": request, "case": action.case_id, "action": action.id,
            "command": action.details["command"], "outcome": action.outcome}  # fmt: skip


def request_command(
    loan: Annotated[str, typer.Option("--loan", help="The loan's reference.")],
    command: Annotated[TrackerCommand, typer.Option("--command", help="What the tracker does.")],
    by: By,
    why: Annotated[str, typer.Option(help="Why, for the supervisor.")] = "",
    at: At = None,
    as_json: Json = False,
) -> None:
    """Ask a supervisor to send a command to a loan's tracker (the loan past due); asking
    again while it waits shows the same request."""
    with followup_service() as (_session, service):
        action = service.request_tracker_command(loan_ref=loan, command=command, by=by,
                                                 at=at or clock.now(), why=why)  # fmt: skip
        shown = {"request": action.id, "case": action.case_id, "loan": loan,
                 "command": command.value, "outcome": action.outcome}  # fmt: skip
    emit(shown, as_json, f"request {action.id}: {command.value} on loan {loan} waits for a "
                         "supervisor")  # fmt: skip


def approve_command(request: Request, by: By, at: At = None, as_json: Json = False) -> None:
    """A supervisor of the requester's team approves a request: the command is sent."""
    with followup_service() as (_session, service):
        action = service.approve_tracker_command(request_id=request, by=by, at=at or clock.now())
        shown = _answered(request, action)
    emit(shown, as_json, f"request {request} approved: {shown['command']} sent")


def decline_command(
    request: Request, by: By, why: Why, at: At = None, as_json: Json = False
) -> None:
    """A supervisor of the requester's team declines a request, saying why."""
    with followup_service() as (_session, service):
        action = service.decline_tracker_command(request_id=request, by=by,
                                                 at=at or clock.now(), why=why)  # fmt: skip
        shown = _answered(request, action)
    emit(shown, as_json, f"request {request} declined")


def reassign_command(
    case: Case,
    to: Annotated[str, typer.Option("--to", metavar="USER", help="An agent of the team.")],
    by: By,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Give a case and its queued tasks to another agent of the supervisor's team."""
    with followup_service() as (_session, service):
        moved = service.reassign_case(case_id=case, to=to, by=by, at=at or clock.now())
        shown = {"case": moved.id, "status": moved.status, "assignee": to}
    emit(shown, as_json, f"case {case} is {to}'s")


def escalate_command(
    case: Case,
    to: Annotated[str, typer.Option("--to", help=f"One of {', '.join(ESCALATIONS)}.")],
    by: By,
    why: Why,
    at: At = None,
    as_json: Json = False,
) -> None:
    """A supervisor escalates a case, with the reason on its timeline (a repossession is
    ordered with `lienwatch repossession order`)."""
    with followup_service() as (_session, service):
        moved = service.escalate_case(case_id=case, to=to, by=by, why=why, at=at or clock.now())
        shown = {"case": moved.id, "status": moved.status}
    emit(shown, as_json, f"case {case} is {moved.status}")
