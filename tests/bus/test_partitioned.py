"""A worker's partitioned monitor on the local NATS server and a SQLite store: the risk zones
of ``[monitor] zones_file`` reach every partition and a change reaches them while they run;
a partition never checkpointed starts at the warm-up window, not at the start of the stream,
and the next owner restores its (chunked) checkpoint; zones published once reach two workers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime, timedelta

import nats
from nats.js.api import DeliverPolicy
from sqlalchemy import select

from lienwatch import clock
from lienwatch.bus.jetstream import partition_of
from lienwatch.config import BusSettings, GatewaySettings, WorkerSettings
from lienwatch.runtime import open_ingest, running_partitions
from lienwatch.store import migrate
from lienwatch.store.db import make_engine
from lienwatch.store.tables import Vehicle
from tests.bus.test_bus import nats_server  # noqa: F401  (a fixture)
from tests.bus.test_consumers import bus_settings
from tests.store.test_live_monitor import (
    alert_rows,
    eventually,
    fix,
    in_store,
    settings,
    wired_loan,
    zones_geojson,
)
from tests.test_cli import run

KV = ("LEASES", "CHECKPOINTS", "STAYS", "REFERENCES")
SPOT = (39.95, 116.50)  # Beijing, away from the borrower's home (a known place)


async def drop(bus: BusSettings) -> None:
    """Delete the test's stream and its key-value buckets."""
    client = await nats.connect(bus.nats_url)
    js = client.jetstream()
    for name in (bus.stream, *(f"KV_{bus.stream}_{kv}" for kv in KV)):
        with contextlib.suppress(Exception):
            await js.delete_stream(name)
    await client.close()


def test_zones_reach_every_partition_and_a_takeover_restores_the_checkpoint(
    tmp_path,
    nats_server,  # noqa: F811
):
    url = f"sqlite:///{tmp_path / 'worker.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    key = in_store(url, lambda s: wired_loan(s, "PART-ZONE", "013700000061"))
    zones = tmp_path / "zones.geojson"
    zones.write_text(zones_geojson(), "utf-8")
    bus = bus_settings()  # two partitions
    config = settings(zones_file=zones, fleet_refresh_s=0.2, warmup_h=2,
                      thresholds={"risk_zone_dwell_min": 0.01, "jump_min_km": 1000})  # fmt: skip
    config = config.model_copy(
        update={"bus": bus, "worker": WorkerSettings(monitor=True, lease_s=3, checkpoint_s=0.5)}
    )

    async def first_owner() -> None:
        async with (
            open_ingest(url, GatewaySettings(), bus) as ingest,
            running_partitions(ingest, config, "w1") as worker,
        ):
            assert sorted(worker.owned) == [0, 1]
            for partition in (0, 1):  # never checkpointed: from the warm-up's start on
                info = await ingest.bus.js.consumer_info(bus.stream, f"monitor-{partition}")
                assert info.config.deliver_policy == DeliverPolicy.BY_START_TIME
                since = datetime.fromisoformat(str(info.config.opt_start_time)[:19] + "+00:00")
                assert abs(since - (clock.now() - timedelta(hours=2))) < timedelta(minutes=1)

            def zones_seen() -> list[int]:
                parts = worker.status()["partitions"].values()
                return [part["risk_zones"] for part in parts]

            await ingest.bus.publish([fix(key, 4.0, at=SPOT)])
            zones.write_text(zones_geojson(SPOT), "utf-8")
            await eventually(lambda: zones_seen() == [1, 1], "the zones in both partitions")
            await ingest.bus.publish([fix(key, 2.0, at=SPOT)])
            await ingest.bus.publish([fix(key, 0.0, at=SPOT)])

            def visits() -> list:
                return [r for r in alert_rows(url) if r.type == "risk_zone_visit"]

            [visit] = await eventually(visits, "the visit")
            assert visit.evidence["zone_id"] == "Z0"
            zones.write_text(zones_geojson(SPOT, (31.2, 121.4)), "utf-8")
            await eventually(lambda: zones_seen() == [2, 2], "the changed zones")

    async def next_owner() -> dict:
        async with (
            open_ingest(url, GatewaySettings(), bus) as ingest,
            running_partitions(ingest, config, "w2") as worker,
        ):
            status = worker.status()["partitions"]
            infos = [await ingest.bus.js.consumer_info(bus.stream, f"monitor-{p}") for p in (0, 1)]
            policies = [info.config.deliver_policy for info in infos]
            return status, policies

    try:
        asyncio.run(first_owner())
        status, policies = asyncio.run(next_owner())
    finally:
        asyncio.run(drop(bus))
    # the car's partition goes on after its checkpoint; the other saw no message: none to cover
    mine = partition_of(in_store(url, lambda s: s.scalars(select(Vehicle.vin)).one()), 2)
    assert policies[mine] == DeliverPolicy.BY_START_SEQUENCE
    assert policies[1 - mine] == DeliverPolicy.BY_START_TIME
    assert status[str(mine)]["checkpoint"] is not None
    assert [part["risk_zones"] for part in status.values()] == [2, 2]
    assert len([r for r in alert_rows(url) if r.type == "risk_zone_visit"]) == 1


