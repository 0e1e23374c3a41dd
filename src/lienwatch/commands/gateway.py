"""``lienwatch gateway`` (the tracker servers) and ``lienwatch simulate-devices``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from enum import StrEnum
from typing import Annotated

import typer

from lienwatch.commands.common import configure_logging
from lienwatch.commands.options import check_free, host_option, port_option
from lienwatch.config import Settings, load_settings


class ProtocolName(StrEnum):
    JT808 = "jt808"
    GT06 = "gt06"


def gateway(
    host: Annotated[str | None, host_option("gateway.host")] = None,
    jt808_port: Annotated[int | None, port_option("--jt808-port", "JT/T 808", "5015")] = None,
    gt06_port: Annotated[int | None, port_option("--gt06-port", "GT06", "5023")] = None,
    store_writer: Annotated[
        bool, typer.Option(help="With the JetStream bus, also write the stream to the store.")
    ] = True,
) -> None:
    """Run the JT/T 808 and GT06 servers until interrupted (Ctrl-C or SIGTERM).

    Devices are admitted by the registry in the configured database; positions go to the
    configured bus ([bus] kind) and devices are acknowledged once they are durable.
    """
    settings = load_settings()
    configure_logging(settings)
    ports = {
        name: port
        for name, port in (("jt808", jt808_port), ("gt06", gt06_port))
        if port is not None
    }
    address = host or settings.gateway.host
    check_free(address, jt808_port if jt808_port is not None else settings.gateway.jt808_port,
               "--jt808-port")
    check_free(address, gt06_port if gt06_port is not None else settings.gateway.gt06_port,
               "--gt06-port")
    if settings.gateway.http_ingest:
        check_free(address, settings.gateway.http_port, "gateway.http_port")
    asyncio.run(_serve(settings, host, ports, store_writer))


async def _serve(
    settings: Settings, host: str | None, ports: dict[str, int], store_writer: bool
) -> None:
    from lienwatch.runtime import (
        ingest_app,
        open_ingest,
        running_gateway,
        serving_http,
        stop_on_signals,
        until_stopped,
    )

    stop = stop_on_signals()
    async with contextlib.AsyncExitStack() as stack:
        ingest = await stack.enter_async_context(
            open_ingest(
                settings.database_url, settings.gateway, settings.bus, store_writer=store_writer
            )
        )
        server = await stack.enter_async_context(
            running_gateway(ingest, settings.gateway, host=host, ports=ports)
        )
        listening = f"jt808 on port {server.port('jt808')}, gt06 on port {server.port('gt06')}"
        if settings.gateway.http_ingest:
            app = ingest_app(ingest, settings.gateway)
            http_port = await stack.enter_async_context(
                serving_http(
                    app, host or settings.gateway.host, settings.gateway.http_port, settings.gateway
                )
            )
            listening += f", HTTP ingest on port {http_port}"
        typer.echo(f"gateway: {listening}, bus {settings.bus.kind}; Ctrl-C to stop", err=True)
        gave_up = await until_stopped(stop, ingest.bus)
    typer.echo(f"gateway stopped: {server.stats}", err=True)
    if gave_up:
        typer.echo(f"gateway: position bus gave up: {gave_up}", err=True)
        raise typer.Exit(code=1)


def simulate_devices(
    protocol: Annotated[ProtocolName, typer.Option("--protocol", "-p", help="Device protocol.")],
    count: Annotated[int, typer.Option(min=1, help="Devices to simulate.")] = 10,
    host: Annotated[str, typer.Option(help="Gateway address.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Gateway port [default: 5015 / 5023].")] = None,
    rate: Annotated[
        float | None, typer.Option(help="Fixes per second per device [default: no limit].")
    ] = None,
    seconds: Annotated[float | None, typer.Option(help="Stop sending after this long.")] = None,
    fixes: Annotated[int, typer.Option(min=1, help="Fixes per device, from its track.")] = 100,
    batch: Annotated[int, typer.Option(min=1, max=30, help="JT/T 808 fixes per frame.")] = 1,
    window: Annotated[int, typer.Option(min=1, help="Frames in flight before an ACK.")] = 1,
    loans: Annotated[
        int | None, typer.Option(help="Simulated portfolio size [default: demo.loans].")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Portfolio seed [default: demo.seed].")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per line (JSON lines).")
    ] = False,
) -> None:
    """Play simulated vehicles' tracks over TCP as real trackers would (register,
    authenticate, heartbeat, locations, alarms); print one line per device and a total
    (JSON lines with --json).

    The devices come from the simulated portfolio the demo uses (same loans and seed), so
    they are registered in a demo database; a gateway with unknown_devices = "quarantine"
    accepts any. Exits 1 if any device got a missing or wrong reply.
    """
    from lienwatch.sim import SimConfig, generate
    from lienwatch.telematics.simulator import PlayOptions, play, split_tracks

    settings = load_settings()
    options = PlayOptions(rate=rate, seconds=seconds, batch=batch, window=window)
    config = SimConfig(
        loans=loans if loans is not None else max(settings.demo.loans, math.ceil(count * 1.5)),
        days=14,
        seed=seed if seed is not None else settings.demo.seed,
    )
    portfolio = generate(config)
    idents = [d.device_id for d in portfolio.devices if d.protocol == protocol.value][:count]
    if len(idents) < count:
        raise ValueError(f"count: the portfolio has only {len(idents)} {protocol.value} devices")
    tracks = split_tracks(portfolio.positions, idents, limit=fixes)
    if port is None:
        port = settings.gateway.jt808_port if protocol == "jt808" else settings.gateway.gt06_port
    report = asyncio.run(play(tracks, protocol.value, host, port, options))
    for device in report.devices:
        row = {
            "device": device.ident, "protocol": device.protocol, "frames": device.frames,
            "positions": device.positions, "alarms": device.alarms,
            "heartbeats": device.heartbeats, "acked_positions": device.acked_positions,
            "errors": device.errors,
        }  # fmt: skip
        typer.echo(json.dumps(row, ensure_ascii=False) if as_json else
                   f"{row['device']} ({row['protocol']}): {row['frames']} frames, "
                   f"{row['acked_positions']} of {row['positions']} positions acknowledged, "
                   f"{row['alarms']} alarms, {row['heartbeats']} heartbeats, "
                   f"errors: {', '.join(row['errors']) or 'none'}")  # fmt: skip
    total = {
        "devices": len(report.devices), "positions": report.positions,
        "acked_positions": report.acked_positions, "errors": report.errors,
        "seconds": round(report.seconds, 3),
        "positions_per_s": round(report.positions / report.seconds) if report.seconds else None,
    }  # fmt: skip
    typer.echo(json.dumps(total) if as_json else
               f"total: {total['devices']} devices, {total['acked_positions']} of "
               f"{total['positions']} positions acknowledged in {total['seconds']} s "
               f"({total['positions_per_s']} positions/s), {total['errors']} errors")  # fmt: skip
    if report.errors:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add ``gateway`` and ``simulate-devices`` to the root ``lienwatch`` app."""
    app.command("gateway")(gateway)
    app.command("simulate-devices")(simulate_devices)
