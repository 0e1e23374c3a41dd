"""One follow-up scheduler tick over a large book of open cases on PostgreSQL.

Builds a fresh database with ``--cases`` delinquent loans, each with an open case and a
missed-installment trigger at its automated-call step (``--due`` of them due now, the rest
later), loaded with COPY; disbursement dates avoid this week's periodic reviews. A first
tick, four hours earlier the same day, warms the database and makes the day's book scan
(``services/followup/book_scan.py``; the routine checks it raises are executed then). Then, timed:

- the tick as the scheduler runs it (``tick_and_drain``): its first batch of ``--batch`` due
  steps (``[followup] step_batch``, 500 by default), then the due steps left drained in
  batches of the same size, each batch timed;
- an idle tick a minute later (nothing due: what a tick costs without due work);
- the day's book scan again (its record removed), the old path of every tick, nothing due;
- the baseline: read every open trigger's id and times once.

    python bench/followup.py [--cases 100000] [--due 0.01]    # issue target: --cases 1000000

PostgreSQL: ``LIENWATCH_BENCH_PG_URL`` (default postgres on 127.0.0.1:5432); the benchmark
creates and drops its own database.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from lienwatch.adapters.senders import LocalSmsGateway, LogProvider
from lienwatch.followup.channels import Dispatcher
from lienwatch.followup.compliance import ComplianceGuard
from lienwatch.followup.model import Channel
from lienwatch.followup.strategy import shipped_strategy
from lienwatch.services.followup import FollowupService
from lienwatch.services.followup.book_scan import BOOK_SCAN
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction

ADMIN_URL = os.environ.get(
    "LIENWATCH_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# a database of its own: two runs at once must not drop each other's
DATABASE = f"lienwatch_bench_followup_{os.getpid()}"
NOW = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


def copy(cursor, table: str, columns: str, rows: Iterable[tuple]) -> None:
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as pipe:
        for row in rows:
            pipe.write_row(row)


def populate(engine, cases: int, due_share: float, seed: int) -> None:
    rng = random.Random(seed)
    yesterday = (NOW - timedelta(days=1)).date()
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        ids = range(1, cases + 1)
        copy(cursor, "borrowers", "id, ref, kind, name, id_number, phone, address, city, "
             "province_code, time_zone, created_at",
             ((i, f"B{i}", "person", "n", "x", f"138{i:08d}", "a", "Beijing", "11",
               "Asia/Shanghai", NOW) for i in ids))  # fmt: skip
        copy(cursor, "vehicles", "id, vin, plate, make, model, energy, condition, purchase_price, "
             "purchase_date, borrower_id",
             ((i, f"V{i:016d}", "p", "m", "m", "ice", "new", 15_000_000, date(2025, 1, 1), i)
              for i in ids))  # fmt: skip
        disbursed = [_quiet_disbursement(rng, NOW.date()) for _ in ids]
        copy(cursor, "loans", "id, ref, borrower_id, vehicle_id, product, principal, annual_rate, "
             "term_months, method, day_count, upfront_fee, fee_financed, disbursed_on, "
             "maturity_on, time_zone, booked_province, currency, status, created_at",
             ((i, f"L{i}", i, i, "p", 10_000_000, "0.0899", 36, "annuity", "30/360", 0, False,
               disbursed[i - 1], date(2028, 1, 1), "Asia/Shanghai", "11", "CNY", "delinquent",
               NOW) for i in ids))  # fmt: skip
        copy(cursor, "loan_snapshots", "loan_id, as_of, dpd, bucket, status, "
             "outstanding_principal, overdue_principal, overdue_interest, penalty_accrued, "
             "fees_due, payoff, credit, next_due_on, collateral_value, ead, recoverable, "
             "unsecured, ltv_bps, over_ltv_cap",
             ((i, yesterday, 5, "M1", "delinquent", 8_000_000, 300_000, 50_000, 0, 0, 8_400_000,
               0, yesterday + timedelta(days=25), 9_000_000, 8_350_000, 6_300_000,
               rng.randrange(3_000_000), 8_900, False) for i in ids))  # fmt: skip
        copy(cursor, "cases", "id, loan_id, status, priority, opened_at, strategy, arm, stratum, "
             "status_at",
             ((i, i, "in_progress", 0, NOW - timedelta(days=2), "cn-default@1", "champion", "M1",
               NOW - timedelta(days=2)) for i in ids))  # fmt: skip
        anchor = NOW - timedelta(days=2)

        def trigger(i: int) -> tuple:
            due = NOW - timedelta(minutes=5) if rng.random() < due_share else (
                NOW + timedelta(hours=rng.randrange(8, 24 * 20)))  # fmt: skip
            return (i, i, i, "missed_installment", f"bench:{i}", "missed-installment", anchor,
                    anchor, 1, due, due + timedelta(days=1), anchor + timedelta(days=1),
                    anchor + timedelta(hours=1), "{}")  # fmt: skip

        copy(cursor, "triggers", "id, case_id, loan_id, kind, source_key, ladder, anchor_at, "
             "opened_at, step, next_due_at, deadline_at, first_deadline_at, first_action_at, "
             "details", (trigger(i) for i in ids))  # fmt: skip
        for table in ("borrowers", "vehicles", "loans", "cases", "triggers"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {cases})")
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def _quiet_disbursement(rng: random.Random, today: date) -> date:
    """A disbursement date whose loan has no periodic review or inspection due this week, so
    the timed tick measures the scheduler, not a go-live wave of routine checks."""
    while True:
        age = rng.randrange(40, 700)
        if age % 30 >= 8 and age % 365 >= 8:
            return today - timedelta(days=age)


def service(session) -> FollowupService:
    """The service as the scheduler's job makes it: the shipped strategy, local senders."""
    logged = LogProvider()
    dispatcher = Dispatcher(
        ComplianceGuard("cn"),
        {Channel.SMS: LocalSmsGateway(), Channel.VOICE: logged, Channel.LETTER: logged},
    )
    return FollowupService(session, strategy=shipped_strategy("cn"), dispatcher=dispatcher)


