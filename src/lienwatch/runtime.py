"""Assembling running services from the settings: store, device registry, position bus, gateway,
the HTTP application and the process's stop signal.

This is where the layers meet (like the CLI and the API it may import anything): the
capabilities only know the interfaces, and this module picks the implementations.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from lienwatch import clock
from lienwatch.adapters.references import PublishedReferences, ReferenceFiles, publication
from lienwatch.api.app import OPENAPI_URL, install_api
from lienwatch.api.errors import install_error_handlers
from lienwatch.api.health import Report, health_router
from lienwatch.api.ingest import ingest_router
from lienwatch.api.limits import BodyLimit, head_timeout_protocol
from lienwatch.bus import InProcessBus, JetStreamBus
from lienwatch.bus.leases import Checkpoints, Leases
from lienwatch.bus.partitioned import (
    PartitionAlerts,
    PartitionedMonitor,
    PartitionFleet,
    SharedFleet,
)
from lienwatch.bus.references import ReferenceBucket
from lienwatch.config import BusSettings, GatewaySettings, MonitorSettings, Settings
from lienwatch.data import province_index
from lienwatch.domain.positions import PositionColumns
from lienwatch.jobs import alarm_followups
from lienwatch.monitor.live import Fleet, FleetSource, LiveMonitor
from lienwatch.scheduling import Scheduler
from lienwatch.services.alert_rules import monitor_settings_in_force
from lienwatch.store.db import transaction
from lienwatch.store.migrate import open_store
from lienwatch.store.monitoring import StoreAlertStore, StoreFleetSource
from lienwatch.store.telematics import StoreDeviceDirectory, StoreFixWriter, vehicle_keys
from lienwatch.telematics.fixes import FixHistory, PositionBus, writing_to
from lienwatch.telematics.gateway import PROTOCOLS, Gateway
from lienwatch.telematics.registry import DeviceRegistry
from lienwatch.web.app import install_console

log = logging.getLogger(__name__)

STORE_WRITER = "store-writer"


@dataclass(frozen=True, slots=True)
class Ingest:
    """What receives positions: the registry, the bus and the stored fixes, over one database
    engine."""

    engine: Engine
    factory: sessionmaker[Session]
    registry: DeviceRegistry
    bus: PositionBus
    history: FixHistory


@contextlib.asynccontextmanager
async def open_ingest(
    database_url: str, gateway: GatewaySettings, bus: BusSettings, *, store_writer: bool = True
) -> AsyncIterator[Ingest]:
    """The registry and bus for ``database_url`` (at the schema this lienwatch needs, see
    ``open_store``); closed (pending commits done) on exit.

    With the JetStream bus and ``store_writer``, this process also runs the durable consumer
    that writes the stream to the store (otherwise a ``worker`` elsewhere must).
    """
    with open_store(database_url) as database:
        factory = database.factory
        directory = StoreDeviceDirectory(factory)
        registry = DeviceRegistry(
            directory,
            unknown_devices=gateway.unknown_devices,
            max_quarantined=gateway.max_quarantined_devices,
        )
        position_bus: PositionBus
        if bus.kind == "jetstream":
            position_bus = await JetStreamBus.connect(bus, vehicle_keys(factory))
            if store_writer:
                await position_bus.subscribe(STORE_WRITER, writing_to(StoreFixWriter(factory)))
        else:
            position_bus = InProcessBus(StoreFixWriter(factory))
        try:
            yield Ingest(database.engine, factory, registry, position_bus, StoreFixWriter(factory))
        finally:
            await position_bus.close()


@contextlib.asynccontextmanager
async def running_gateway(
    ingest: Ingest, settings: GatewaySettings, *, host: str | None = None,
    ports: dict[str, int] | None = None,
) -> AsyncIterator[Gateway]:  # fmt: skip
    """The gateway listening (on ``host``/``ports`` if given, else as configured) until exit."""
    gateway = Gateway(settings, ingest.registry, ingest.bus)
    await gateway.start(host=host, ports=ports)
    try:
        yield gateway
    finally:
        await gateway.stop()


def api_app(title: str, settings: GatewaySettings) -> FastAPI:
    """An empty FastAPI application with the project's error body and the request body limits
    of ``settings`` (docs/security.md)."""
    app = FastAPI(title=title, version="1", openapi_url=OPENAPI_URL, docs_url=None,
                  redoc_url=None)  # the docs page is served without a CDN (api/docs.py)
    app.add_middleware(
        BodyLimit, max_bytes=settings.http_max_body_bytes, timeout_s=settings.http_body_timeout_s
    )
    install_error_handlers(app)
    return app


def ingest_app(ingest: Ingest, settings: GatewaySettings) -> FastAPI:
    """A FastAPI application serving HTTP ingest over ``ingest``'s registry and bus."""
    app = api_app("lienwatch ingest", settings)
    app.include_router(ingest_router(ingest.registry, ingest.bus, ingest.history, settings))
    return app


