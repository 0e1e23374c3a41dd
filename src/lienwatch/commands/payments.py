"""CLI commands on stored payments: ``lienwatch payment reverse``."""

from __future__ import annotations

from typing import Annotated

import typer

from lienwatch import clock
from lienwatch.commands.common import emit, store_session
from lienwatch.commands.options import At, Json
from lienwatch.services.payments import reverse_payment


def register(app: typer.Typer) -> None:
    """Add the ``payment`` sub-app (``payment reverse``) to the root ``app``."""
    payment = typer.Typer(help="Stored payments.", no_args_is_help=True)
    payment.command("reverse")(reverse_command)
    app.add_typer(payment, name="payment")


def reverse_command(
    external_id: Annotated[str, typer.Argument(help="The bank's transaction id.")],
    reason: Annotated[str, typer.Option(help="Why, e.g. 'bounced: insufficient funds'.")],
    at: At = None,
    by: Annotated[
        str | None, typer.Option("--by", metavar="USER", help="Who reverses it (a user).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Reverse a payment (it bounced): the next `lienwatch servicing run` replays its loan as
    if it had never arrived. Reversing it again changes nothing."""
    with store_session() as (_settings, session):
        payment, reversed_now = reverse_payment(
            session, external_id=external_id, reason=reason, by=by, at=at or clock.now()
        )
        loan = payment.loan.ref
        first = payment.reversed_at
    data = {"payment": external_id, "loan": loan, "reversed_at": first.isoformat(),
            "reversed_now": reversed_now}  # fmt: skip
    if reversed_now:
        emit(data, as_json, f"payment {external_id} of loan {loan} reversed; the next servicing "
             "run replays the loan without it")
    else:
        emit(data, as_json, f"payment {external_id} of loan {loan} was already reversed at "
             f"{first.isoformat()}; nothing changed")
