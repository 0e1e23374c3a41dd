"""``lienwatch alert``: the open collateral alerts, and people's decisions on them (each
recorded in the ledger)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from lienwatch import clock
from lienwatch.commands.common import emit, store_session
from lienwatch.commands.options import At, By, Json
from lienwatch.domain.money import to_yuan
from lienwatch.monitor.model import AlertStatus
from lienwatch.services.alerts import alert_view, decide_alert, open_alert_views

Why = Annotated[str, typer.Option("--why", help="Why, as the ledger will keep it.")]


def register(app: typer.Typer) -> None:
    """Add the ``alert`` sub-app to the root ``app``."""
    alert = typer.Typer(help="Collateral alerts and the decisions on them.",
                        no_args_is_help=True)  # fmt: skip
    alert.command("list")(list_command)
    for name, decision in (("acknowledge", AlertStatus.ACKNOWLEDGED),
                           ("resolve", AlertStatus.RESOLVED),
                           ("false-positive", AlertStatus.FALSE_POSITIVE)):  # fmt: skip
        alert.command(name, help=_HELP[decision])(_decision_command(decision))
    app.add_typer(alert, name="alert")


_HELP = {
    AlertStatus.ACKNOWLEDGED: "Take an alert on (it stays open); recorded in the ledger.",
    AlertStatus.RESOLVED: "Resolve an alert (its cause is dealt with); recorded in the ledger.",
    AlertStatus.FALSE_POSITIVE: "Mark an alert a false positive; recorded in the ledger.",
}


def list_command(as_json: Json = False) -> None:
    """The open and acknowledged alerts, largest unsecured exposure first."""
    with store_session() as (_settings, session):
        rows = open_alert_views(session)
    emit(rows, as_json, [_line(row) for row in rows] or ["no open alerts"])


def _decision_command(decision: AlertStatus) -> Any:
    def command(
        alert_id: Annotated[int, typer.Argument(metavar="ALERT", help="The alert's number.")],
        by: By,
        why: Why = "",
        at: At = None,
        as_json: Json = False,
    ) -> None:
        moment: datetime = at or clock.now()
        with store_session() as (_settings, session):
            row = alert_view(session, decide_alert(session, alert_id=alert_id,
                                                   decision=decision, by=by, at=moment,
                                                   why=why))  # fmt: skip
        emit(row, as_json, f"alert {row['alert']} {row['status']} by {by}: {_line(row)}")

    return command


def _line(row: dict[str, Any]) -> str:
    loan = f"loan {row['loan']}" if row["loan"] else "no loan"
    exposure = to_yuan(row["exposure_fen"])
    return (f"#{row['alert']} {row['type']} ({row['severity']}, {row['status']}) {loan} "
            f"{row['vin']} since {row['started_at']}, exposure ¥{exposure:,.2f}")
