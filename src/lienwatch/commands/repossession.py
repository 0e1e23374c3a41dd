"""``lienwatch repossession``: order, approve and take the steps of a repossession (收车与处置),
post the sale proceeds and write off a deficiency; list the steps past their SLA."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated

import typer

from lienwatch import clock
from lienwatch.commands.common import emit, followup_service, options_named
from lienwatch.commands.options import At, By, Json, day_option, yuan_option
from lienwatch.config import load_settings
from lienwatch.domain.money import format_yuan
from lienwatch.services.repossession import RepossessionService
from lienwatch.store.repositories import LoanRepository
from lienwatch.store.tables import Repossession

Id = Annotated[int, typer.Option("--id", help="The repossession id (from `order`).")]


def register(app: typer.Typer) -> None:
    """Add the ``repossession`` sub-app to the root ``app``."""
    repo = typer.Typer(help="Repossession and disposal (收车与处置).", no_args_is_help=True)
    repo.command("order")(order_command)
    repo.command("approve")(approve_command)
    repo.command("reassign")(reassign_command)
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
    with options_named(loan_id="--loan", loan="--loan", by="--by", route="--route",
                       why="--why", kind="--kind", amount="--amount", value="--value",
                       price="--price", sold_on="--sold-on", recovered_on="--recovered-on"), \
            followup_service() as (session, followup):  # fmt: skip
        yield RepossessionService.from_settings(
            session, load_settings().repossession, followup=followup
        )


def _echo(service: RepossessionService, repo: Repossession, as_json: bool) -> None:
    """The repossession's status and the step it waits for, with its deadline."""
    step = service.open_step(repossession_id=repo.id)
    waits = f"{step.deadline_at.isoformat(timespec='seconds')} ({step.step})" if step else "none"
    data = {"repossession": repo.id, "status": repo.status,
            "next_step": step.step if step else None,
            "due_by": step.deadline_at.isoformat(timespec="seconds") if step else None}  # fmt: skip
    emit(data, as_json, f"repossession {repo.id} {repo.status}; next step due by {waits}")


