"""``lienwatch serve``: the embedded deployment in one process and one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

import typer

from lienwatch.config import Settings, load_settings
from lienwatch.jobs import scheduler_jobs
from lienwatch.scheduling import running_scheduler
from lienwatch.store.migrate import require_head


def serve(
    host: Annotated[
        str | None, typer.Option(help="Listen address [default: gateway.host].")
    ] = None,
    jt808_port: Annotated[
        int | None, typer.Option(min=0, help="JT/T 808 port, 0 = any free [default: 5015].")
    ] = None,
    gt06_port: Annotated[
        int | None, typer.Option(min=0, help="GT06 port, 0 = any free [default: 5023].")
    ] = None,
    http_port: Annotated[
        int | None, typer.Option(min=0, help="HTTP port, 0 = any free [default: 5055].")
    ] = None,
    gateway: Annotated[
        bool, typer.Option("--gateway/--no-gateway", help="Run the tracker TCP servers.")
    ] = True,
    scheduler: Annotated[
        bool,
        typer.Option("--scheduler/--no-scheduler", help="Run the follow-up and nightly jobs."),
    ] = True,
) -> None:
    """Run lienwatch in one process until interrupted (Ctrl-C or SIGTERM): the JT/T 808 and
    GT06 servers, one HTTP server (HTTP ingest and GET /api/v1/health) and the scheduler
    (the follow-up tick and the nightly servicing run).

    The ports in use are printed in one line on stderr. On SIGTERM the HTTP server and the
    gateway stop and running jobs finish before the process exits with status 0.
    """
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(message)s")
    ports = {
        name: port
        for name, port in (("jt808", jt808_port), ("gt06", gt06_port))
        if port is not None
    }
    asyncio.run(_serve(settings, host or settings.gateway.host, ports, http_port, gateway,
                       scheduler))  # fmt: skip


async def _serve(
    settings: Settings, host: str, ports: dict[str, int], http_port: int | None,
    with_gateway: bool, with_scheduler: bool,
) -> None:  # fmt: skip
    from lienwatch.runtime import (
        open_ingest,
        running_gateway,
        serve_app,
        serving_http,
        stop_on_signals,
    )

    stop = stop_on_signals()
    async with contextlib.AsyncExitStack() as stack:  # closed in reverse: HTTP first
        ingest = await stack.enter_async_context(
            open_ingest(settings.database_url, settings.gateway, settings.bus)
        )
        require_head(ingest.engine)
        # The live collateral monitor attaches here, on the same ingest:
        # runtime.running_monitor(ingest, settings), entered before the gateway so that on
        # exit it stops after the gateway (it sees every position made durable) and before
        # the bus closes.
        gateway = (
            await stack.enter_async_context(
                running_gateway(ingest, settings.gateway, host=host, ports=ports)
            )
            if with_gateway
            else None
        )
        scheduler = (
            await stack.enter_async_context(
                running_scheduler(scheduler_jobs(ingest.factory, settings))
            )
            if with_scheduler
            else None
        )
        app = serve_app(ingest, settings, gateway=gateway, scheduler=scheduler)
        port = await stack.enter_async_context(
            serving_http(app, host, settings.gateway.http_port if http_port is None else http_port)
        )
        listening = [f"{p} port {gateway.port(p)}" for p in ("jt808", "gt06") if gateway]
        jobs = ", ".join(scheduler.statuses) if scheduler else "none"
        typer.echo(
            f"serve: {', '.join([*listening, f'http port {port}'])}; bus {settings.bus.kind}; "
            f"jobs {jobs}; Ctrl-C to stop",
            err=True,
        )
        await stop.wait()
        typer.echo("serve: stopping (running jobs finish first)", err=True)
    typer.echo("serve: stopped", err=True)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the root ``lienwatch`` app."""
    app.command("serve")(serve)
