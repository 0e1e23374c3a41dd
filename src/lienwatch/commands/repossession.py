"""``lienwatch repossession``: order, approve and take the steps of a repossession (收车与处置),
post the sale proceeds and write off a deficiency; list the steps past their SLA."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from lienwatch.commands.followup import _service as followup_service
from lienwatch.commands.followup import parse_time
from lienwatch.config import load_settings
from lienwatch.domain.money import MoneyError, format_yuan, parse_yuan
from lienwatch.followup.model import FollowupError
from lienwatch.services.repossession import RepossessionService
from lienwatch.store.repositories import LoanRepository
from lienwatch.store.tables import Loan, Repossession, RepossessionStep, User

Id = Annotated[int, typer.Option("--id", help="The repossession id (from `order`).")]
By = Annotated[str, typer.Option("--by", help="Username of whoever takes the step.")]
At = Annotated[str | None, typer.Option("--at", help="When, ISO with offset [default: now].")]


def register(app: typer.Typer) -> None:
    """Add the ``repossession`` sub-app to the root ``app``."""
    repo = typer.Typer(help="Repossession and disposal (收车与处置).", no_args_is_help=True)
    repo.command("order")(order_command)
    repo.command("approve")(approve_command)
    repo.command("record-recovery")(record_recovery_command)
    repo.command("add-cost")(add_cost_command)
    repo.command("record-appraisal")(record_appraisal_command)
    repo.command("record-sale")(record_sale_command)
    repo.command("post-proceeds")(post_proceeds_command)
    repo.command("return-surplus")(return_surplus_command)
    repo.command("write-off")(write_off_command)
    repo.command("overdue")(overdue_command)
    app.add_typer(repo, name="repossession")


@contextmanager
def _service() -> Iterator[RepossessionService]:
    with followup_service() as (session, followup):
        yield RepossessionService.from_settings(
            session, load_settings().repossession, followup=followup
        )


def _echo(service: RepossessionService, repo: Repossession) -> None:
    """The repossession's status and the step it waits for, with its deadline."""
    step = service.open_step(repossession_id=repo.id)
    waits = f"{step.deadline_at.isoformat()} ({step.step})" if step else "none"
    typer.echo(f"repossession {repo.id} {repo.status}; next step due by {waits}")