def order_command(
    loan: Annotated[str, typer.Option("--loan", help="The loan reference.")],
    route: Annotated[
        str, typer.Option("--route", help="court_order, security_enforcement, negotiated_handover.")
    ],
    legal_ref: Annotated[str, typer.Option("--legal-ref", help="Ruling or agreement reference.")],
    why: Annotated[str, typer.Option("--why", help="The reason, for the case timeline.")],
    by: By,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Order a repossession (refused below the DPD floor, off the lawful routes, self-help)."""
    with _service() as service:
        loan_id = LoanRepository(service.session).get_by_ref(loan).id
        repo = service.order(
            loan_id=loan_id,
            route=route,
            legal_ref=legal_ref,
            by=by,
            at=at or clock.now(),
            why=why,
        )
        _echo(service, repo, as_json)


def approve_command(
    id_: Id,
    by: By,
    assignee: Annotated[str, typer.Option("--assignee", help="Who recovers the vehicle.")],
    at: At = None,
    as_json: Json = False,
) -> None:
    """A supervisor (not the one who ordered it) approves and assigns the recovery."""
    with _service() as service:
        _echo(
            service,
            service.approve(
                repossession_id=id_, by=by, assignee=assignee, at=at or clock.now()
            ),
            as_json,
        )


def reassign_command(
    id_: Id,
    by: By,
    to: Annotated[str, typer.Option("--to", help="The agent who takes the recovery over.")],
    at: At = None,
    as_json: Json = False,
) -> None:
    """A supervisor gives the recovery and the step it waits for to another agent."""
    with _service() as service:
        repo = service.reassign(repossession_id=id_, to=to, by=by, at=at or clock.now())
        _echo(service, repo, as_json)


def record_recovery_command(
    id_: Id,
    by: By,
    recovered_on: Annotated[date, day_option("--recovered-on")],
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
    as_json: Json = False,
) -> None:
    """The vehicle is recovered: when, where, its condition, the borrower's belongings."""
    with _service() as service:
        _echo(
            service,
            service.record_recovery(
                repossession_id=id_,
                by=by,
                at=at or clock.now(),
                recovered_on=recovered_on,
                place=place,
                condition=condition,
                property_returned=property_returned,
            ),
            as_json,
        )


def add_cost_command(
    id_: Id,
    by: By,
    kind: Annotated[str, typer.Option("--kind", help="recovery, storage, transport, …")],
    amount: Annotated[int, yuan_option("--amount", "Yuan")],
    incurred_on: Annotated[date, day_option("--incurred-on")],
    at: At = None,
    as_json: Json = False,
) -> None:
    """Record a cost of the repossession (recovered first from the proceeds)."""
    with _service() as service:
        cost = service.add_cost(
            repossession_id=id_,
            kind=kind,
            amount=amount,
            incurred_on=incurred_on,
            by=by,
            at=at or clock.now(),
        )
        emit({"cost": cost.id, "kind": kind, "amount": format_yuan(cost.amount)}, as_json,
             f"cost {cost.id}: {kind} {format_yuan(cost.amount)}")


def record_appraisal_command(
    id_: Id,
    by: By,
    value: Annotated[int, yuan_option("--value", "Appraised value in yuan")],
    appraiser: Annotated[str, typer.Option("--appraiser")],
    at: At = None,
    as_json: Json = False,
) -> None:
    """The recovered vehicle's appraised value."""
    with _service() as service:
        _echo(
            service,
            service.record_appraisal(
                repossession_id=id_,
                by=by,
                at=at or clock.now(),
                value=value,
                appraiser=appraiser,
            ),
            as_json,
        )


def record_sale_command(
    id_: Id,
    by: By,
    sold_on: Annotated[date, day_option("--sold-on")],
    price: Annotated[int, yuan_option("--price", "Sale price in yuan")],
    buyer: Annotated[str, typer.Option("--buyer")],
    at: At = None,
    as_json: Json = False,
) -> None:
    """The vehicle was sold."""
    with _service() as service:
        _echo(
            service,
            service.record_sale(
                repossession_id=id_,
                by=by,
                at=at or clock.now(),
                sold_on=sold_on,
                price=price,
                buyer=buyer,
            ),
            as_json,
        )


def post_proceeds_command(id_: Id, by: By, at: At = None, as_json: Json = False) -> None:
    """Post the proceeds: costs first, then the loan (a payment), then any surplus."""
    with _service() as service:
        split = service.post_proceeds(repossession_id=id_, by=by, at=at or clock.now())
    figures = {"proceeds": split.proceeds, "costs": split.costs_recovered,
               "loan": split.to_loan, "surplus": split.surplus, "deficiency": split.deficiency}
    text = {key: format_yuan(fen) for key, fen in figures.items()}
    emit(text, as_json, f"proceeds {text['proceeds']}: costs {text['costs']}, loan "
         f"{text['loan']}, surplus {text['surplus']}, deficiency {text['deficiency']}")


def return_surplus_command(
    id_: Id,
    by: By,
    reference: Annotated[str, typer.Option("--reference", help="The transfer's reference.")],
    at: At = None,
    as_json: Json = False,
) -> None:
    """The surplus left after the sale went back to the borrower."""
    with _service() as service:
        _echo(
            service,
            service.return_surplus(
                repossession_id=id_, by=by, at=at or clock.now(), reference=reference
            ),
            as_json,
        )


def write_off_command(
    id_: Id,
    by: By,
    why: Annotated[str, typer.Option("--why", help="The reason, for the case timeline.")],
    at: At = None,
    as_json: Json = False,
) -> None:
    """A supervisor writes off the deficiency left after the sale."""
    with _service() as service:
        _echo(
            service,
            service.write_off(repossession_id=id_, by=by, at=at or clock.now(), why=why),
            as_json,
        )


def overdue_command(at: At = None, as_json: Json = False) -> None:
    """Repossession steps past their SLA, most overdue first, with the loan and who holds
    the step (``breached`` once the watchdog recorded the breach)."""
    with _service() as service:
        rows = [step.as_dict() for step in service.overdue(at=at or clock.now())]
    lines = [
        f"repossession {r['repossession']} loan {r['loan']} {r['status']}: {r['step']} due by "
        f"{r['due_by']}, held by {r['held_by'] or 'any supervisor'}"
        + (" (breached)" if r["breached"] else "")
        for r in rows
    ]
    emit(rows, as_json, lines or ["no repossession is past its SLA"])


