"""The demo's pass through the production path: simulated trackers → real gateway → store.

:func:`feed_sample_through_gateway` starts the real gateway on ephemeral loopback ports over
the demo database, plays a sample of the simulated vehicles' trackers through it in both
protocols (JT/T 808: register, authenticate, batched locations; GT06: login, locations,
alarms, heartbeats) and returns what happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lienwatch.bus import InProcessBus
from lienwatch.config import BusSettings, GatewaySettings
from lienwatch.domain.positions import PositionColumns
from lienwatch.runtime import open_ingest, running_gateway
from lienwatch.sim.records import SimDevice
from lienwatch.telematics.simulator import PlayOptions, play, split_tracks, track_slices

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class GatewayFeedStats:
    """Counts of one feed.

    Attributes:
        devices: simulated devices played, per protocol.
        sent: positions the devices sent.
        acked: positions the gateway acknowledged (only once durable).
        stored: positions that were new in the store.
        duplicates: positions already stored (same device and fix time), dropped.
        archived: positions stored as late (replayed history is late).
        rejected: frames the gateway rejected plus positions it refused.
        device_errors: devices that got a missing or wrong reply.
        seconds: wall time of the feed.
    """

    devices: dict[str, int]
    sent: int
    acked: int
    stored: int
    duplicates: int
    archived: int
    rejected: int
    device_errors: int
    seconds: float


def feed_sample_through_gateway(
    positions: PositionColumns,
    devices: Sequence[SimDevice],
    database_url: str,
    *,
    per_protocol: int = 20,
    fixes_per_device: int = 250,
) -> GatewayFeedStats:
    """Play the first ``per_protocol`` devices of each protocol (their first
    ``fixes_per_device`` fixes) through a gateway over ``database_url``; return the counts.

    The devices must be registered in the database (the demo loads the portfolio first).
    Fixes already in the store are acknowledged and counted as duplicates, not stored twice.
    Blocking; takes about a second for the defaults.
    """
    return asyncio.run(_feed(positions, devices, database_url, per_protocol, fixes_per_device))


def sample_fixes(
    positions: PositionColumns,
    devices: Sequence[SimDevice],
    *,
    per_protocol: int = 20,
    fixes_per_device: int = 250,
) -> np.ndarray:
    """Which fixes :func:`feed_sample_through_gateway` plays (a mask over ``positions``), so
    the demo can leave them out of the bulk load and let them arrive through the gateway."""
    mask = np.zeros(len(positions), dtype=bool)
    for protocol in ("jt808", "gt06"):
        idents = _sample(devices, protocol, per_protocol)
        for _, part in track_slices(positions.device_id, idents, limit=fixes_per_device):
            mask[part] = True
    return mask


def _sample(devices: Sequence[SimDevice], protocol: str, count: int) -> list[str]:
    return [d.device_id for d in devices if d.protocol == protocol][:count]


async def _feed(
    positions: PositionColumns,
    devices: Sequence[SimDevice],
    database_url: str,
    per_protocol: int,
    fixes_per_device: int,
) -> GatewayFeedStats:
    # The devices are ours and local: no throttling, so the feed stays fast.
    settings = GatewaySettings(max_messages_per_s=1e6, burst_messages=1_000_000)
    ports = {"jt808": 0, "gt06": 0}
    async with (
        open_ingest(database_url, settings, BusSettings(kind="inprocess")) as ingest,
        running_gateway(ingest, settings, host=LOOPBACK, ports=ports) as gateway,
    ):
        plays = {}
        for protocol, options in (
            ("jt808", PlayOptions(batch=10, window=4)),
            ("gt06", PlayOptions(window=4, heartbeat_every=20)),
        ):
            idents = _sample(devices, protocol, per_protocol)
            tracks = split_tracks(positions, idents, limit=fixes_per_device)
            plays[protocol] = play(tracks, protocol, LOOPBACK, gateway.port(protocol), options)
        reports = dict(zip(plays, await asyncio.gather(*plays.values()), strict=True))
    assert isinstance(ingest.bus, InProcessBus)
    bus_stats = ingest.bus.stats
    stats = gateway.stats
    return GatewayFeedStats(
        devices={name: len(report.devices) for name, report in reports.items()},
        sent=sum(r.positions for r in reports.values()),
        acked=sum(r.acked_positions for r in reports.values()),
        stored=bus_stats.new,
        duplicates=bus_stats.published - bus_stats.new,
        archived=stats.archived,
        rejected=sum(stats.frame_errors.values()) + stats.refused_positions,
        device_errors=sum(r.errors for r in reports.values()),
        seconds=round(max(r.seconds for r in reports.values()), 3),
    )
