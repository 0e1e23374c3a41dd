"""A cluster across partitions end to end (issue 20): two ``lienwatch worker`` processes on
PostgreSQL and JetStream each own one of two partitions; three cars of three borrowers,
hashed to both partitions, park together; each worker raises the ``cluster`` alert of its
own cars from the long stays the other shared through ``<stream>_STAYS``."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from lienwatch import clock
from lienwatch.bus.jetstream import partition_of
from lienwatch.config import BusSettings, GatewaySettings
from lienwatch.runtime import open_ingest
from lienwatch.store import migrate
from lienwatch.store.db import make_engine
from lienwatch.store.tables import Alert, Vehicle
from tests.bus.test_bus import nats_server  # noqa: F401  (a fixture)
from tests.bus.test_partitioned import drop
from tests.conftest import HEALTH_TOKEN, postgres_database
from tests.factories import vin_of
from tests.processes import Running, launch
from tests.store.test_live_monitor import fix, in_store, wired_loan
from tests.test_scaled_out import health

#: The workers' clocks start 2.5 minutes before an hour: clusters are decided as a monitor's
#: clock passes the hour, by when the stays have been shared (every 60 s).
T0 = datetime(2026, 6, 1, 9, 57, 30, tzinfo=UTC)
SPOT = (30.30, 120.10)  # Hangzhou, far from the borrowers' homes (Beijing)


def cars_in_both_partitions() -> list[str]:
    """Three loan references whose cars hash to both of two partitions."""
    refs = [f"CLUSTER-{n}" for n in range(20)]
    by_partition = {p: [r for r in refs if partition_of(vin_of(r), 2) == p] for p in (0, 1)}
    return [*by_partition[0][:2], by_partition[1][0]]


def owned(worker: Running) -> list[str]:
    return sorted(health(worker)["partitions"]["partitions"])


@pytest.mark.slow  # waits 2.5 minutes for the workers' clocks to pass the hour; no dates
@pytest.mark.postgres
def test_two_worker_processes_raise_a_cluster_whose_cars_are_in_both_partitions(
    tmp_path, nats_server  # noqa: F811
):
    tag = uuid.uuid4().hex[:10]
    bus = BusSettings(kind="jetstream", stream=f"LW_CLUSTER_{tag}",
                      subject_prefix=f"lwcluster.{tag}", partitions=2)  # fmt: skip
    refs = cars_in_both_partitions()
    with clock.travel(T0), postgres_database(f"lienwatch_clusters_{os.getpid()}") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        keys = [in_store(url, lambda s, r=ref, n=n: wired_loan(s, r, f"0137000009{n:02d}"))
                for n, ref in enumerate(refs)]  # fmt: skip
        env = {
            "LIENWATCH_DATABASE_URL": url,
            "LIENWATCH_BUS__KIND": "jetstream",
            "LIENWATCH_BUS__STREAM": bus.stream,
            "LIENWATCH_BUS__SUBJECT_PREFIX": bus.subject_prefix,
            "LIENWATCH_BUS__PARTITIONS": "2",
            "LIENWATCH_WORKER__MONITOR": "true",
            "LIENWATCH_WORKER__LEASE_S": "3",
            "LIENWATCH_MONITOR__THRESHOLDS__CLUSTER_H": "0.02",  # 72 s together
            "LIENWATCH_MONITOR__REORDER_WINDOW_S": "0",  # the clock passes 10:00 at 10:00
            "LIENWATCH_MONITOR__ADVANCE_S": "1",
            "LIENWATCH_SCHEDULER__FOLLOWUP_TICK_S": "600",
            "LIENWATCH_GATEWAY__HEALTH_TOKEN": HEALTH_TOKEN,
        }
        workers = [launch("worker", "--http-port", "0", cwd=tmp_path, env=env) for _ in range(2)]
        try:
            for worker in workers:
                worker.wait_ready(timeout=120)
            deadline = time.monotonic() + 60
            while [owned(w) for w in workers] not in (
                [["0"], ["1"]], [["1"], ["0"]]
            ):  # fmt: skip
                assert time.monotonic() < deadline, [health(w)["partitions"] for w in workers]
                time.sleep(0.5)

            async def park() -> None:  # 5 minutes together, a fix every 20 s
                async with open_ingest(url, GatewaySettings(), bus, store_writer=False) as ingest:
                    for seconds_ago in range(300, -1, -20):
                        await ingest.bus.publish([
                            fix(key, seconds_ago, at=(SPOT[0] + n * 1e-4, SPOT[1]))
                            for n, key in enumerate(keys)
                        ])  # fmt: skip

            asyncio.run(park())

            def clusters() -> list[tuple[str, str, tuple[str, ...]]]:
                """(the car's VIN, the alert's key, the group's VINs) of each cluster alert."""
                rows = in_store(url, lambda s: s.execute(
                    select(Vehicle.vin, Alert.key, Alert.evidence)
                    .join(Vehicle, Vehicle.id == Alert.vehicle_id)
                    .where(Alert.type == "cluster")).all())  # fmt: skip
                return sorted((vin, key, tuple(e["vehicles"])) for vin, key, e in rows)

            deadline = time.monotonic() + 240  # the workers' clocks pass 10:00 by then
            while len(found := clusters()) < 3:
                if time.monotonic() > deadline:
                    print([health(w)["partitions"] for w in workers], *(w.stderr for w in workers))
                assert time.monotonic() < deadline, f"{len(found)} cluster alerts"
                time.sleep(1)
            time.sleep(2)  # a doubled alert would show now
            final, parts = clusters(), [health(w)["partitions"] for w in workers]
        finally:
            stopped = [w.stop()[0] for w in workers if w.process.poll() is None]
            engine.dispose()
            asyncio.run(drop(bus))
    vins = sorted(vin_of(ref) for ref in refs)
    assert [vin for vin, _, _ in final] == vins and len({key for _, key, _ in final}) == 3
    assert {group for _, _, group in final} == {tuple(vins)}
    # each worker raised its own cars' alerts, from the other's shared stays
    assert sorted(p for part in parts for p in part["partitions"]) == ["0", "1"]
    assert all(part["workers_alive"] == 2 for part in parts)
    assert stopped == [0, 0]

