"""The scaled-out deployment as an operator runs it (issue 21): two ``lienwatch gateway`` and
two ``lienwatch worker`` on PostgreSQL and JetStream, idle for three minutes, then loaded
with simulated trackers while one worker is killed. Every acknowledged position is stored
once and the surviving worker's health tells the truth all along."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select

from lienwatch.config import BusSettings
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Position
from tests.bus.test_bus import nats_server  # noqa: F401  (a fixture)
from tests.conftest import HEALTH_TOKEN, postgres_database
from tests.natsd import free_port
from tests.processes import Running, environment, start
from tests.test_cli import run
from tests.test_worker import drop_stream

#: Longer than the idle spells after which the consumers used to end (72 s and 106 s).
IDLE_S = 180
DEVICES, FIXES = 40, 150  # per gateway


def stored(engine: Engine) -> int:
    with transaction(session_factory(engine)) as session:
        return session.scalar(select(func.count()).select_from(Position))


def health(worker: Running) -> dict:
    port = worker.ready.split("http port ")[1].split(";")[0]
    return httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=10,
                     headers={"Authorization": f"Bearer {HEALTH_TOKEN}"}).json()  # fmt: skip


def unacknowledged(report: dict) -> int:
    server = report["bus"]["consumers"]["store-writer"]["server"]
    return server["pending"] + server["ack_pending"]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout, f"no {what} within {timeout} s"
        time.sleep(0.1)
    return time.monotonic() - began


def simulate(protocol: str, port: int, count: int, fixes: int, cwd: Path,
             env: dict[str, str]) -> subprocess.Popen[str]:  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "lienwatch", "simulate-devices", "--protocol", protocol,
         "--count", str(count), "--fixes", str(fixes), "--port", str(port), "--loans", "200",
         "--window", "4", "--json"],
        cwd=cwd, env=environment(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def acknowledged(run: subprocess.Popen[str]) -> tuple[int, list[str]]:
    """(positions acknowledged, the devices that played) of a finished simulate-devices."""
    out, err = run.communicate(timeout=180)
    assert run.returncode == 0, out[-2000:] + err[-2000:]
    *devices, total = (json.loads(line) for line in out.splitlines())
    return total["acked_positions"], [device["device"] for device in devices]


@pytest.mark.slow
@pytest.mark.postgres
def test_two_gateways_and_two_workers_idle_then_loaded_with_a_worker_killed(
    tmp_path, nats_server  # noqa: F811
):
    tag = uuid.uuid4().hex[:10]
    with postgres_database(f"lienwatch_scaled_{os.getpid()}") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        env = {
            "LIENWATCH_DATABASE_URL": url,
            "LIENWATCH_BUS__KIND": "jetstream",
            "LIENWATCH_BUS__STREAM": f"LW_SCALED_{tag}",
            "LIENWATCH_BUS__SUBJECT_PREFIX": f"lwscaled.{tag}",
            "LIENWATCH_GATEWAY__UNKNOWN_DEVICES": "quarantine",
            "LIENWATCH_GATEWAY__HTTP_INGEST": "false",
            "LIENWATCH_SCHEDULER__FOLLOWUP_TICK_S": "600",
            "LIENWATCH_GATEWAY__HEALTH_TOKEN": HEALTH_TOKEN,
        }
        ports = [{"jt808": free_port(), "gt06": free_port()} for _ in range(2)]
        gateways = [
            start("gateway", "--host", "127.0.0.1", "--no-store-writer", "--jt808-port",
                  str(p["jt808"]), "--gt06-port", str(p["gt06"]), cwd=tmp_path, env=env)
            for p in ports
        ]  # fmt: skip
        workers = [start("worker", "--http-port", "0", cwd=tmp_path, env=env) for _ in range(2)]
        try:
            idle_health = []
            idle_until = time.monotonic() + IDLE_S
            while time.monotonic() < idle_until:
                idle_health.append([health(w)["status"] for w in workers])
                time.sleep(15)
            first = simulate("jt808", ports[0]["jt808"], 1, 1, tmp_path, env)
            acked, [terminal] = acknowledged(first)
            assert acked == 1
            first_stored_in = wait_for(lambda: stored(engine) == 1, 30, "first position")
            # The load plays that terminal again, and a terminal registers once: its operator
            # lets it register anew, as after a tracker is refitted.
            reset = run("device", "reset-auth", terminal, "--by", "ops", cwd=tmp_path, env=env)
            assert reset.returncode == 0, reset.stderr

            loads = [simulate("jt808", ports[0]["jt808"], DEVICES, FIXES, tmp_path, env),
                     simulate("gt06", ports[1]["gt06"], DEVICES, FIXES, tmp_path, env)]  # fmt: skip
            wait_for(lambda: stored(engine) > 1 + DEVICES, 60, "the load reaching the store")
            workers[0].process.kill()  # SIGKILL midway: its batch in hand is never acknowledged
            workers[0].process.wait(10)
            killed_at, survivor, during = time.monotonic(), workers[1], []
            # The first position is the first fix of the jt808 load's first device again.
            total = sum(acknowledged(load)[0] for load in loads)
            while stored(engine) < total:
                assert time.monotonic() - killed_at < 120, f"{stored(engine)} of {total} stored"
                during.append(health(survivor))
                time.sleep(0.5)
            drained_in = time.monotonic() - killed_at
            time.sleep(2)  # a position beyond the acknowledged ones would show now
            # A batch the killed worker committed but never acknowledged comes back after the
            # ack wait (30 s) and is acknowledged by the survivor as duplicates.
            final, settle_by = health(survivor), time.monotonic() + 60
            while unacknowledged(final) and time.monotonic() < settle_by:
                time.sleep(1)
                final = health(survivor)
            count = stored(engine)
        finally:
            stopped = [process.stop() for process in (*gateways, *workers)
                       if process.process.poll() is None]  # fmt: skip
            engine.dispose()
            bus = BusSettings(kind="jetstream", stream=env["LIENWATCH_BUS__STREAM"],
                              subject_prefix=env["LIENWATCH_BUS__SUBJECT_PREFIX"])  # fmt: skip
            asyncio.run(drop_stream(bus))
    for statuses in idle_health:
        assert statuses == ["ok", "ok"], idle_health
    assert first_stored_in < 5
    assert count == total  # every acknowledged position, once (the store keeps one per time)
    assert [code for code, _ in stopped] == [0, 0, 0]
    assert all(h["status"] in {"ok", "degraded"} for h in during), [h["problems"] for h in during]
    consumer = final["bus"]["consumers"]["store-writer"]
    assert final["status"] == "ok" and consumer["state"] == "running" and consumer["errors"] == 0
    assert (consumer["server"]["pending"], consumer["server"]["ack_pending"]) == (0, 0)
    assert drained_in < 90  # the survivor took the killed worker's batch after the ack wait
