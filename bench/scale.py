"""Load and failure test of the scaled-out deployment, on loopback, bounded in time.

Two ``lienwatch gateway`` (JT/T 808 and GT06) and two ``lienwatch worker`` (store writer and
the partitioned live monitor, ``[worker] monitor = true``) on NATS JetStream and a fresh
PostgreSQL database of their own; simulated trackers of financed cars send ``--rate`` fixes
per second each for ``--seconds`` over TCP, one car in ten raising a power-cut alarm during
the run. With ``--kill-worker`` one worker is killed (SIGKILL) midway: the survivor takes
its partitions over when their leases expire, restores their checkpoints and replays.

Prints one JSON object::

    {"sent", "acknowledged", "stored", "lost", "duplicates", "alerts", "duplicate_alerts",
     "missing_alerts", "throughput_per_s", "p50_ms", "p99_ms", ...}

``lost``: acknowledged positions missing from the store (per device: acknowledged minus
stored, the devices send with one frame in flight so what is acknowledged is a prefix);
``duplicates``: stored rows beyond one per (device, fix time); ``duplicate_alerts``: alerts
beyond one per (vehicle, type, start); ``missing_alerts``: cars whose acknowledged alarm has
no alert. Latency is from the alarm frame received (the position's ``received_at``) to the
alert committed (first seen by this process, which polls every ``POLL_S``: an upper bound).
Exits 1 if anything was lost, doubled or missing.

Run: ``python bench/scale.py [--devices 2000] [--rate 1] [--seconds 60] [--kill-worker]``
(``--devices 5000 --seconds 120`` for the longer run; NATS on 127.0.0.1:4222 and PostgreSQL
as ``postgres`` on 127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, date
from decimal import Decimal

import numpy as np
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from lienwatch.domain.positions import PositionColumns
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Alert, Borrower, Device, Loan, Position, Trigger, Vehicle
from lienwatch.telematics.simulator import PlayOptions, Track, play

HOST = "127.0.0.1"
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
POLL_S = 0.2
HEALTH_TOKEN = "bench-scale-health-token-0123456789"


def idents(protocol: str, count: int, offset: int) -> list[str]:
    return [f"0139{n:08d}" if protocol == "jt808" else f"87{n:013d}"
            for n in range(offset, offset + count)]  # fmt: skip


def alarm_step(n: int, fixes: int, every: int) -> int | None:
    """The fix at which car ``n`` raises its alarm, one car in ``every`` (None: it raises
    none); spread over the run."""
    return None if n % every else (n // every * 7) % max(1, fixes - 2) + 1


def track(ident: str, n: int, fixes: int, start: int, step_s: int, every: int) -> Track:
    steps = np.arange(fixes)
    alarms = np.full(fixes, "", dtype=object)
    if (at := alarm_step(n, fixes, every)) is not None:
        alarms[at] = "power_cut"
    return Track(ident, PositionColumns.of(
        np.full(fixes, ident, dtype=object), start + step_s * steps,
        31.2 + 1e-4 * steps + (n % 100) * 1e-3, 121.4 + 1e-4 * steps + (n // 100) * 1e-3,
        speed_kmh=np.full(fixes, 40.0), course=np.full(fixes, 90), alarms=alarms,
    ))  # fmt: skip


# -- the fleet -------------------------------------------------------------------------------


def prepare(url: str, devices: dict[str, str]) -> None:
    """Migrate, and finance a car fitted with each device (ident → protocol)."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    with transaction(session_factory(engine)) as session:
        for n, (ident, protocol) in enumerate(devices.items()):
            owner = Borrower(ref=f"SB{n}", kind="person", name="测试", id_number=f"S{n:017d}",
                             phone=f"139{n:08d}", address="上海市", city="Shanghai",
                             province_code="31", home_lat=31.2, home_lon=121.4)  # fmt: skip
            car = Vehicle(vin=f"LSCALE{n:011d}", plate=f"沪S{n:05d}", make="SAIC", model="MG5",
                          purchase_price=10_000_000, purchase_date=date(2026, 1, 1),
                          borrower=owner)  # fmt: skip
            session.add(Loan(ref=f"SL{n}", borrower=owner, vehicle=car, product="new-car-36",
                             principal=8_000_000, annual_rate=Decimal("0.0899"), term_months=120,
                             method="annuity", disbursed_on=date(2026, 1, 5),
                             maturity_on=date(2036, 1, 5), booked_province="31"))  # fmt: skip
            session.add(Device(ident=ident, protocol=protocol, kind="wired", model="bench",
                               vehicle=car))  # fmt: skip
    engine.dispose()