def test_zones_published_once_reach_both_workers_without_their_files(
    tmp_path,
    nats_server,  # noqa: F811
):
    """Two workers with no zones file; ``lienwatch references publish`` (a separate process)
    puts a zones file in the bucket once and every partition of both judges by it; a file
    that does not parse is refused by name and publishes nothing; a second publication
    replaces the first everywhere."""
    url = f"sqlite:///{tmp_path / 'workers.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    bus = bus_settings()  # two partitions
    config = settings(fleet_refresh_s=0.2).model_copy(
        update={"bus": bus, "worker": WorkerSettings(monitor=True, lease_s=3, checkpoint_s=5)}
    )
    env = {"LIENWATCH_BUS__KIND": "jetstream", "LIENWATCH_BUS__STREAM": bus.stream,
           "LIENWATCH_BUS__SUBJECT_PREFIX": bus.subject_prefix}  # fmt: skip
    zones = tmp_path / "published.geojson"

    def publish(*centres: tuple[float, float]) -> dict:
        zones.write_text(zones_geojson(*centres), "utf-8")
        done = run("references", "publish", "--zones", str(zones), "--json", cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    async def two_workers() -> tuple[dict, dict, str]:
        async with (
            open_ingest(url, GatewaySettings(), bus) as first_ingest,
            open_ingest(url, GatewaySettings(), bus, store_writer=False) as second_ingest,
            running_partitions(first_ingest, config, "w1") as first,
            running_partitions(second_ingest, config, "w2") as second,
        ):
            def seen() -> list[tuple[str | None, int]]:
                return sorted(((part["references"], part["risk_zones"])
                               for worker in (first, second)
                               for part in worker.status()["partitions"].values()),
                              key=str)  # fmt: skip

            await eventually(lambda: len(seen()) == 2, "one partition each")
            assert seen() == [(None, 0), (None, 0)]  # no file, nothing published yet
            one = await asyncio.to_thread(publish, SPOT)
            await eventually(lambda: seen() == [(one["references"], 1)] * 2, "the zones")
            zones.write_text("{not json", "utf-8")
            refused = await asyncio.to_thread(
                run, "references", "publish", "--zones", str(zones), cwd=tmp_path, env=env
            )
            two = await asyncio.to_thread(publish, SPOT, (31.2, 121.4))
            await eventually(lambda: seen() == [(two["references"], 2)] * 2, "the new zones")
            return one, two, refused.returncode, refused.stderr

    try:
        one, two, code, error = asyncio.run(two_workers())
    finally:
        asyncio.run(drop(bus))
    assert (one["publication"], one["risk_zones"], two["publication"]) == (1, 1, 2)
    assert one["bucket"] == f"{bus.stream}_REFERENCES"
    assert code != 0 and "published.geojson line 1: not JSON" in error