def tick(engine, now: datetime, limit: int | None = None) -> tuple[float, dict]:
    """One tick at ``now`` (with at most ``limit`` due steps); its time and report, with the
    CPU seconds of this process (``python_cpu_s``) and of the database backend serving it
    (``pg_cpu_s``, from /proc when PostgreSQL runs on this machine, else None)."""
    factory = session_factory(engine)
    started, python = time.perf_counter(), time.process_time()
    with transaction(factory) as session:
        backend = session.connection().connection.dbapi_connection.info.backend_pid
        pg = backend_cpu(backend)
        report = service(session).tick(at=now, step_limit=limit)
        session.flush()
        pg_after = backend_cpu(backend)
    cpu = {"python_cpu_s": round(time.process_time() - python, 2),
           "pg_cpu_s": None if pg is None or pg_after is None else round(pg_after - pg, 2)}
    return time.perf_counter() - started, {**report.as_dict(), **cpu}


def backend_cpu(pid: int) -> float | None:
    """CPU seconds (user and system) of process ``pid`` so far, None if it is not readable
    (a database on another machine)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain(engine, now: datetime, limit: int) -> tuple[float, int, list[float], float]:
    """The due steps left after the tick, in batches of ``limit`` (as ``tick_and_drain``):
    the whole time, the steps, each batch's time and this process's CPU seconds."""
    factory = session_factory(engine)
    steps, batches, started, python = 0, [], time.perf_counter(), time.process_time()
    while True:
        begun = time.perf_counter()
        with transaction(factory) as session:
            report = service(session).run_due_steps(at=now, limit=limit)
        batches.append(time.perf_counter() - begun)
        steps += report.steps
        if report.steps < limit:
            cpu = time.process_time() - python
            return time.perf_counter() - started, steps, batches, cpu


def forget_book_scans(engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM events WHERE kind = :k"), {"k": BOOK_SCAN})


def baseline(engine) -> float:
    started = time.perf_counter()
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, next_due_at, deadline_at FROM triggers WHERE resolved_at IS NULL")
        )
        due = sum(1 for row in rows if row.next_due_at <= NOW)
    assert due >= 0
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--due", type=float, default=0.01, help="share of triggers due now")
    parser.add_argument("--batch", type=int, default=500, help="[followup] step_batch")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    url = make_url(ADMIN_URL).set(database=DATABASE).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        started = time.perf_counter()
        populate(engine, args.cases, args.due, args.seed)
        loaded = time.perf_counter() - started
        warm_s, warm = tick(engine, NOW - timedelta(hours=4), args.batch)
        warm_drain_s, warm_drained, _, _ = drain(engine, NOW - timedelta(hours=4), args.batch)
        tick_s, report = tick(engine, NOW, args.batch)
        drain_s, drained, batches, drain_cpu = drain(engine, NOW, args.batch)
        idle_s, idle = tick(engine, NOW + timedelta(minutes=1))
        forget_book_scans(engine)
        full_s, _ = tick(engine, NOW + timedelta(minutes=2))
        scan_s = baseline(engine)
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        admin.dispose()
    load = os.getloadavg()
    print(f"open cases: {args.cases:,} (loaded in {loaded:.1f} s); due now: {args.due:.1%}; "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")  # fmt: skip
    print(f"warm-up tick (the day's book scan): {warm_s:.2f} s  {json.dumps(warm)}; "
          f"its {warm_drained:,} routine steps left drained in {warm_drain_s:.2f} s")
    print(f"tick, first batch of {args.batch} steps: {tick_s:.2f} s  {json.dumps(report)}")
    per_step, cpu_step = ((drain_s / drained * 1000, drain_cpu / drained * 1000) if drained
                          else (0.0, 0.0))  # fmt: skip
    print(f"drain: {drained:,} steps left in {len(batches)} batches, {drain_s:.2f} s "
          f"({per_step:.2f} ms a step; batches {min(batches):.2f}-{max(batches):.2f} s); "
          f"Python CPU {drain_cpu:.2f} s ({cpu_step:.3f} ms a step)")
    print(f"idle tick a minute later (nothing due): {idle_s:.2f} s  {json.dumps(idle)}")
    print(f"the day's book scan again (old path of every tick), nothing due: {full_s:.2f} s")
    print(f"baseline (scan every open trigger once): {scan_s:.2f} s")
    print(f"ratio tick / scan: {tick_s / scan_s:.1f}x; idle tick / book scan tick: "
          f"{idle_s / full_s:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
