"""CLI commands on stored payments: ``lienwatch payment reverse``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from lienwatch import clock
from lienwatch.config import load_settings
from lienwatch.services.payments import reverse_payment
from lienwatch.store.db import transaction
from lienwatch.store.migrate import open_store


def register(app: typer.Typer) -> None:
    """Add the ``payment`` sub-app (``payment reverse``) to the root ``app``."""
    payment = typer.Typer(help="Stored payments.", no_args_is_help=True)
    payment.command("reverse")(reverse_command)
    app.add_typer(payment, name="payment")


def reverse_command(
    external_id: Annotated[str, typer.Argument(help="The bank's transaction id.")],
    reason: Annotated[str, typer.Option(help="Why, e.g. 'bounced: insufficient funds'.")],
    at: Annotated[
        str | None,
        typer.Option(help="When it was reversed, ISO 8601 with a time zone [default: now]."),
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who reverses it (a user).")] = None,
) -> None:
    """Reverse a payment (it bounced): the next `lienwatch servicing run` replays its loan as
    if it had never arrived. Reversing it again changes nothing."""
    when = _parse_time(at) if at else clock.now()
    with (
        open_store(load_settings().database_url) as database,
        transaction(database.factory) as session,
    ):
        payment, reversed_now = reverse_payment(
            session, external_id=external_id, reason=reason, by=by, at=when
        )
        loan = payment.loan.ref
        first = payment.reversed_at
    if reversed_now:
        typer.echo(f"payment {external_id} of loan {loan} reversed; the next servicing run "
                   "replays the loan without it")
    else:
        typer.echo(f"payment {external_id} of loan {loan} was already reversed at {first}; "
                   "nothing changed")


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--at: {text!r} is not an ISO 8601 time") from None
