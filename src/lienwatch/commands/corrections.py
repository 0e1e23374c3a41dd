"""``lienwatch borrower correct`` and ``lienwatch vehicle correct``: change recorded data,
with the old and new values, who and why, in the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from lienwatch import clock
from lienwatch.commands.common import emit, store_session
from lienwatch.commands.options import At, By, Json
from lienwatch.errors import LienwatchError
from lienwatch.services.corrections import correct

Set = Annotated[list[str], typer.Option(
    "--set", metavar="FIELD=VALUE", help="A field and its new value; repeat for more."
)]
Why = Annotated[str, typer.Option("--why", help="Why the data changes (kept in the ledger).")]


def register(app: typer.Typer) -> None:
    """Add ``borrower correct`` and ``vehicle correct`` to the root ``app``."""
    borrower = typer.Typer(help="Borrowers.", no_args_is_help=True)
    borrower.command("correct")(borrower_command)
    app.add_typer(borrower, name="borrower")
    vehicle = typer.Typer(help="Financed vehicles.", no_args_is_help=True)
    vehicle.command("correct")(vehicle_command)
    app.add_typer(vehicle, name="vehicle")


def borrower_command(
    ref: Annotated[str, typer.Argument(help="The borrower's reference.")],
    values: Set, why: Why, by: By, at: At = None, as_json: Json = False,
) -> None:  # fmt: skip
    """Correct a borrower's contact details (phone, address, city, province_code, home_lat,
    home_lon, time_zone); the change is recorded in the ledger (personal data by its
    digest)."""
    _correct("borrower", ref, values, why, by, at, as_json)


def vehicle_command(
    vin: Annotated[str, typer.Argument(help="The vehicle's VIN.")],
    values: Set, why: Why, by: By, at: At = None, as_json: Json = False,
) -> None:  # fmt: skip
    """Correct a vehicle's plate (a car registered again) or its ``permitted_area`` (a region
    of ``[monitor] regions_file``; empty: its loan's province); the change is recorded in
    the ledger."""
    _correct("vehicle", vin, values, why, by, at, as_json)


def _correct(
    kind: str, key: str, values: list[str], why: str, by: str, at: datetime | None,
    as_json: bool,
) -> None:  # fmt: skip
    fields = {}
    for pair in values:
        field, sep, value = pair.partition("=")
        if not sep or not field.strip():
            raise LienwatchError(f"--set: expected FIELD=VALUE, got {pair!r}")
        fields[field.strip()] = value
    with store_session() as (_settings, session):
        done = correct(session, kind=kind, key=key, values=fields, why=why, by=by,
                       at=at or clock.now())  # fmt: skip
    shown = done.as_dict()
    changed = ", ".join(shown["changes"]) or "nothing (the values were already so)"
    emit(shown, as_json, f"{kind} {key}: changed {changed}")
