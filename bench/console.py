"""The collector's queue page's question to the compliance guard, batched, on PostgreSQL.

The queue page asks the guard, for each of its rows (up to 200 open cases), whether the next
contact is allowed now. ``case_contact_checks`` answers all the page's cases in one pass: the
next steps in one query (``store.followup.next_steps``), the cases, triggers, loans and
contact history in bulk. The peer in the same run is what the page did before: the same verb
asked once per case (each question costs its own queries). Both answer the same; the ratio
is the price of asking per case.

Builds a fresh database of ``--cases`` open cases with bench/followup.py's loader (COPY), takes
the ``--rows`` most urgent, and times each way ``--repeat`` times (the median is printed).

    python bench/console.py [--cases 20000] [--rows 200] [--repeat 7]

PostgreSQL: ``LIENWATCH_BENCH_PG_URL`` (default postgres on 127.0.0.1:5432); the benchmark
creates and drops its own database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

import followup as followup_bench  # bench/followup.py: the book's loader
from lienwatch.adapters.senders import LogProvider
from lienwatch.followup.channels import Dispatcher
from lienwatch.followup.compliance import ComplianceGuard
from lienwatch.followup.model import CaseStatus, Channel
from lienwatch.followup.strategy import shipped_strategy
from lienwatch.services.followup import FollowupService
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Case

# a database of its own: two runs at once must not drop each other's
DATABASE = f"lienwatch_bench_console_{os.getpid()}"
NOW = followup_bench.NOW


def service(session) -> FollowupService:
    logged = LogProvider()  # nothing is sent: the guard is only asked
    dispatcher = Dispatcher(ComplianceGuard("cn"), {Channel.SMS: logged, Channel.VOICE: logged,
                                                    Channel.LETTER: logged})  # fmt: skip
    return FollowupService(session, strategy=shipped_strategy("cn"), dispatcher=dispatcher)


def timed(factory, ask) -> tuple[float, dict]:
    """Seconds to answer, and the answers, in a transaction of its own."""
    started = time.perf_counter()
    with transaction(factory) as session:
        answers = ask(service(session))
    return time.perf_counter() - started, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=200, help="cases on the page")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    admin = create_engine(followup_bench.ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    url = make_url(followup_bench.ADMIN_URL).set(database=DATABASE)
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        migrate.upgrade(engine)
        followup_bench.populate(engine, args.cases, 0.01, args.seed)
        factory = session_factory(engine)
        with factory() as session:
            page = list(session.scalars(
                select(Case.id).where(Case.status != CaseStatus.CLOSED)
                .order_by(Case.priority.desc(), Case.opened_at, Case.id).limit(args.rows)
            ))  # fmt: skip

        def batched(desk: FollowupService) -> dict:
            return desk.case_contact_checks(case_ids=page, at=NOW)

        def per_case(desk: FollowupService) -> dict:
            return {case_id: desk.case_contact_checks(case_ids=[case_id], at=NOW)[case_id]
                    for case_id in page}  # fmt: skip

        runs: dict[str, list[float]] = {"batched": [], "per_case": []}
        answers = {}
        for _ in range(args.repeat):  # interleaved, so both see the same load
            for name, ask in (("batched", batched), ("per_case", per_case)):
                seconds, answers[name] = timed(factory, ask)
                runs[name].append(seconds)
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        admin.dispose()
    assert answers["batched"] == answers["per_case"], "the two ways answer differently"
    allowed = sum(1 for check in answers["batched"].values() if check.allowed)
    batched_s, per_case_s = (statistics.median(runs[k]) for k in ("batched", "per_case"))
    print(f"open cases: {args.cases:,}; the page: {len(page)} cases ({allowed} allowed now); "
          f"median of {args.repeat}")
    print(f"batched (one pass for the page): {batched_s * 1000:.1f} ms")
    print(f"per case (the verb once per case): {per_case_s * 1000:.1f} ms")
    print(f"ratio per case / batched: {per_case_s / batched_s:.1f}x")


if __name__ == "__main__":
    main()