def serve_app(
    ingest: Ingest,
    settings: Settings,
    *,
    gateway: Gateway | None,
    scheduler: Scheduler | None,
    monitor: LiveMonitor | None = None,
) -> FastAPI:
    """The application of ``lienwatch serve``: the REST API and its documentation
    (docs/api.md), the web console (docs/console.md), HTTP ingest (unless ``[gateway]
    http_ingest`` is off) and ``GET /api/v1/health`` reporting the gateway, the bus, the live
    monitor and the jobs."""
    refused: Counter[str] = Counter()  # HTTP fixes refused, by reason
    report = health_report(
        settings, ingest.bus, gateway=gateway, scheduler=scheduler, monitor=monitor,
        refused=refused,
    )  # fmt: skip
    app = health_app(ingest.engine, report, settings.gateway)
    if settings.gateway.http_ingest:
        app.include_router(
            ingest_router(ingest.registry, ingest.bus, ingest.history, settings.gateway, refused)
        )
    install_api(app, ingest.factory, settings)
    install_console(app, ingest.factory, settings)
    return app


def health_app(
    engine: Engine, report: Callable[[], Awaitable[Report]], settings: GatewaySettings
) -> FastAPI:
    """An application serving ``GET /api/v1/health`` alone (``lienwatch worker``), its detail
    behind ``settings.health_token``."""
    app = api_app("lienwatch", settings)
    app.include_router(health_router(engine, report, detail_token=settings.health_token))
    return app


def health_report(
    settings: Settings,
    bus: PositionBus | None,
    *,
    gateway: Gateway | None = None,
    scheduler: Scheduler | None = None,
    monitor: LiveMonitor | None = None,
    refused: Counter[str] | None = None,
    partitions: PartitionedMonitor | None = None,
) -> Callable[[], Awaitable[Report]]:
    """What a process's health endpoint says about the parts it runs (None: not run here);
    ``refused`` counts the HTTP ingest's refused fixes by reason. A partitioned monitor whose
    leases were last renewed longer ago than they last makes the process lagging (another
    worker may be taking its partitions)."""

    async def report() -> Report:
        bus_status, failing, lagging = await bus_report(bus, settings.bus)
        parts = {
            "gateway": None if gateway is None else {
                "ports": {protocol: gateway.port(protocol) for protocol in PROTOCOLS},
                "stats": gateway.stats.as_dict(),
            },
            "ingest": None if refused is None else {"refused_fixes": dict(refused)},
            "bus": bus_status,
            "monitor": None if monitor is None else monitor.status(),
            "jobs": {} if scheduler is None else scheduler.status(),
        }  # fmt: skip
        if partitions is not None:
            parts["partitions"] = partitions.status()
            if (stale := partitions.since_last_renewal()) > partitions.lease_s:
                lagging.append(f"partitions: leases not renewed for {stale:.0f} s")
        return Report(parts, failing, lagging)

    return report


async def bus_report(
    bus: PositionBus | None, settings: BusSettings
) -> tuple[dict[str, Any], list[str], list[str]]:
    """The bus's status, what makes the process fail (a consumer stopped, the bus gave up)
    and what makes it lag (NATS away, a consumer retrying or with more than
    ``settings.max_pending`` messages pending on the server)."""
    if not isinstance(bus, JetStreamBus):
        return {"kind": settings.kind}, [], []
    status = await bus.status()
    failing = [f"bus: gave up: {status['gave_up']}"] if status["gave_up"] else []
    lagging = [] if status["connection"] == "connected" else [f"bus: {status['connection']}"]
    for name, consumer in status["consumers"].items():
        server = consumer["server"]
        if consumer["state"] == "stopped":
            failing.append(f"consumer {name}: stopped")
        elif consumer["state"] == "retrying":
            lagging.append(f"consumer {name}: retrying after {consumer['last_error']}")
        if "error" in server:
            lagging.append(f"consumer {name}: no figures from the server: {server['error']}")
        elif server["pending"] + server["ack_pending"] > settings.max_pending:
            lagging.append(
                f"consumer {name}: {server['pending'] + server['ack_pending']:,} messages "
                f"pending, more than {settings.max_pending:,}"
            )
    return status, failing, lagging


