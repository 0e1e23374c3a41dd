"""The workforce part of the report's follow-up section: the incentives league (奖惩) of the
report's month to date and of the month before, per agent and team, and the capacity
forecast of the coming days (the staffing each pool needs beside what it has, the steps
forecast to breach), from the verbs ``lienwatch followup incentives`` and ``capacity``
call (docs/followup.md)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from lienwatch.followup.strategy import Strategy
from lienwatch.services.workforce.capacity import capacity_forecast
from lienwatch.services.workforce.incentives import month_league
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.workforce.incentives import League, Scheme, incentive_scheme, month_bounds
from lienwatch.workforce.rules import CapacityRules, capacity_rules

FORECAST_DAYS = 7
BREACHES_SHOWN = 20  # the steps forecast to breach listed by loan (all are in figures.json)


def workforce_figures(
    session: Session, *, day: date, at: datetime, previous_at: datetime | None,
    strategy: Strategy, catalogue: ProductCatalogue | None, time_zone: str,
    rules: CapacityRules | None = None, scheme: Scheme | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The league of ``day``'s month up to ``at`` (with each agent's change since the
    previous report's moment ``previous_at`` in the same month) and of the month before, and
    the capacity forecast of :data:`FORECAST_DAYS` days from ``at`` (the triggers open then,
    the book of ``day``'s nightly run); ``rules`` and ``scheme``
    are the capacity rules and the incentive scheme in force (``[workforce]``; None: the
    shipped ones)."""
    rules, scheme = rules or capacity_rules(), scheme or incentive_scheme()
    zone = ZoneInfo(time_zone)
    month = day.isoformat()[:7]
    current_table, to = month_league(session, month=month, at=at, zone=zone, scheme=scheme)
    current = _view(current_table)
    start, _ = month_bounds(month, zone)
    if previous_at is not None and previous_at > start:
        earlier, _ = month_league(session, month=month, at=previous_at, zone=zone, scheme=scheme)
        before = {a["agent"]: a["total"] for a in _view(earlier)["agents"]}
        for agent in current["agents"]:
            agent["change"] = agent["total"] - before.get(agent["agent"], 0)
    last_month = (start.date() - timedelta(days=1)).isoformat()[:7]
    last_table, _ = month_league(session, month=last_month, at=at, zone=zone, scheme=scheme)
    forecast = capacity_forecast(session, at=at, days=FORECAST_DAYS, strategy=strategy,
                                 rules=rules, catalogue=catalogue, time_zone=time_zone,
                                 through=day).as_dict()  # fmt: skip
    daily: dict[str, dict[str, float]] = {}
    for row in forecast["workload"]:
        for when, n in row["days"].items():
            per_day = daily.setdefault(row["channel"], {})
            per_day[when] = round(per_day.get(when, 0) + n, 1)
    return {
        "league": {"month": month, "to": to.isoformat(), **current},
        "last_month": {"month": last_month, **_view(last_table)},
        "capacity": {
            "from": forecast["from"], "days": forecast["days"], "rules": forecast["rules"],
            "strategy": forecast["strategy"], "pools": forecast["pools"],
            "workload": daily, "expected_breaches": forecast["expected_breaches"],
            "breaches": forecast["breaches"][:BREACHES_SHOWN],
            "breaches_total": len(forecast["breaches"]),
            "guard_bound": len(forecast["guard_bound"]),
        },
    }  # fmt: skip


def _view(league: League) -> dict[str, Any]:
    """A league as the report shows it: agents best first (total and points by act; each
    point's trace is in ``lienwatch followup incentives``), teams' totals."""
    table = league.as_dict()
    return {
        "scheme": table["scheme"],
        "agents": [{k: a[k] for k in ("agent", "team", "total", "by_act")}
                   | {"acts": len(a["points"])} for a in table["agents"]],
        "teams": table["teams"],
    }  # fmt: skip
