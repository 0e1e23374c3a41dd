"""``lienwatch followup capacity`` and ``incentives``: the staffing forecast and plan, and
the reward/penalty league."""

from __future__ import annotations

from typing import Annotated

import typer

from lienwatch import clock
from lienwatch.commands.common import emit, followup_service
from lienwatch.commands.options import At, Json
from lienwatch.services.workforce.capacity import capacity_forecast
from lienwatch.workforce.rules import capacity_rules


def add_commands(followup: typer.Typer) -> None:
    followup.command("capacity")(capacity_command)


def capacity_command(
    days: Annotated[int, typer.Option(min=1, max=62, help="Business days to forecast.")] = 7,
    at: At = None,
    as_json: Json = False,
) -> None:
    """The workload forecast per pool (team and skill), channel and day from the open
    triggers and those expected (installments falling due, loans reaching a deeper bucket,
    the recent rate of alerts and other kinds), the staffing each pool needs to meet every
    SLA beside the active agents it has, and the steps forecast to breach, by loan."""
    moment = at or clock.now()
    with followup_service() as (session, service):
        plan = capacity_forecast(
            session, at=moment, days=days, strategy=service.strategy, rules=capacity_rules(),
            catalogue=service.catalogue, time_zone=service.zone.key,
        ).as_dict()  # fmt: skip
    lines = [f"capacity forecast of {days} days from {plan['from']} ({plan['strategy']}, "
             f"{plan['rules']}): {plan['expected_breaches']} breaches expected"]  # fmt: skip
    for pool in plan["pools"]:
        tasks = ", ".join(f"{n:,.0f} {channel}" for channel, n in pool["tasks"].items())
        short = f", SHORT {pool['shortfall']}" if pool["shortfall"] else ""
        lines.append(
            f"{pool['pool']}: {tasks}; needs {pool['needed']} agents, has "
            f"{pool['rostered']}{short} ({pool['breaches']} breaches expected)"
        )
    lines += [
        f"breach: loan {b['loan']} {b['channel']} of {b['ladder']} due {b['due']} by "
        f"{b['deadline']} (exposure {b['exposure']} fen)"
        for b in plan["breaches"]
    ]
    emit(plan, as_json, lines)
