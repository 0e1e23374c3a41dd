"""The REST API under load: requests per second and p50/p99 latency of the queue and case
endpoints with 100,000 open cases on PostgreSQL, against the health endpoint (one database
round trip, no authentication) measured the same way in the same run.

Builds a fresh database (the book of bench/followup.py: ``--cases`` delinquent loans with an
open case and a trigger each), gives every case and a queued call to one of ``--agents``
agents, VACUUM ANALYZEs it (as autovacuum would a settled book), and runs
``lienwatch serve --no-gateway --no-scheduler --no-monitor --workers N`` on loopback (the
API, the console and health in N processes on one port). The load generator (one
process, asyncio; keep-alive HTTP/1.1 connections of its own, much cheaper than httpx, which
logs each agent in once) then:

- open loop: each of ``--rates`` requests per second for ``--seconds`` at each endpoint, each
  request sent on schedule whatever the earlier ones do, latency from the scheduled time (so a
  stalled server shows, no coordinated omission); target p99 under 100 ms at 200 req/s;
- served/s: the requests answered over the time it took to answer them all (below the rate
  offered when the server falls behind);
- server CPU ms/req and db CPU ms/req: the CPU time of serve's processes, and of the
  PostgreSQL backends connected to the database, over the requests answered: the measures a
  loaded machine disturbs least (a core serves 1000 / that many requests a second).

The load average is printed before and after, and the generator's own CPU time.

    python bench/api.py [--cases 100000] [--agents 200] [--rates 50,100,200] [--seconds 5]
                        [--workers 2] [--keep]

PostgreSQL: ``LIENWATCH_BENCH_PG_URL`` (default postgres on 127.0.0.1:5432); the benchmark
creates and drops its own database (``--keep`` keeps it, and reuses it next time).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from followup import ADMIN_URL, NOW, populate
from lienwatch.access.credentials import hash_password
from lienwatch.store import migrate
from lienwatch.store.db import make_engine

# a database of its own (two runs at once must not drop each other's), but for a kept book,
# found again by its name at the next run with --keep
KEPT_DATABASE = "lienwatch_bench_api"
PASSWORD = "bench password 1"


def staff(engine, cases: int, agents: int) -> None:
    """``agents`` agents of team east, each given every ``agents``-th case and its call."""
    digest = hash_password(PASSWORD)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO teams (name, display_name) VALUES ('east', 'east')"))
        connection.execute(text(
            "INSERT INTO users (id, username, display_name, role, team, skills, daily_capacity, "
            "active, password_hash, failed_logins, created_at) "
            "SELECT g, 'agent' || g, 'Agent ' || g, 'agent', 'east', '{\"mode\": \"phone\"}', "
            "1000, true, :digest, 0, :now FROM generate_series(1, :agents) g"
        ), {"digest": digest, "now": NOW, "agents": agents})  # fmt: skip
        connection.execute(text("UPDATE cases SET assignee_id = 1 + (id % :agents)"),
                           {"agents": agents})  # fmt: skip
        connection.execute(text(
            "INSERT INTO tasks (key, trigger_id, case_id, loan_id, step, channel, skill, team, "
            "due_at, deadline_at, priority, status, assignee_id, assigned_at) "
            "SELECT 'bench:' || t.id, t.id, t.case_id, t.loan_id, 1, 'call', 'phone', 'east', "
            ":now, :now + interval '1 day', (t.id * 7919) % 100000, 'queued', "
            "1 + (t.case_id % :agents), :now FROM triggers t"
        ), {"now": NOW, "agents": agents})  # fmt: skip
    assert cases > 0
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))  # what autovacuum does to a settled book


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user and system) used so far by process ``pid`` and its children."""
    total, pids = 0.0, [pid]
    while pids:
        current = pids.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = [child for task in Path(f"/proc/{current}/task").iterdir()
                        for child in (task / "children").read_text().split()]  # fmt: skip
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        pids += [int(child) for child in children]
    return total


async def login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    answer = await client.post("/api/v1/auth/login",
                               json={"username": username, "password": PASSWORD})  # fmt: skip
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


class Connections:
    """Keep-alive HTTP/1.1 connections to the server on loopback, each carrying one request at
    a time (at most ``size`` open). The load generator's requests go through these rather
    than httpx, which spends more CPU on a request than the server does: on a machine of two
    cores the generator would otherwise take the cores the server is measured on."""

    def __init__(self, port: int, size: int = 128) -> None:
        self.port, self.size, self.opened = port, size, 0
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )

    async def _take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.idle.empty() and self.opened < self.size:
            self.opened += 1
            return await asyncio.open_connection("127.0.0.1", self.port)
        return await self.idle.get()

    async def get(self, path: str, headers: dict[str, str]) -> int:
        """GET ``path``: the status (the body read whole); one retry on a connection the
        server closed while it was idle."""
        request = "".join([f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                           *(f"{k}: {v}\r\n" for k, v in headers.items()), "\r\n"]).encode()
        for attempt in (1, 2):
            reader, writer = await self._take()
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                writer.close()
                self.opened -= 1
                if attempt == 2:
                    raise
                continue
            self.idle.put_nowait((reader, writer))
            return int(head[9:12])
        raise AssertionError("unreachable")

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait()[1].close()