async def until_stopped(stop: asyncio.Event, bus: PositionBus | None) -> str | None:
    """Wait for ``stop`` or, on the JetStream bus, for a consumer that gave up; return why
    it gave up (None when stopped): the command then exits with status 1."""
    waits = [asyncio.create_task(stop.wait())]
    if isinstance(bus, JetStreamBus):
        waits.append(asyncio.create_task(bus.gave_up.wait()))
    _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    return bus.give_up_reason if isinstance(bus, JetStreamBus) else None


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (Ctrl-C, ``kill``, a service manager stopping the
    process), so commands shut down gracefully instead of being interrupted mid-work."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return stop


@contextlib.asynccontextmanager
async def serving_http(
    app: FastAPI, host: str, port: int, settings: GatewaySettings | None = None,
    *, bound: socket.socket | None = None,
) -> AsyncIterator[int]:  # fmt: skip
    """Serve ``app`` with uvicorn on this event loop (the bus lives here), with the HTTP
    limits of ``settings`` (the defaults if None); yields the port. With ``bound``, on that
    socket (bound beforehand, so a busy port stops a command before it starts anything)."""
    limits = settings or GatewaySettings()
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="off",
        access_log=False,  # an OsmAnd client's URL carries its token
        http=head_timeout_protocol(limits.http_header_timeout_s),
        limit_concurrency=limits.http_max_connections, timeout_keep_alive=5,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=None if bound is None else [bound]))
    while not server.started:
        if task.done():  # failed to bind: surface the reason
            await task
            raise RuntimeError(f"http: could not serve on {host}:{port}")
        await asyncio.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


MONITOR_CONSUMER = "monitor"  # the live collateral monitor's bus subscription


@dataclass(frozen=True, slots=True)
class ReferencedFleet:
    """A :class:`~lienwatch.monitor.live.FleetSource` whose fleets carry the risk zones and
    permitted regions of ``references`` as they are at each load: the files of ``[monitor]
    zones_file`` and ``regions_file``, or on the JetStream bus the last ones published
    (``lienwatch worker references publish``); and the alert rules in force in the store
    (``lienwatch alert rules-publish``) over ``settings``. A monitor takes each when its
    version changes: at its next fleet reload."""

    source: FleetSource
    references: ReferenceFiles | PublishedReferences
    factory: sessionmaker[Session]
    settings: MonitorSettings

    def load_fleet(self) -> Fleet:
        references = self.references.current()
        fleet = self.source.load_fleet()
        with transaction(self.factory) as session:
            rules = monitor_settings_in_force(session, self.settings, at=clock.now())
        return replace(fleet, zones=references.zones, regions=references.regions,
                       references=references.version, rules=rules)  # fmt: skip

    def recent_fixes(self, fleet: Fleet, *, since: int) -> Iterable[PositionColumns]:
        return self.source.recent_fixes(fleet, since=since)


def reference_files(settings: Settings) -> ReferenceFiles:
    """The files of ``settings`` (read once now: a bad file stops the start with its name)."""
    files = ReferenceFiles(settings.monitor.zones_file, settings.monitor.regions_file)
    files.current()
    return files


@contextlib.asynccontextmanager
async def published_references(
    bus: JetStreamBus, settings: Settings
) -> AsyncIterator[PublishedReferences]:
    """The references published in ``bus``'s bucket (the last one taken before this yields,
    later ones followed until exit), this machine's files until there is one."""
    references = PublishedReferences(reference_files(settings))
    bucket = await ReferenceBucket.open(bus.js, settings.bus.stream)
    latest = await bucket.latest()
    if latest is not None:
        references.offer(latest.sequence, latest.state)
    following = asyncio.create_task(
        bucket.follow(references.offer, after=references.published), name="references"
    )
    try:
        yield references
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)