# -- the processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Process:
    """A ``lienwatch`` command; ready once it printed its Ctrl-C line on stderr."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("LIENWATCH_")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lienwatch", *args], env={**clean, **env},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.stderr: list[str] = []
        self.ready = threading.Event()
        self.ready_line = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)
            if "Ctrl-C" in line:
                self.ready_line = line
                self.ready.set()

    def wait_ready(self, timeout: float = 180) -> None:
        if not self.ready.wait(timeout):
            self.process.kill()
            raise RuntimeError(f"{self.process.args} not ready:\n{''.join(self.stderr[-30:])}")

    def health(self) -> dict:
        import httpx

        port = self.ready_line.split("http port ")[1].split(";")[0]
        return httpx.get(f"http://{HOST}:{port}/api/v1/health", timeout=10,
                         headers={"Authorization": f"Bearer {HEALTH_TOKEN}"}).json()  # fmt: skip

    def cpu_seconds(self) -> float:
        """CPU time the process used so far (user + system, from /proc)."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def client(args: argparse.Namespace) -> None:
    """A device process: play its share of the fleet, print what was acknowledged."""
    names = idents(args.protocol, args.devices, args.offset)
    fixes = max(2, int(args.rate * args.seconds))
    step_s = max(1, round(1 / args.rate))
    tracks = [track(ident, args.offset + n, fixes, args.start, step_s, args.alarm_every)
              for n, ident in enumerate(names)]  # fmt: skip
    options = PlayOptions(rate=args.rate, seconds=args.seconds, window=1, heartbeat_every=1000)
    report = asyncio.run(play(tracks, args.protocol, HOST, args.port, options))
    print(json.dumps({
        "sent": report.positions,
        "acked": {d.ident: d.acked_positions for d in report.devices},
        "errors": report.errors, "seconds": report.seconds,
        "error_kinds": sorted({e.split(":")[0] for d in report.devices for e in d.errors}),
        "error_samples": sorted({e[:120] for d in report.devices for e in d.errors})[:3],
    }))  # fmt: skip


