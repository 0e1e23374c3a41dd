"""CLI commands on payments: ``lienwatch payment post`` and ``lienwatch payment reverse``."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from lienwatch import clock
from lienwatch.commands.common import emit, store_session
from lienwatch.commands.options import At, Json, day_option, yuan_option
from lienwatch.domain.money import format_yuan
from lienwatch.services.payments import post_payment, reverse_payment
from lienwatch.store.repositories import LoanRepository


def register(app: typer.Typer) -> None:
    """Add the ``payment`` sub-app (``payment post``, ``payment reverse``) to the root
    ``app``."""
    payment = typer.Typer(help="Payments: post one, reverse one.", no_args_is_help=True)
    payment.command("post")(post_command)
    payment.command("reverse")(reverse_command)
    app.add_typer(payment, name="payment")


def post_command(
    loan: Annotated[str, typer.Argument(help="The loan's reference.")],
    external_id: Annotated[str, typer.Option("--id", help="The bank's transaction id (the "
                                             "idempotency key).")],
    paid_on: Annotated[date, day_option("--paid-on", "Value date")],
    amount: Annotated[int, yuan_option("--amount", "Yuan received")],
    channel: Annotated[str, typer.Option(help="bank_debit, transfer, cash …")] = "bank_debit",
    payer_account: Annotated[str | None, typer.Option(
        "--payer-account", help="The paying account, as the bank reports it.")] = None,
    payer_name: Annotated[str | None, typer.Option(
        "--payer-name", help="The paying account holder's name.")] = None,
    at: At = None,
    by: Annotated[
        str | None, typer.Option("--by", metavar="USER", help="Who posts it (a user).")
    ] = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """Post a payment received, once per --id (the same payment again changes nothing); who
    paid (--payer-account, --payer-name) feeds the abnormal-payment rules."""
    for option, value, longest in (("--id", external_id, 80), ("--channel", channel, 20),
                                   ("--payer-account", payer_account, 64),
                                   ("--payer-name", payer_name, 200)):  # fmt: skip
        if value is not None and not 0 < len(value.strip()) <= longest:
            raise typer.BadParameter(f"must have 1 to {longest} characters", param_hint=option)
    with store_session() as (_settings, session):
        payment, new = post_payment(
            session, loan=LoanRepository(session).get_by_ref(loan), external_id=external_id,
            paid_on=paid_on, amount=amount, channel=channel, by=by, at=at or clock.now(),
            payer_account=payer_account, payer_name=payer_name,
        )  # fmt: skip
        data = {"payment": external_id, "loan": loan, "paid_on": payment.paid_on.isoformat(),
                "amount_fen": payment.amount, "channel": payment.channel,
                "payer_account": payment.payer_account, "payer_name": payment.payer_name,
                "new": new}  # fmt: skip
    emit(data, as_json, f"payment {external_id} of {format_yuan(data['amount_fen'])} yuan on "
         f"loan {loan} " + ("posted" if new else "was already posted; nothing changed"))


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
