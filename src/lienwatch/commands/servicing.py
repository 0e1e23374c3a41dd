"""CLI commands of servicing: ``lienwatch schedule`` and ``lienwatch loan state``."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from lienwatch import clock
from lienwatch.commands.common import emit
from lienwatch.commands.options import Json, day_option
from lienwatch.config import load_settings
from lienwatch.domain.calendar import ended_business_day
from lienwatch.domain.money import MoneyError, format_yuan, parse_yuan
from lienwatch.domain.schedule import DayCount, Installment, Method
from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.servicing.engine import loan_state
from lienwatch.servicing.product import LoanTerms, Payment, Product
from lienwatch.store.db import transaction
from lienwatch.store.migrate import open_store
from lienwatch.store.servicing import last_run_day
from lienwatch.tabular import InputFileError, csv_rows, require_file


class OutputFormat(StrEnum):
    JSON = "json"
    TABLE = "table"


Principal = Annotated[str, typer.Option(help="Principal in yuan, e.g. 100000.00.")]
AnnualRate = Annotated[str, typer.Option(help="Annual contract rate, e.g. 0.0899.")]
Term = Annotated[int, typer.Option(help="Number of monthly installments (1–120).")]
MethodOption = Annotated[Method, typer.Option(help="How principal is repaid.")]
Start = Annotated[
    date, day_option("--start", "Disbursement date")
]
DayCountOption = Annotated[DayCount, typer.Option(help="Interest day count.")]
UpfrontFee = Annotated[str, typer.Option(help="Upfront (GPS/service) fee in yuan.")]
FeeFinanced = Annotated[bool, typer.Option(help="Finance the upfront fee (else paid at signing).")]
FormatOption = Annotated[
    OutputFormat | None, typer.Option("--format", hidden=True, help="json: the same as --json.")
]


def register(app: typer.Typer) -> None:
    """Add ``schedule`` and the ``loan`` sub-app (``loan state``) to the root ``app``."""
    app.command("schedule")(schedule_command)
    loan = typer.Typer(help="Inspect one loan.", no_args_is_help=True)
    loan.command("state")(loan_state_command)
    app.add_typer(loan, name="loan")
    servicing = typer.Typer(help="The loan book in the database.", no_args_is_help=True)
    servicing.command("run")(run_command)
    app.add_typer(servicing, name="servicing")


def run_command(
    as_of: Annotated[
        date | None,
        day_option("--as-of", default="yesterday, local"),
    ] = None,
    as_json: Json = False,
) -> None:
    """Run the nightly portfolio run on the configured database: DPD, buckets, statuses,
    exposure and a snapshot per loan; bucket changes become events."""
    settings = load_settings()
    yesterday = ended_business_day(clock.now(), settings.time_zone)
    day = as_of or yesterday
    today = yesterday + timedelta(days=1)
    if day > today:
        raise ValueError(f"--as-of: {day} has not come yet (today is {today} in "
                         f"{settings.time_zone}); a day is run once it is over")  # fmt: skip
    catalogue = ProductCatalogue.from_tables(settings.products)
    with open_store(settings.database_url) as database, transaction(database.factory) as s:
        latest = last_run_day(s)
        counts = run_nightly(s, catalogue, as_of=day, workers=settings.servicing.workers)
    emit({"as_of": str(day), "loans": counts.loans, "bucket_changes": counts.bucket_changes,
          "status_changes": counts.status_changes}, as_json,
         f"as of {day}: {counts.loans} loans, {counts.bucket_changes} bucket changes, "
         f"{counts.status_changes} status changes")  # fmt: skip
    if latest is not None and day < latest:
        typer.echo(f"note: {day} is before the last run ({latest}): its snapshots were "
                   f"replaced; the follow-up engine and reports read the latest day's, so rerun "
                   f"{latest} if today's payments changed it", err=True)  # fmt: skip


def schedule_command(
    principal: Principal,
    annual_rate: AnnualRate,
    term: Term,
    method: MethodOption,
    start: Start,
    day_count: DayCountOption = DayCount.THIRTY_360,
    upfront_fee: UpfrontFee = "0",
    fee_financed: FeeFinanced = False,
    as_json: Json = False,
    output: FormatOption = None,
) -> None:
    """Print a repayment schedule exact to the fen."""
    terms = _terms(principal, annual_rate, term, method, start, day_count, upfront_fee,
                   fee_financed)
    rows = terms.schedule()
    if as_json or output is OutputFormat.JSON:
        typer.echo(json.dumps(schedule_json(rows), indent=2))
    else:
        Console().print(_schedule_table(rows))


def loan_state_command(
    principal: Principal,
    annual_rate: AnnualRate,
    term: Term,
    method: MethodOption,
    start: Start,
    payments: Annotated[Path, typer.Option(help="CSV file with columns id,date,amount.")],
    as_of: Annotated[date, day_option("--as-of")],
    day_count: DayCountOption = DayCount.THIRTY_360,
    upfront_fee: UpfrontFee = "0",
    fee_financed: FeeFinanced = False,
    grace_days: Annotated[int, typer.Option(help="Days after a due date before DPD counts.")] = 0,
    late_fee: Annotated[str, typer.Option(help="Late fee per missed installment, yuan.")] = "0",
    penalty_multiple: Annotated[
        str, typer.Option(help="Penalty rate as a multiple of the contract rate.")] = "1.5",
    as_json: Json = False,
    output: FormatOption = None,
) -> None:
    """Print the state of one loan from its terms and a payments file."""
    require_file(payments, "--payments")
    terms = _terms(principal, annual_rate, term, method, start, day_count, upfront_fee,
                   fee_financed)
    try:
        multiple = Fraction(Decimal(penalty_multiple))
    except (InvalidOperation, ValueError):
        raise ValueError(f"penalty_multiple: {penalty_multiple!r} is not a number") from None
    product = Product(grace_days=grace_days, late_fee=parse_yuan(late_fee, field="late_fee"),
                      penalty_multiple=multiple)
    state = loan_state(terms, product, read_payments(payments), as_of)
    figures = state.as_json()
    if as_json or output is OutputFormat.JSON:
        typer.echo(json.dumps(figures, indent=2))
        return
    table = Table("figure", "value", title=f"loan as of {state.as_of}")
    for key, value in figures.items():
        table.add_row(key, "" if value is None else str(value))
    Console().print(table)


def schedule_json(rows: list[Installment]) -> dict[str, object]:
    """The JSON form of a schedule: amounts as two-decimal strings."""
    return {
        "installments": [
            {"n": r.n, "due_date": r.due_date.isoformat(), "principal": format_yuan(r.principal),
             "interest": format_yuan(r.interest), "payment": format_yuan(r.payment),
             "balance_after": format_yuan(r.balance_after)}
            for r in rows
        ],
        "total_interest": format_yuan(sum(r.interest for r in rows)),
        "total_payment": format_yuan(sum(r.payment for r in rows)),
    }


def read_payments(path: Path) -> list[Payment]:
    """Payments from a CSV file with the header ``id,date,amount`` (optionally ``currency``).

    Raises :class:`InputFileError` naming the file, line, column and reason for the
    first bad row, and for a duplicate id with a different amount or date.
    """
    _, rows = csv_rows(path, required=("id", "date", "amount"))
    payments: dict[str, Payment] = {}
    for line, row in rows:
        payment = _payment_row(path, line, row)
        seen = payments.setdefault(payment.external_id, payment)
        if seen != payment:
            raise InputFileError(f"{path}:{line}: column id: {payment.external_id!r} "
                                    "repeats with another amount or date")
    return list(payments.values())


def _payment_row(path: Path, line: int, row: dict[str, str | None]) -> Payment:
    def bad(column: str, reason: str) -> InputFileError:
        return InputFileError(f"{path}:{line}: column {column}: {reason}")

    external_id = (row.get("id") or "").strip()
    if not external_id:
        raise bad("id", "empty")
    try:
        on = date.fromisoformat((row.get("date") or "").strip())
    except ValueError:
        raise bad("date", f"{row.get('date')!r} is not a date YYYY-MM-DD") from None
    try:
        amount = parse_yuan(row.get("amount") or "", field="amount")
    except MoneyError as exc:
        raise bad("amount", str(exc).removeprefix("amount: ")) from None
    if amount <= 0:
        raise bad("amount", f"{row.get('amount')!r} is not a positive amount")
    currency = (row.get("currency") or "CNY").strip()
    try:
        return Payment(external_id, on, amount, currency)
    except ValueError as exc:
        raise bad("currency", str(exc).removeprefix("currency: ")) from None


def _terms(principal: str, annual_rate: str, term: int, method: Method, start: date,
           day_count: DayCount, upfront_fee: str, fee_financed: bool) -> LoanTerms:
    try:
        rate = Decimal(annual_rate)
    except InvalidOperation:
        raise ValueError(f"annual_rate: {annual_rate!r} is not a number") from None
    return LoanTerms(
        loan_id="cli", principal=parse_yuan(principal, field="principal"), annual_rate=rate,
        term=term, method=method, start=start, day_count=day_count,
        upfront_fee=parse_yuan(upfront_fee, field="upfront_fee"), fee_financed=fee_financed,
    )


def _schedule_table(rows: list[Installment]) -> Table:
    table = Table("n", "due date", "principal", "interest", "payment", "balance after",
                  title="repayment schedule (CNY)", show_footer=True)
    for column in table.columns[2:]:
        column.justify = "right"
    table.columns[2].footer = format_yuan(sum(r.principal for r in rows))
    table.columns[3].footer = format_yuan(sum(r.interest for r in rows))
    table.columns[4].footer = format_yuan(sum(r.payment for r in rows))
    for r in rows:
        table.add_row(str(r.n), r.due_date.isoformat(), format_yuan(r.principal),
                      format_yuan(r.interest), format_yuan(r.payment), format_yuan(r.balance_after))
    return table