def devices_process(protocol: str, port: int, count: int, offset: int, args: argparse.Namespace,
                    start: int) -> subprocess.Popen[str]:  # fmt: skip
    return subprocess.Popen(
        [sys.executable, __file__, "--client", "--protocol", protocol, "--port", str(port),
         "--devices", str(count), "--offset", str(offset), "--rate", str(args.rate),
         "--seconds", str(args.seconds), "--start", str(start),
         "--alarm-every", str(args.alarm_every)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


# -- measuring -------------------------------------------------------------------------------


class AlertWatch(threading.Thread):
    """Polls the alerts table, noting when each alert was first seen committed."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.engine = make_engine(url)
        self.first_seen: dict[int, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            with self.engine.connect() as conn:
                ids = conn.execute(select(Alert.id).where(Alert.type == "power_cut")).scalars()
                now = time.time()
                for alert_id in ids:
                    self.first_seen.setdefault(alert_id, now)
            self.done.wait(POLL_S)


def measure(url: str, acked: dict[str, int], expected: set[str], watch: AlertWatch) -> dict:
    """The figures of the JSON output from the store; ``expected``: the devices whose alarm
    was acknowledged."""
    engine = make_engine(url)
    with engine.connect() as conn:
        per_device = dict(conn.execute(
            select(Device.ident, func.count(Position.id)).join(Position).group_by(Device.ident)
        ).all())  # fmt: skip
        rows = conn.scalar(select(func.count()).select_from(Position))
        distinct = conn.scalar(select(func.count()).select_from(
            select(Position.device_id, Position.fix_time).distinct().subquery()))  # fmt: skip
        alerts = conn.execute(
            select(Alert.id, Alert.vehicle_id, Alert.type, Alert.started_at)
        ).all()
        triggers = conn.execute(select(Trigger.alert_id).where(Trigger.alert_id.is_not(None)))
        trigger_alerts = list(triggers.scalars())
        untriggered = conn.execute(
            select(Alert.status, Alert.loan_id.is_(None), func.count())
            .where(~Alert.id.in_(select(Trigger.alert_id).where(Trigger.alert_id.is_not(None))))
            .group_by(Alert.status, Alert.loan_id.is_(None))
        ).all()  # fmt: skip
        alarm_alerts = conn.execute(
            select(Device.ident, Alert.id, Position.received_at)
            .join(Alert, Alert.vehicle_id == Device.vehicle_id)
            .join(Position, (Position.device_id == Device.id) & (Position.alarms != ""))
            .where(Alert.type == "power_cut")
        ).all()  # fmt: skip
    engine.dispose()
    groups = {(a.vehicle_id, a.type, a.started_at) for a in alerts}
    raised = {row.ident for row in alarm_alerts}
    latencies = sorted(
        (watch.first_seen[row.id] - row.received_at.replace(tzinfo=UTC).timestamp()) * 1000
        for row in alarm_alerts if row.id in watch.first_seen
    )  # fmt: skip
    return {
        "stored": rows,
        "lost": sum(max(0, count - per_device.get(ident, 0)) for ident, count in acked.items()),
        "duplicates": rows - distinct,
        "alerts": len(alerts),
        "duplicate_alerts": len(alerts) - len(groups),
        "expected_alerts": len(expected),
        "missing_alerts": len(expected - raised),
        "alert_triggers": len(trigger_alerts),
        "duplicate_triggers": len(trigger_alerts) - len(set(trigger_alerts)),
        "untriggered_alerts": {f"{status}{' without loan' if no_loan else ''}": n
                               for status, no_loan, n in untriggered},
        "p50_ms": round(float(np.percentile(latencies, 50)), 1) if latencies else None,
        "p99_ms": round(float(np.percentile(latencies, 99)), 1) if latencies else None,
    }


# -- the run ---------------------------------------------------------------------------------


async def drop_nats(stream: str) -> None:
    import nats

    client = await nats.connect(f"nats://{HOST}:4222")
    js = client.jetstream()
    for name in (stream, *(f"KV_{stream}_{kv}" for kv in ("LEASES", "CHECKPOINTS", "STAYS"))):
        with contextlib.suppress(Exception):  # not made (a run that failed early)
            await js.delete_stream(name)
    await client.close()


def run(args: argparse.Namespace) -> dict:
    tag = uuid.uuid4().hex[:8]
    database = f"lienwatch_scale_{tag}"
    admin = create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    url = make_url(args.admin_url).set(database=database).render_as_string(hide_password=False)
    half = args.devices // 2
    fleet = {i: "jt808" for i in idents("jt808", half, 0)}
    fleet |= {i: "gt06" for i in idents("gt06", args.devices - half, half)}
    stream = f"LW_SCALE_{tag}"
    env = {
        "LIENWATCH_DATABASE_URL": url, "LIENWATCH_BUS__KIND": "jetstream",
        "LIENWATCH_BUS__STREAM": stream, "LIENWATCH_BUS__SUBJECT_PREFIX": f"lwscale.{tag}",
        "LIENWATCH_BUS__PARTITIONS": str(args.partitions),
        "LIENWATCH_WORKER__MONITOR": "true", "LIENWATCH_WORKER__LEASE_S": str(args.lease_s),
        "LIENWATCH_WORKER__CHECKPOINT_S": str(args.checkpoint_s),
        "LIENWATCH_GATEWAY__HTTP_INGEST": "false", "LIENWATCH_GATEWAY__HEALTH_TOKEN": HEALTH_TOKEN,
        "LIENWATCH_GATEWAY__MAX_MESSAGES_PER_S": "1000000",
        "LIENWATCH_SCHEDULER__FOLLOWUP_TICK_S": "3600",
        "LIENWATCH_MONITOR__REORDER_WINDOW_S": "3600",
    }  # fmt: skip
    processes: list[Process] = []
    watch = AlertWatch(url)
    try:
        prepare(url, fleet)
        workers = [Process(["worker", "--http-port", "0"], env) for _ in range(2)]
        ports = [(free_port(), free_port()) for _ in range(2)]
        gateways = [
            Process(["gateway", "--host", HOST, "--no-store-writer", "--jt808-port", str(jt),
                     "--gt06-port", str(gt)], env)
            for jt, gt in ports
        ]  # fmt: skip
        processes = [*workers, *gateways]
        for process in processes:
            process.wait_ready()
        watch.start()
        start = int(time.time())
        began = time.monotonic()
        clients = [
            devices_process("jt808", ports[0][0], half, 0, args, start),
            devices_process("gt06", ports[1][1], args.devices - half, half, args, start),
        ]
        killed, cpu = None, {}
        if args.kill_worker:
            time.sleep(args.seconds / 2)
            cpu[id(workers[0])] = workers[0].cpu_seconds()
            workers[0].process.kill()  # SIGKILL: no checkpoint, no lease given up
            workers[0].process.wait()
            killed = round(time.monotonic() - began, 1)
        reports = [json.loads(c.communicate(timeout=args.seconds * 3 + 120)[0]) for c in clients]
        sent_in = time.monotonic() - began
        acked = {ident: n for r in reports for ident, n in r["acked"].items()}
        fixes = max(2, int(args.rate * args.seconds))
        expected = {ident for n, ident in enumerate(fleet)
                    if (at := alarm_step(n, fixes, args.alarm_every)) is not None
                    and acked.get(ident, 0) > at}
        survivors = [w for w in workers if w.process.poll() is None]
        drained_in = settle(url, acked, expected, survivors, watch, args.settle_s)
        watch.done.set()
        watch.join()
        cpu |= {id(p): p.cpu_seconds() for p in processes if p.process.poll() is None}
        gateway_cpu = sum(cpu[id(g)] for g in gateways)
        worker_cpu = sum(cpu[id(w)] for w in workers)
        owned = [part for worker in survivors
                 for part in worker.health()["partitions"]["partitions"].values()]  # fmt: skip
        checkpointed = [part for part in owned if part["checkpoint_bytes"]]
        result = {
            "sent": sum(r["sent"] for r in reports),
            "acknowledged": sum(acked.values()),
            **measure(url, acked, expected, watch),
            "throughput_per_s": round(sum(acked.values()) / sent_in, 1),
            "device_errors": sum(r["errors"] for r in reports),
            "device_error_kinds": sorted({k for r in reports for k in r["error_kinds"]}),
            "device_error_samples": sorted({e for r in reports for e in r["error_samples"]})[:4],
            "killed_worker_at_s": killed,
            "drained_after_s": drained_in,
            "partitions_owned": [sorted(w.health()["partitions"]["partitions"]) for w in survivors],
            "gateway_cpu_s": round(gateway_cpu, 1),
            "worker_cpu_s": round(worker_cpu, 1),
            "positions_per_gateway_cpu_s": round(sum(acked.values()) / gateway_cpu),
            "positions_per_worker_cpu_s": round(sum(acked.values()) / worker_cpu),
            "checkpoint_bytes_per_vehicle": round(
                sum(p["checkpoint_bytes"] for p in checkpointed)
                / max(1, sum(p["vehicles"] for p in checkpointed))
            ),
        }
        result["followup_errors"] = [
            line.strip()[-200:] for w in workers for line in w.stderr if "follow-ups of" in line
        ][:5]
        for process in processes:
            process.stop()
        result["exit_codes"] = [p.process.returncode for p in processes]
        result["failed_processes"] = [
            "".join(p.stderr[-8:]) for p in processes if p.process.returncode not in (0, -9)
        ]
        return result
    finally:
        watch.done.set()
        for process in processes:
            if process.process.poll() is None:
                process.process.kill()
        asyncio.run(drop_nats(stream))
        watch.engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def settle(url: str, acked: dict[str, int], expected: set[str], workers: list[Process],
           watch: AlertWatch, timeout: float) -> float | None:  # fmt: skip
    """Wait until every acknowledged position is stored, every expected alert is there and no
    consumer has anything pending; seconds it took after the devices stopped (None: it did
    not within ``timeout``)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        figures = measure(url, acked, expected, watch)
        pending = 0
        for worker in workers:
            for consumer in worker.health()["bus"]["consumers"].values():
                server = consumer["server"]
                pending += server.get("pending", 1) + server.get("ack_pending", 0)
        if figures["lost"] == 0 and figures["missing_alerts"] == 0 and pending == 0:
            return round(time.monotonic() - began, 1)
        time.sleep(1)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=1.0, help="fixes per second per device")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--kill-worker", action="store_true")
    parser.add_argument("--alarm-every", type=int, default=10,
                        help="one car in this many raises an alarm during the run")
    parser.add_argument("--admin-url", default=ADMIN_URL,
                        help="PostgreSQL URL allowed to create the run's database")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--lease-s", type=float, default=10.0)
    parser.add_argument("--checkpoint-s", type=float, default=10.0)
    parser.add_argument("--settle-s", type=float, default=120.0)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--protocol", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(args)
        return
    result = run(args)
    print(json.dumps(result))
    bad = result["lost"] or result["duplicates"] or result["duplicate_alerts"]
    bad = bad or result["duplicate_triggers"]
    if bad or result["missing_alerts"] or result["drained_after_s"] is None:
        sys.exit(1)


if __name__ == "__main__":
    main()
