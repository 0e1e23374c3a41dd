"""``lienwatch followup capacity`` and ``incentives``: the staffing forecast and plan, and
the reward/penalty league."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lienwatch import clock
from lienwatch.commands.common import emit, followup_service, store_session
from lienwatch.commands.options import At, By, Json
from lienwatch.config import load_settings
from lienwatch.services.workforce.capacity import MAX_DAYS, service_forecast
from lienwatch.services.workforce.incentives import month_league
from lienwatch.services.workforce.schemes import publish_scheme
from lienwatch.services.workforce.shortfall import act_on_shortfall
from lienwatch.tabular import require_file
from lienwatch.workforce.incentives import incentive_scheme
from lienwatch.workforce.rules import capacity_rules, read_toml


def add_commands(followup: typer.Typer) -> None:
    followup.command("capacity")(capacity_command)
    followup.command("incentives")(incentives_command)
    followup.command("incentives-publish")(publish_command)


def capacity_command(
    days: Annotated[int, typer.Option(min=1, max=MAX_DAYS, help="Business days to forecast.")] = 7,
    apply: Annotated[
        bool, typer.Option("--apply", help="Act on the steps forecast to breach.")
    ] = False,
    at: At = None,
    as_json: Json = False,
) -> None:
    """The workload forecast per pool (team and skill), channel and day from the open
    triggers and those expected (installments falling due, loans reaching a deeper bucket,
    the recent rate of alerts and other kinds), the staffing each pool needs to meet every
    SLA beside the active agents it has, and the steps forecast to breach, by loan. With
    --apply the engine acts on those queued: reassigned to a team of the skill with staff to
    spare, substituted where the rules allow, or ordered by exposure (each on the timeline)."""
    moment = at or clock.now()
    with followup_service() as (_session, service):
        rules = capacity_rules(load_settings().workforce.capacity_rules)
        forecast = service_forecast(service, at=moment, days=days, rules=rules)
        plan = forecast.as_dict()
        if apply:
            plan["acted"] = act_on_shortfall(service, plan=forecast, rules=rules,
                                             at=moment).as_dict()  # fmt: skip
    lines = [f"capacity forecast of {days} days from {plan['from']} ({plan['strategy']}, "
             f"{plan['rules']}): {plan['expected_breaches']} breaches expected"]  # fmt: skip
    if plan["go_live"]:
        lines.append("go-live: the engine never worked this book; the backlog its first tick "
                     "will adopt is counted in (nothing was kept)")
    for pool in plan["pools"]:
        tasks = ", ".join(f"{n:,.0f} {channel}" for channel, n in pool["tasks"].items())
        short = f", SHORT {pool['shortfall']}" if pool["shortfall"] else ""
        lines.append(
            f"{pool['pool']}: {tasks}; needs {_agents(pool['needed'])}, has "
            f"{pool['rostered']}{short} ({pool['breaches']} breaches expected)"
        )
    lines += [
        f"breach: loan {b['loan']} {b['channel']} of {b['ladder']} due {b['due']} by "
        f"{b['deadline']} (exposure {b['exposure']} fen)"
        for b in plan["breaches"]
    ]
    lines += [
        f"guard-bound: loan {b['loan']} call of {b['ladder']} due {b['due']}: past the daily "
        "call cap, it waits for the next day whatever the staffing (--apply substitutes it "
        "where the rules allow)"
        for b in plan["guard_bound"]
    ]
    if apply:
        lines.append("acted: " + ", ".join(f"{n} {kind}" for kind, n in plan["acted"].items()))
    emit(plan, as_json, lines)


def _agents(count: float) -> str:
    return f"{count} agent" if count == 1 else f"{count} agents"


def incentives_command(
    month: Annotated[
        str, typer.Option("--month", metavar="YYYY-MM", help="The month of the league.")
    ],
    at: At = None,
    as_json: Json = False,
) -> None:
    """The reward/penalty league of a month (to date while it runs: up to --at, by default
    now) per agent and team, every point traced to its act on a case timeline."""
    moment = at or clock.now()
    with followup_service() as (session, service):
        league, end = month_league(session, month=month, at=moment, zone=service.zone,
                                   scheme=incentive_scheme(load_settings().workforce.incentives))
        table = league.as_dict()
    lines = [f"incentives {month} ({table['scheme']}), to {end.isoformat()}"]
    lines += [f"{n}. {s['agent']} ({s['team']}): {s['total']:+d} "
              + ", ".join(f"{act} {points:+d}" for act, points in s["by_act"].items())
              for n, s in enumerate(table["agents"], start=1)]  # fmt: skip
    lines += [f"team {team}: {total:+d}" for team, total in table["teams"].items()]
    emit({"month": month, **table}, as_json, lines)


def publish_command(
    path: Annotated[Path, typer.Argument(help="The scheme's TOML file (as [workforce] "
                                              "incentives names one).")],
    by: By,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Publish a new version of the reward/penalty scheme (an analyst or administrator): the
    configured scheme's name, a version above the newest; it scores the acts from --at (by
    default now) on, the acts before keep the points the version then in force gave them."""
    moment = at or clock.now()
    require_file(path)  # the one wording for a missing file
    document, _source = read_toml(path, "incentives.toml")
    with store_session() as (settings, session):
        scheme = publish_scheme(session, document=document, by=by, at=moment,
                                configured=incentive_scheme(settings.workforce.incentives))
    row = {"scheme": scheme.label, "published_by": by, "published_at": moment.isoformat()}
    emit(row, as_json, f"published {scheme.label}, in force from {moment.isoformat()}")
