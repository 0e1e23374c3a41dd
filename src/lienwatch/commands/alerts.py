"""``lienwatch alert``: the open collateral alerts, people's decisions on them (each recorded
in the ledger), and the alert rules analysts publish."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from lienwatch import clock
from lienwatch.commands.common import emit, options_named, store_session
from lienwatch.commands.options import At, By, Json
from lienwatch.domain.money import to_yuan
from lienwatch.monitor.detectors.base import evidence_text
from lienwatch.monitor.model import AlertStatus, AlertType
from lienwatch.services.alert_rules import alert_rule_versions, publish_alert_rules
from lienwatch.services.alerts import alert_detail, alert_view, decide_alert, open_alert_views
from lienwatch.services.payment_anomalies import PAYMENT_ANOMALY
from lienwatch.tabular import require_file
from lienwatch.telematics.registry import DEVICE_CLONED
from lienwatch.workforce.rules import read_toml

Why = Annotated[str, typer.Option("--why", help="Why, as the ledger will keep it.")]


def register(app: typer.Typer) -> None:
    """Add the ``alert`` sub-app to the root ``app``."""
    alert = typer.Typer(help="Collateral alerts and the decisions on them.",
                        no_args_is_help=True)  # fmt: skip
    alert.command("list")(list_command)
    alert.command("show")(show_command)
    for name, decision in (("acknowledge", AlertStatus.ACKNOWLEDGED),
                           ("resolve", AlertStatus.RESOLVED),
                           ("false-positive", AlertStatus.FALSE_POSITIVE)):  # fmt: skip
        alert.command(name, help=_HELP[decision])(_decision_command(decision))
    alert.command("rules")(rules_command)
    alert.command("rules-publish")(publish_rules_command)
    app.add_typer(alert, name="alert")


_HELP = {
    AlertStatus.ACKNOWLEDGED: "Take an alert on (it stays open); recorded in the ledger.",
    AlertStatus.RESOLVED: "Resolve an alert (its cause is dealt with); recorded in the ledger.",
    AlertStatus.FALSE_POSITIVE: "Mark an alert a false positive; recorded in the ledger.",
}


#: Every alert type: the collateral monitor's, the gateway's and the nightly payment scan's.
ALERT_TYPES = (*(t.value for t in AlertType), DEVICE_CLONED, PAYMENT_ANOMALY)


def list_command(
    type_: Annotated[str | None, typer.Option("--type", help="Only this type.")] = None,
    loan: Annotated[str | None, typer.Option("--loan", help="Only this loan's.")] = None,
    as_json: Json = False,
) -> None:
    """The open and acknowledged alerts, largest unsecured exposure first; `alert show` tells
    why one was raised."""
    if type_ is not None and type_ not in ALERT_TYPES:
        raise typer.BadParameter(f"{type_!r} is no alert type ({', '.join(ALERT_TYPES)})",
                                 param_hint="--type")  # fmt: skip
    with options_named(loan="--loan"), store_session(write=False) as (_settings, session):
        rows = open_alert_views(session, type_=type_, loan=loan)
    emit(rows, as_json, [_line(row) for row in rows] or ["no open alerts"])


def show_command(
    alert_id: Annotated[int, typer.Argument(metavar="ALERT", help="The alert's number.")],
    as_json: Json = False,
) -> None:
    """One alert with why it was raised (the rule, its thresholds and the fixes it rests on:
    its whole evidence with --json) and the decision on it."""
    with store_session(write=False) as (_settings, session):
        row = alert_detail(session, alert_id)
    lines = [_line(row)]
    if row["ended_at"] is not None:
        lines.append(f"ended {row['ended_at']}")
    if row["decided_by"] is not None:
        lines.append(f"{row['status']} by {row['decided_by']} at {row['decided_at']}")
    because = evidence_text(row["evidence"])
    if because:
        lines.append(f"because {because}")
    if row["evidence"].get("why"):
        lines.append(row["evidence"]["why"])
    emit(row, as_json, lines)


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


def rules_command(at: At = None, as_json: Json = False) -> None:
    """The alert rules in force at --at (by default now) and every version published, newest
    first, with what each changed."""
    moment = at or clock.now()
    with store_session(write=False) as (settings, session):
        rules = alert_rule_versions(session, settings.monitor, at=moment)
    in_force = rules["in_force"]
    lines = [f"in force at {moment.isoformat()}: "
             + (f"alert rules v{in_force}" if in_force else "the [monitor] configuration")]
    for version in rules["versions"]:
        changes = ", ".join(f"{c['key']} {c['before']} -> {c['after']}"
                            for c in version["changes"]) or "no change"  # fmt: skip
        lines.append(f"v{version['version']} by {version['published_by']} at "
                     f"{version['published_at'].isoformat()}: {changes}")
    emit(rules, as_json, lines)


def publish_rules_command(
    path: Annotated[Path, typer.Argument(help="The rule set's TOML file (docs/monitor.md).")],
    by: By,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Publish a new version of the alert rules (a risk analyst): the monitor's thresholds,
    per-product overrides and enabled alert types, a version above the newest; in force from
    --at (by default now): batch runs from then, and lienwatch serve and the workers from
    their next fleet reload, without a restart."""
    moment = at or clock.now()
    require_file(path)  # the one wording for a missing file
    document, _source = read_toml(path, "")
    with store_session() as (_settings, session):
        rules = publish_alert_rules(session, document=document, by=by, at=moment)
    row = {"rules": rules.label, "version": rules.version, "published_by": by,
           "published_at": moment.isoformat()}  # fmt: skip
    emit(row, as_json, f"published {rules.label}, in force from {moment.isoformat()}")