async def open_loop(
    client: Connections, requests: list[tuple[str, dict[str, str]]], rate: float,
    seconds: float,
) -> tuple[list[float], int]:  # fmt: skip
    """Send ``requests`` (path, headers) on a fixed schedule; latencies from the schedule."""
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter() + 0.1

    async def one(at: float, path: str, headers: dict[str, str]) -> None:
        nonlocal errors
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        try:
            status = await client.get(path, headers)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            errors += 1
            return
        latencies.append(time.perf_counter() - at)
        errors += status != 200

    total = int(rate * seconds)
    await asyncio.gather(*(one(start + i / rate, *requests[i % len(requests)])
                           for i in range(total)))  # fmt: skip
    return latencies, errors


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def backends_cpu_s(admin, database: str) -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend connected to the benchmark's
    database (the server runs on this machine), by process id."""
    with admin.connect() as connection:
        pids = connection.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = :name"),
                                  {"name": database}).all()  # fmt: skip
    return {pid: tree_cpu_s(pid) for pid in pids}


def used_s(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the backends alive at both readings used in between."""
    return sum(after[pid] - before[pid] for pid in before.keys() & after.keys())


#: endpoint, rate, served/s, p50, p99, errors, server and database CPU ms per request
Row = tuple[str, float, float, float, float, int, float, float]


async def measure(port: int, server: int, admin, args: argparse.Namespace) -> list[Row]:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                 limits=limits) as client:  # fmt: skip
        for _ in range(300):
            try:
                if (await client.get("/api/v1/health")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        names = [f"agent{1 + i}" for i in range(min(args.agents, 20))]
        headers = [await login(client, name) for name in names]
        rng = random.Random(1)
        cases = [rng.randrange(1, args.cases + 1) for _ in range(500)]
        owned = [(f"/api/v1/cases/{c}", headers[0]) for c in cases if 1 + c % args.agents == 1]
        endpoints = {
            "health (baseline)": [("/api/v1/health", {})],
            "GET /api/v1/queue (50 of 500)": [("/api/v1/queue", h) for h in headers],
            "GET /api/v1/cases/{id}": owned or [(f"/api/v1/cases/{args.agents}", headers[0])],
        }
        rows = []
        raw = Connections(port)
        for name, requests in endpoints.items():
            await open_loop(raw, requests, args.rates[0], 1.0)  # warm-up
            for rate in args.rates:
                cpu, db = tree_cpu_s(server), backends_cpu_s(admin, args.database)
                latencies, errors = await open_loop(raw, requests, rate, args.seconds)
                answered = max(1, len(latencies))
                cpu_ms = (tree_cpu_s(server) - cpu) * 1000 / answered
                db_ms = used_s(db, backends_cpu_s(admin, args.database)) * 1000 / answered
                served = len(latencies) / (max(latencies) + args.seconds) if latencies else 0.0
                rows.append((name, rate, served, percentile(latencies, 0.5) * 1000,
                             percentile(latencies, 0.99) * 1000, errors, cpu_ms,
                             db_ms))  # fmt: skip
        raw.close()
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--rates", type=lambda text: [float(r) for r in text.split(",")],
                        default=[50.0, 100.0, 200.0], help="open-loop rates, req/s")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--port", type=int, default=5099)
    parser.add_argument("--workers", type=int, default=2,
                        help="HTTP processes of lienwatch serve (its --workers)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the database (and reuse it when it exists) for the next run")
    args = parser.parse_args()
    args.database = KEPT_DATABASE if args.keep else f"{KEPT_DATABASE}_{os.getpid()}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                   {"name": args.database})  # fmt: skip
        reuse = bool(exists) and args.keep
        if not reuse:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{args.database}"'))
    url = make_url(ADMIN_URL).set(database=args.database).render_as_string(hide_password=False)
    engine = make_engine(url)
    server = None
    try:
        started = time.perf_counter()
        if not reuse:
            migrate.upgrade(engine)
            populate(engine, args.cases, 0.0, 1)
            staff(engine, args.cases, args.agents)
        loaded = time.perf_counter() - started
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        env = {**os.environ, "LIENWATCH_CLOCK": (NOW + timedelta(hours=1)).isoformat(),
               "LIENWATCH_DATABASE_URL": url, "LIENWATCH_GATEWAY__HTTP_INGEST": "false"}
        server = subprocess.Popen([
            sys.executable, "-m", "lienwatch", "serve", "--no-gateway", "--no-scheduler",
            "--no-monitor", "--http-port", str(args.port), "--workers", str(args.workers),
        ], env=env)  # fmt: skip
        rows = asyncio.run(measure(args.port, server.pid, admin, args))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        engine.dispose()
        if not args.keep:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)'))
        admin.dispose()
    print(f"open cases: {args.cases:,} on PostgreSQL (loaded in {loaded:.1f} s), "
          f"{args.agents} agents; {args.seconds:g} s at each offered rate")  # fmt: skip
    print(f"load generator CPU: {time.process_time():.1f} s")
    print(f"lienwatch serve --workers {args.workers}; load average before: {load}, after: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    print(f"{'endpoint':32} {'offered/s':>9} {'served/s':>9} {'p50 ms':>8} {'p99 ms':>9} "
          f"{'errors':>7} {'server CPU ms/req':>18} {'db CPU ms/req':>14}")  # fmt: skip
    for name, rate, served, p50, p99, errors, cpu_ms, db_ms in rows:
        print(f"{name:32} {rate:9.0f} {served:9.0f} {p50:8.1f} {p99:9.1f} {errors:7d} "
              f"{cpu_ms:18.2f} {db_ms:14.2f}")  # fmt: skip
    base = {rate: p99 for name, rate, _, _, p99, _, _, _ in rows if name.startswith("health")}
    for name, rate, _served, _p50, p99, _, _, _ in rows:
        if not name.startswith("health"):
            print(f"{name} at {rate:g} req/s: p99 {p99 / base[rate]:.1f}x the baseline's; "
                  f"p99 < 100 ms: {'met' if p99 < 100 else 'NOT met'}")


if __name__ == "__main__":
    main()
