"""``lienwatch worker`` as an operator runs it: several on one PostgreSQL database never
execute a step or run a night twice; with the JetStream bus a worker writes the stream to the
store."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from lienwatch import clock
from lienwatch.bus import JetStreamBus
from lienwatch.config import BusSettings
from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Action, ContactAttempt, LoanSnapshot, Position
from lienwatch.telematics.fixes import Fix
from tests import factories
from tests.bus.test_bus import nats_server  # noqa: F401  (a fixture)
from tests.conftest import HEALTH_TOKEN, postgres_database
from tests.natsd import own_nats  # noqa: F401  (a fixture)
from tests.processes import launch, start
from tests.receivers import SmsGateway
from tests.test_cli import run

SECRET = "s3cret-shared-with-the-sms-gateway"
LOANS = 6


@pytest.fixture
def sms_gateway() -> Iterator[tuple[list[str], str]]:
    """A webhook SMS gateway on loopback: (idempotency key of every request, its URL)."""
    with SmsGateway(delay=0).running() as gateway:
        yield gateway.keys, gateway.url


#: The workers' clock: noon on a Wednesday in Shanghai, where the borrowers live.
NOON = datetime.fromisoformat("2026-03-18T12:00:00+08:00")


def delinquent_book(factory) -> list[date]:
    """LOANS loans whose first installment fell due days before NOON and the nightly run of
    the day before; the days the workers must run."""
    today = NOON.date()
    with transaction(factory) as session:
        loans = [factories.loan_fallen_due(session, f"L{n}", today=today) for n in range(LOANS)]
        first_due = min(i.due_date for i in loans[0].installments)
        run_nightly(session, ProductCatalogue(), as_of=first_due - timedelta(days=1))
    return [first_due + timedelta(days=n) for n in range((today - first_due).days)]


def sms_actions(factory) -> list[str]:
    with transaction(factory) as session:
        return list(session.scalars(select(Action.idempotency_key).where(Action.kind == "sms")))


@pytest.mark.postgres
def test_two_workers_execute_each_due_step_once_and_run_each_night_once(tmp_path, sms_gateway):
    sent, url = sms_gateway
    with postgres_database(f"lienwatch_worker_{os.getpid()}") as database_url:
        engine = make_engine(database_url)
        migrate.upgrade(engine)
        factory = session_factory(engine)
        missing = delinquent_book(factory)
        env = {
            "LIENWATCH_DATABASE_URL": database_url,
            "LIENWATCH_CLOCK": NOON.isoformat(),
            "LIENWATCH_SCHEDULER__FOLLOWUP_TICK_S": "0.2",
            "LIENWATCH_SCHEDULER__NIGHTLY_CATCH_UP_DAYS": "10",
            "LIENWATCH_WORKER__HTTP_PORT": "0",
            "LIENWATCH_FOLLOWUP__PROVIDERS__SMS__PROVIDER": "webhook",
            "LIENWATCH_FOLLOWUP__PROVIDERS__SMS__URL": url,
            "LIENWATCH_FOLLOWUP__PROVIDERS__SMS__SECRET": SECRET,
        }
        workers = [launch("worker", cwd=tmp_path, env=env) for _ in range(2)]
        try:
            for worker in workers:
                ready = worker.wait_ready()
                assert "bus inprocess; jobs followup_tick, nightly, ledger_seal" in ready
            deadline = time.monotonic() + 20
            while len(sms_actions(factory)) < LOANS and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)  # both keep ticking: a step executed twice would show now
        finally:
            stopped = [worker.stop() for worker in workers]
        assert [code for code, _ in stopped] == [0, 0], [w.stderr for w in workers]
        runs = [[json.loads(line) for line in worker.stdout] for worker in workers]
        assert not [line for lines in runs for line in lines if "error" in line]
        ticks = [[r["result"] for r in lines if r["job"] == "followup_tick"] for lines in runs]
        assert all(len(each) >= 3 for each in ticks)  # both workers ticked all along
        executed = sum(t["executed"] for each in ticks for t in each)
        # Every night was run by one worker or the other, never by both.
        nights = [day for lines in runs for r in lines if r["job"] == "nightly"
                  for day in r["result"]["days"]]  # fmt: skip
        assert sorted(nights) == [day.isoformat() for day in missing]

        keys = sms_actions(factory)
        assert len(keys) == LOANS and sorted(sent) == sorted(keys)  # each text sent once
        with transaction(factory) as session:
            kinds = dict(session.execute(
                select(Action.kind, func.count()).where(Action.kind != "status")
                .group_by(Action.kind)
            ).all())  # fmt: skip
            # Each loan's text and tracker review once. Whether the challenger arm's D+3
            # automated call is due depends on which came first, a worker's first tick (a
            # go-live: ladders start from now) or the other's nightly catch-up (the arrears'
            # own dates); either way it is executed once.
            notices = kinds.pop("notice", 0)  # agent calls nobody is on shift to take
            assert kinds.pop("sms") == kinds.pop("gps_check") == LOANS
            assert kinds in ({}, {"voice": LOANS // 2}) and notices <= LOANS
            assert executed == 2 * LOANS + kinds.get("voice", 0)
            texts = select(func.count()).where(ContactAttempt.channel == "sms")
            assert session.scalar(texts) == LOANS
            snapshots = select(func.count()).select_from(LoanSnapshot)
            assert session.scalar(snapshots) == LOANS * (len(missing) + 1)
        engine.dispose()


def test_a_jetstream_worker_writes_the_stream_to_the_store(tmp_path, nats_server):  # noqa: F811
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'lienwatch.sqlite3'}")
    factory = session_factory(engine)
    with transaction(factory) as session:
        device_id = factories.device(session, "013900008888").id
    tag = uuid.uuid4().hex[:10]
    bus = BusSettings(kind="jetstream", stream=f"LW_WORKER_{tag}", subject_prefix=f"lww.{tag}")
    env = {
        "LIENWATCH_BUS__KIND": "jetstream",
        "LIENWATCH_BUS__STREAM": bus.stream,
        "LIENWATCH_BUS__SUBJECT_PREFIX": bus.subject_prefix,
        "LIENWATCH_SCHEDULER__FOLLOWUP_TICK_S": "600",
        "LIENWATCH_WORKER__HTTP_PORT": "0",
    }
    worker = start("worker", cwd=tmp_path, env=env)
    now = clock.now()
    fixes = [Fix(device_id=device_id, time=now - timedelta(seconds=n), lat=30.0, lon=120.0,
                 speed_kmh=0.0, course=0, valid=True, alarms="", archived=False,
                 received_at=now) for n in range(5)]  # fmt: skip

    async def publish() -> None:
        client = await JetStreamBus.connect(bus)
        try:
            await client.publish(fixes)
        finally:
            await client.close()

    def stored() -> int:
        with transaction(factory) as session:
            return session.scalar(select(func.count()).select_from(Position))

    try:
        jobs = "jobs followup_tick, nightly, ledger_seal"
        assert f"bus jetstream; store writer, {jobs}" in worker.ready
        asyncio.run(publish())
        deadline = time.monotonic() + 15
        while stored() < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        code, _ = worker.stop()
        asyncio.run(drop_stream(bus))
    assert code == 0 and stored() == 5
    first = json.loads(worker.stdout[0])
    assert first["job"] in {"followup_tick", "nightly", "ledger_seal"} and "result" in first
    engine.dispose()


async def drop_stream(bus: BusSettings) -> None:
    client = await JetStreamBus.connect(bus)
    try:
        await client.js.delete_stream(bus.stream)
    finally:
        await client.close()


def test_a_worker_reports_its_consumer_and_exits_1_when_nats_stays_away(tmp_path, own_nats):  # noqa: F811
    assert run("db", "upgrade", cwd=tmp_path).returncode == 0
    tag = uuid.uuid4().hex[:10]
    env = {
        "LIENWATCH_BUS__KIND": "jetstream",
        "LIENWATCH_BUS__NATS_URL": own_nats.url,
        "LIENWATCH_BUS__STREAM": f"LW_WORKER_{tag}",
        "LIENWATCH_BUS__SUBJECT_PREFIX": f"lww.{tag}",
        "LIENWATCH_BUS__GIVE_UP_S": "3",
        "LIENWATCH_SCHEDULER__FOLLOWUP_TICK_S": "600",
        "LIENWATCH_GATEWAY__HEALTH_TOKEN": HEALTH_TOKEN,
    }
    worker = start("worker", "--http-port", "0", cwd=tmp_path, env=env)
    port = int(worker.ready.split("http port ")[1].split(";")[0])
    health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=10,
                       headers={"Authorization": f"Bearer {HEALTH_TOKEN}"}).json()  # fmt: skip
    own_nats.stop()
    try:
        code = worker.process.wait(30)
    finally:
        if worker.process.poll() is None:
            worker.process.kill()
    assert health["status"] == "ok"
    assert health["bus"]["consumers"]["store-writer"]["state"] == "running"
    assert code == 1
    assert "worker: stopping (position bus gave up: consumer store-writer failing for" in (
        "".join(worker.stderr)
    )
