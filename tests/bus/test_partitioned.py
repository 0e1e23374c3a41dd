"""A worker's partitioned monitor on the local NATS server and a SQLite store: the risk zones
of ``[monitor] zones_file`` reach every partition and a change reaches them while they run;
a partition never checkpointed starts at the warm-up window, not at the start of the stream,
and the next owner restores its (chunked) checkpoint."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

import nats
from nats.js.api import DeliverPolicy
from sqlalchemy import select

from lienwatch import clock
from lienwatch.bus.jetstream import partition_of
from lienwatch.config import GatewaySettings, WorkerSettings
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

KV = ("LEASES", "CHECKPOINTS", "STAYS")
SPOT = (39.95, 116.50)  # Beijing, away from the borrower's home (a known place)


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

    async def drop() -> None:
        client = await nats.connect(bus.nats_url)
        js = client.jetstream()
        for name in (bus.stream, *(f"KV_{bus.stream}_{kv}" for kv in KV)):
            with contextlib.suppress(Exception):
                await js.delete_stream(name)
        await client.close()

    try:
        asyncio.run(first_owner())
        status, policies = asyncio.run(next_owner())
    finally:
        asyncio.run(drop())
    # the car's partition goes on after its checkpoint; the other saw no message: none to cover
    mine = partition_of(in_store(url, lambda s: s.scalars(select(Vehicle.vin)).one()), 2)
    assert policies[mine] == DeliverPolicy.BY_START_SEQUENCE
    assert policies[1 - mine] == DeliverPolicy.BY_START_TIME
    assert status[str(mine)]["checkpoint"] is not None
    assert [part["risk_zones"] for part in status.values()] == [2, 2]
    assert len([r for r in alert_rows(url) if r.type == "risk_zone_visit"]) == 1