def _day(text: str, option: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise FollowupError(f"{option}: {text!r} is not YYYY-MM-DD") from None


def _fen(text: str, option: str) -> int:
    try:
        return parse_yuan(text)
    except MoneyError as exc:
        raise FollowupError(f"{option}: {exc}") from None


def order_command(
    loan: Annotated[str, typer.Option("--loan", help="The loan reference.")],
    route: Annotated[
        str, typer.Option("--route", help="court_order, security_enforcement, negotiated_handover.")
    ],
    legal_ref: Annotated[str, typer.Option("--legal-ref", help="Ruling or agreement reference.")],
    why: Annotated[str, typer.Option("--why", help="The reason, for the case timeline.")],
    by: By,
    at: At = None,
) -> None:
    """Order a repossession (refused below the DPD floor, off the lawful routes, self-help)."""
    with _service() as service:
        loan_id = LoanRepository(service.session).get_by_ref(loan).id
        repo = service.order(
            loan_id=loan_id,
            route=route,
            legal_ref=legal_ref,
            by=by,
            at=parse_time(at, "--at"),
            why=why,
        )
        _echo(service, repo)


def approve_command(
    id_: Id,
    by: By,
    assignee: Annotated[str, typer.Option("--assignee", help="Who recovers the vehicle.")],
    at: At = None,
) -> None:
    """A supervisor (not the one who ordered it) approves and assigns the recovery."""
    with _service() as service:
        _echo(
            service,
            service.approve(
                repossession_id=id_, by=by, assignee=assignee, at=parse_time(at, "--at")
            ),
        )


def record_recovery_command(
    id_: Id,
    by: By,
    recovered_on: Annotated[str, typer.Option("--recovered-on", help="YYYY-MM-DD.")],
    place: Annotated[str, typer.Option("--place")],
    condition: Annotated[str, typer.Option("--condition")],
    property_returned: Annotated[
        bool,
        typer.Option(
            "--property-returned/--property-kept",
            help="The borrower's belongings in the vehicle went back.",
        ),
    ],
    at: At = None,
) -> None:
    """The vehicle is recovered: when, where, its condition, the borrower's belongings."""
    with _service() as service:
        _echo(
            service,
            service.record_recovery(
                repossession_id=id_,
                by=by,
                at=parse_time(at, "--at"),
                recovered_on=_day(recovered_on, "--recovered-on"),
                place=place,
                condition=condition,
                property_returned=property_returned,
            ),
        )


def add_cost_command(
    id_: Id,
    by: By,
    kind: Annotated[str, typer.Option("--kind", help="recovery, storage, transport, …")],
    amount: Annotated[str, typer.Option("--amount", help="Yuan, e.g. 1500.00.")],
    incurred_on: Annotated[str, typer.Option("--incurred-on", help="YYYY-MM-DD.")],
    at: At = None,
) -> None:
    """Record a cost of the repossession (recovered first from the proceeds)."""
    with _service() as service:
        cost = service.add_cost(
            repossession_id=id_,
            kind=kind,
            amount=_fen(amount, "--amount"),
            incurred_on=_day(incurred_on, "--incurred-on"),
            by=by,
            at=parse_time(at, "--at"),
        )
        typer.echo(f"cost {cost.id}: {kind} {format_yuan(cost.amount)}")


def record_appraisal_command(
    id_: Id,
    by: By,
    value: Annotated[str, typer.Option("--value", help="Yuan.")],
    appraiser: Annotated[str, typer.Option("--appraiser")],
    at: At = None,
) -> None:
    """The recovered vehicle's appraised value."""
    with _service() as service:
        _echo(
            service,
            service.record_appraisal(
                repossession_id=id_,
                by=by,
                at=parse_time(at, "--at"),
                value=_fen(value, "--value"),
                appraiser=appraiser,
            ),
        )


def record_sale_command(
    id_: Id,
    by: By,
    sold_on: Annotated[str, typer.Option("--sold-on", help="YYYY-MM-DD.")],
    price: Annotated[str, typer.Option("--price", help="Yuan.")],
    buyer: Annotated[str, typer.Option("--buyer")],
    at: At = None,
) -> None:
    """The vehicle was sold."""
    with _service() as service:
        _echo(
            service,
            service.record_sale(
                repossession_id=id_,
                by=by,
                at=parse_time(at, "--at"),
                sold_on=_day(sold_on, "--sold-on"),
                price=_fen(price, "--price"),
                buyer=buyer,
            ),
        )


def post_proceeds_command(id_: Id, by: By, at: At = None) -> None:
    """Post the proceeds: costs first, then the loan (a payment), then any surplus."""
    with _service() as service:
        split = service.post_proceeds(repossession_id=id_, by=by, at=parse_time(at, "--at"))
    typer.echo(
        f"proceeds {format_yuan(split.proceeds)}: costs {format_yuan(split.costs_recovered)}, "
        f"loan {format_yuan(split.to_loan)}, surplus {format_yuan(split.surplus)}, "
        f"deficiency {format_yuan(split.deficiency)}"
    )


def return_surplus_command(
    id_: Id,
    by: By,
    reference: Annotated[str, typer.Option("--reference", help="The transfer's reference.")],
    at: At = None,
) -> None:
    """The surplus left after the sale went back to the borrower."""
    with _service() as service:
        _echo(
            service,
            service.return_surplus(
                repossession_id=id_, by=by, at=parse_time(at, "--at"), reference=reference
            ),
        )


def write_off_command(
    id_: Id,
    by: By,
    why: Annotated[str, typer.Option("--why", help="The reason, for the case timeline.")],
    at: At = None,
) -> None:
    """A supervisor writes off the deficiency left after the sale."""
    with _service() as service:
        _echo(
            service,
            service.write_off(repossession_id=id_, by=by, at=parse_time(at, "--at"), why=why),
        )


def overdue_command(at: At = None) -> None:
    """Repossession steps past their SLA, most overdue first, with the loan and who holds
    the step (``breached`` once the watchdog recorded the breach)."""
    with _service() as service:
        lines = [
            _overdue_line(service.session, step)
            for step in service.overdue(at=parse_time(at, "--at"))
        ]
    typer.echo("\n".join(lines) or "no repossession is past its SLA")


def _overdue_line(session: Session, step: RepossessionStep) -> str:
    repo = step.repossession
    loan = session.get_one(Loan, repo.loan_id)
    holder = session.get_one(User, step.assignee_id).username if step.assignee_id else None
    breached = " (breached)" if step.breached_at else ""
    return (
        f"repossession {repo.id} loan {loan.ref} {repo.status}: {step.step} due by "
        f"{step.deadline_at:%Y-%m-%d %H:%M}Z, held by {holder or 'any supervisor'}{breached}"
    )
