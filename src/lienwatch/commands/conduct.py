"""``lienwatch followup complain | complaints | resolve-complaint | hold``: complaints about
collection conduct and the holds that stop a case's contacts."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from lienwatch import clock
from lienwatch.commands.common import emit, followup_service
from lienwatch.commands.options import At, By, Json
from lienwatch.followup.model import ComplaintCategory, ComplaintChannel, Hold

Loan = Annotated[str, typer.Option("--loan", help="The loan's reference.")]


class HoldChoice(StrEnum):
    DISPUTE = "dispute"
    DO_NOT_CONTACT = "do_not_contact"
    NONE = "none"  # lift the hold


def add_commands(followup: typer.Typer) -> None:
    """Add the conduct commands to the ``followup`` sub-app."""
    followup.command("complain")(complain_command)
    followup.command("complaints")(complaints_command)
    followup.command("resolve-complaint")(resolve_command)
    followup.command("hold")(hold_command)


def complain_command(
    loan: Loan,
    category: Annotated[ComplaintCategory, typer.Option(help="What the complaint is about.")],
    channel: Annotated[ComplaintChannel, typer.Option(help="How it reached you.")],
    summary: Annotated[str, typer.Option(help="What the person said.")],
    by: By,
    hold: Annotated[
        Hold | None, typer.Option(help="Stop the case's contacts while it is looked into.")
    ] = None,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Record a complaint about how a loan is followed up (on its case's timeline and in the
    ledger); it stays open until a supervisor resolves it."""
    with followup_service() as (_session, service):
        complaint = service.record_complaint(loan=loan, category=category, channel=channel,
                                             summary=summary, by=by, at=at or clock.now(),
                                             hold=hold)  # fmt: skip
        [shown] = [c.as_dict() for c in service.complaints(complaint_id=complaint.id)]
    held = f"; case on hold ({hold.value})" if hold else ""
    emit(shown, as_json, f"complaint {complaint.id} on loan {loan} recorded{held}")


def complaints_command(
    open_only: Annotated[bool, typer.Option("--open", help="Only those not resolved.")] = False,
    loan: Annotated[str | None, typer.Option("--loan", help="One loan's only.")] = None,
    as_json: Json = False,
) -> None:
    """Complaints, newest first."""
    with followup_service(write=False) as (_session, service):
        rows = [c.as_dict() for c in service.complaints(open_only=open_only, loan=loan)]
    lines = [
        f"{r['id']} loan {r['loan']} {r['category']} by {r['channel']} {r['received_at']}: "
        + (f"resolved ({'upheld' if r['upheld'] else 'not upheld'})" if r["resolved_at"]
           else "open")
        for r in rows
    ]  # fmt: skip
    emit(rows, as_json, lines or ["no complaints"])


def resolve_command(
    complaint: Annotated[int, typer.Argument(help="The complaint's number.")],
    resolution: Annotated[str, typer.Option(help="What was found and done.")],
    upheld: Annotated[bool, typer.Option("--upheld/--not-upheld",
                                         help="Whether the complaint was justified.")],
    by: By,
    at: At = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """A supervisor resolves a complaint."""
    with followup_service() as (_session, service):
        done = service.resolve_complaint(complaint_id=complaint, resolution=resolution,
                                         upheld=upheld, by=by, at=at or clock.now())  # fmt: skip
        [shown] = [c.as_dict() for c in service.complaints(complaint_id=done.id)]
    emit(shown, as_json, f"complaint {complaint} resolved "
         f"({'upheld' if upheld else 'not upheld'})")


def hold_command(
    loan: Loan,
    hold: Annotated[HoldChoice, typer.Option("--set", help="The hold, or none to lift it.")],
    why: Annotated[str, typer.Option(help="Why the hold changes.")],
    by: By,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Put a case on hold (its automatic contacts stop: a dispute, a do-not-contact request)
    or lift the hold (a supervisor)."""
    chosen = None if hold is HoldChoice.NONE else Hold(hold.value)
    with followup_service() as (_session, service):
        case = service.set_hold(loan=loan, hold=chosen, why=why, by=by, at=at or clock.now())
        shown = {"loan": loan, "case": case.id, "hold": case.hold}
    emit(shown, as_json, f"loan {loan}: case {case.id} "
         + (f"on hold ({case.hold})" if case.hold else "not on hold"))