async def publish_references(
    settings: Settings, zones: Path | None, regions: Path | None
) -> dict[str, Any]:
    """Publish the risk zones and permitted regions of these files (checked first) in the
    bucket of ``settings.bus`` for every worker and ``serve`` on it; what was published."""
    document, found = publication({"zones": zones, "regions": regions})  # refused first
    if settings.bus.kind != "jetstream":
        raise ValueError('references publish: needs the JetStream bus ([bus] kind = "jetstream")')
    bus = await JetStreamBus.connect(settings.bus)
    try:
        bucket = await ReferenceBucket.open(bus.js, settings.bus.stream)
        sequence = await bucket.publish(document)
    finally:
        await bus.close()
    return {"publication": sequence, "bucket": f"{settings.bus.stream}_REFERENCES",
            "references": found.version[:12], "risk_zones": len(found.zones or ()),
            "regions": len(found.regions or ()), "bytes": len(document)}  # fmt: skip


@contextlib.asynccontextmanager
async def monitor_references(
    bus: PositionBus, settings: Settings
) -> AsyncIterator[ReferenceFiles | PublishedReferences]:
    """What a live monitor on ``bus`` judges by: the published references on the JetStream
    bus, the files otherwise."""
    if isinstance(bus, JetStreamBus):
        async with published_references(bus, settings) as published:
            yield published
    else:
        yield reference_files(settings)


@contextlib.asynccontextmanager
async def running_monitor(ingest: Ingest, settings: Settings) -> AsyncIterator[LiveMonitor]:
    """The live collateral monitor on ``ingest``'s bus and store until exit.

    Subscribes to the bus first (fixes arriving during the warm-up wait for it), warms up
    from the store (raising if that fails), then runs until exit, when it ingests what is
    queued and saves. Yields the monitor; its ``status()`` is for a health endpoint.
    """
    provinces = await asyncio.to_thread(province_index)
    async with monitor_references(ingest.bus, settings) as references:
        monitor = LiveMonitor(
            ReferencedFleet(StoreFleetSource(ingest.factory, provinces), references,
                            ingest.factory, settings.monitor),
            StoreAlertStore(ingest.factory, provinces),
            settings=settings.monitor,
            provinces=provinces,
            followups=alarm_followups(ingest.factory, settings),
        )
        await ingest.bus.subscribe(MONITOR_CONSUMER, monitor.handle)
        try:
            await monitor.start()
            yield monitor
        finally:
            await monitor.stop()


@contextlib.asynccontextmanager
async def running_partitions(
    ingest: Ingest, settings: Settings, worker: str
) -> AsyncIterator[PartitionedMonitor]:
    """The live monitor over the partitions ``worker`` owns on ``ingest``'s JetStream bus,
    until exit (when its partitions are checkpointed and given up for the other workers)."""
    bus = ingest.bus
    if not isinstance(bus, JetStreamBus):
        raise ValueError('worker.monitor: needs the JetStream bus ([bus] kind = "jetstream")')
    provinces = await asyncio.to_thread(province_index)
    async with published_references(bus, settings) as references:
        source = StoreFleetSource(ingest.factory, provinces)
        fleet = SharedFleet(ReferencedFleet(source, references, ingest.factory, settings.monitor))
        alerts = StoreAlertStore(ingest.factory, provinces)
        followups = alarm_followups(ingest.factory, settings)
        partitions = settings.bus.partitions

        def new_monitor(partition: int) -> LiveMonitor:
            mine = PartitionFleet(fleet, partition, partitions)
            return LiveMonitor(
                mine,
                PartitionAlerts(alerts, mine),
                settings=settings.monitor, provinces=provinces, followups=followups,
            )  # fmt: skip

        options = settings.worker
        monitor = PartitionedMonitor(
            bus,
            await Leases.open(bus.js, settings.bus.stream, worker, options.lease_s),
            await Checkpoints.open(bus.js, settings.bus.stream),
            new_monitor,
            lease_s=options.lease_s,
            checkpoint_s=options.checkpoint_s,
            stays=await Checkpoints.open(bus.js, settings.bus.stream, "STAYS"),
        )
        await monitor.start()
        try:
            yield monitor
        finally:
            await monitor.stop()
