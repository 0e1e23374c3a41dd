"""The workforce verbs on a demo database: the incentives league of a month and the capacity
forecast of a few days, timed (best of ``--repeat``) with the statements each sends.

Run it on a copy of a demo's database, once with each tree to compare (same machine, same
run: the load moves the figures, not the ratio):

    lienwatch demo --loans 500 --days 60 --dir /tmp/d && cp /tmp/d/lienwatch.sqlite3 /tmp/b.db
    PYTHONPATH=<tree>/src python bench/workforce.py --db sqlite:////tmp/b.db \\
        --month 2026-10 --at 2026-11-02T08:30:00+08:00 --days 2 7 13
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import event

from lienwatch.config import FollowupSettings
from lienwatch.services.followup import FollowupService
from lienwatch.services.workforce.capacity import service_forecast
from lienwatch.services.workforce.incentives import incentive_league
from lienwatch.store.db import make_engine, session_factory
from lienwatch.workforce.incentives import incentive_scheme, month_bounds
from lienwatch.workforce.rules import capacity_rules

ZONE = "Asia/Shanghai"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="The demo database's URL (a copy).")
    parser.add_argument("--month", default="2026-10")
    parser.add_argument("--at", default="2026-11-02T08:30:00+08:00")
    parser.add_argument("--days", type=int, nargs="+", default=[2, 7, 13])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    engine = make_engine(args.db)
    sent = {"n": 0}

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_: object) -> None:
        sent["n"] += 1

    factory = session_factory(engine)

    def timed(call):  # (best seconds, statements, result)
        best, result = float("inf"), None
        for _ in range(args.repeat):
            with factory() as session:
                sent["n"] = 0
                started = time.perf_counter()
                result = call(session)
                best = min(best, time.perf_counter() - started)
                statements = sent["n"]
        return best, statements, result

    since, until = month_bounds(args.month, ZoneInfo(ZONE))
    seconds, statements, league = timed(
        lambda s: incentive_league(s, since=since, until=until, scheme=incentive_scheme()))
    print(f"league {args.month}: {seconds:.3f} s, {statements} statements, "
          f"{len(league.agents)} agents, {sum(a.total for a in league.agents)} points")
    at = datetime.fromisoformat(args.at)
    for days in args.days:
        def forecast(session, days=days):
            service = FollowupService.from_settings(session, FollowupSettings(), time_zone=ZONE)
            return service_forecast(service, at=at, days=days, rules=capacity_rules())

        seconds, statements, plan = timed(forecast)
        print(f"forecast {days} days: {seconds:.3f} s, {statements} statements, "
              f"{len(plan.works)} steps, needs {plan.needed('phone')} phone "
              f"{plan.needed('field')} field")


if __name__ == "__main__":
    main()
