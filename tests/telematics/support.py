"""Helpers for gateway tests: fresh devices, tracks, a live gateway on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine

from lienwatch.config import BusSettings, GatewaySettings
from lienwatch.domain.positions import PositionColumns
from lienwatch.runtime import Ingest, open_ingest, running_gateway
from lienwatch.store.db import session_factory, transaction
from lienwatch.store.tables import Device
from lienwatch.telematics.gateway import Gateway
from lienwatch.telematics.simulator import Track

T0 = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())


_idents = iter(range(1, 10**9))


def new_ident(protocol: str) -> str:
    """A device id no other test uses: 12-digit phone (JT/T 808) or 15-digit IMEI (GT06)."""
    number = next(_idents)
    return f"0139{number:08d}" if protocol == "jt808" else f"86{number:013d}"


def add_devices(engine: Engine, protocol: str, count: int) -> list[str]:
    """Register ``count`` fresh devices of ``protocol``; return their idents."""
    idents = [new_ident(protocol) for _ in range(count)]
    with transaction(session_factory(engine)) as session:
        session.add_all(Device(ident=i, protocol=protocol, kind="wired") for i in idents)
    return idents


def make_track(ident: str, fixes: int, *, alarm_at: int | None = None, start: int = T0) -> Track:
    """A straight drive north-east, one fix a minute; ``power_cut`` on fix ``alarm_at``."""
    steps = np.arange(fixes)
    alarms = np.full(fixes, "", dtype=object)
    if alarm_at is not None:
        alarms[alarm_at] = "power_cut"
    return Track(ident, PositionColumns.of(
        np.full(fixes, ident, dtype=object), start + 60 * steps, 31.2 + 0.001 * steps,
        121.4 + 0.001 * steps, speed_kmh=np.full(fixes, 42.0), course=np.full(fixes, 45),
        alarms=alarms,
    ))  # fmt: skip


@dataclass
class LiveGateway:
    """A gateway serving on loopback from its own event loop thread."""

    gateway: Gateway
    ingest: Ingest
    loop: asyncio.AbstractEventLoop

    def port(self, protocol: str) -> int:
        return self.gateway.port(protocol)

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        """Run ``coroutine`` on the gateway's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


@contextlib.contextmanager
def live_gateway(url: str, settings: GatewaySettings | None = None) -> Iterator[LiveGateway]:
    settings = settings or GatewaySettings()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    stack = contextlib.AsyncExitStack()

    async def start() -> LiveGateway:
        ingest = await stack.enter_async_context(open_ingest(url, settings, BusSettings()))
        ports = {"jt808": 0, "gt06": 0}
        server = await stack.enter_async_context(
            running_gateway(ingest, settings, host="127.0.0.1", ports=ports)
        )
        return LiveGateway(server, ingest, loop)

    try:
        yield asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    finally:
        asyncio.run_coroutine_threadsafe(stack.aclose(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
