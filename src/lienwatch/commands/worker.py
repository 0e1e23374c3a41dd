"""``lienwatch worker``: the scaled-out background process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from typing import Annotated, Any

import typer

from lienwatch.commands.common import configure_logging
from lienwatch.commands.options import bind_listener, host_option, port_option
from lienwatch.config import Settings, load_settings
from lienwatch.jobs import scheduler_jobs
from lienwatch.scheduling import JobStatus, running_scheduler
from lienwatch.store.migrate import open_store


def worker(
    host: Annotated[str | None, host_option("worker.host")] = None,
    http_port: Annotated[
        int | None, port_option("--http-port", "Health endpoint", "5056")
    ] = None,
) -> None:
    """Run the background work of a scaled-out deployment until interrupted (Ctrl-C or
    SIGTERM): the follow-up tick and the nightly servicing run, and with the JetStream bus
    ([bus] kind = "jetstream") the durable consumer that writes positions to the store, and
    with [worker] monitor = true the live monitor over the bus partitions this worker owns
    (leases, checkpoints: docs/scaling.md). GET /api/v1/health on the HTTP port reports the
    consumers, the partitions, the jobs and the database.

    Run as many as needed on one PostgreSQL database: one worker at a time ticks or runs a
    night (the others skip), all of them execute the due follow-up steps in batches, no step
    is executed twice and no day is run twice. Prints one JSON line per job run. Exits with
    status 1 if the store-writer consumer cannot go on (for a supervisor to restart it).
    """
    settings = load_settings()
    configure_logging(settings)
    port = settings.worker.http_port if http_port is None else http_port
    address = host or settings.worker.host
    with bind_listener(address, port, "--http-port") as listener:  # before any job starts
        asyncio.run(_work(settings, address, listener))


async def _work(settings: Settings, host: str, listener: socket.socket) -> None:
    from lienwatch.runtime import (
        health_app,
        health_report,
        open_ingest,
        running_partitions,
        serving_http,
        stop_on_signals,
        until_stopped,
    )

    stop = stop_on_signals()
    if settings.worker.monitor and settings.bus.kind != "jetstream":
        raise ValueError('worker.monitor: needs the JetStream bus ([bus] kind = "jetstream")')
    partitions = None
    async with contextlib.AsyncExitStack() as stack:
        if settings.bus.kind == "jetstream":
            ingest = await stack.enter_async_context(
                open_ingest(settings.database_url, settings.gateway, settings.bus)
            )
            engine, factory, bus = ingest.engine, ingest.factory, ingest.bus
            parts = "store writer, "
            if settings.worker.monitor:
                worker_id = f"{socket.gethostname()}-{os.getpid()}"
                partitions = await stack.enter_async_context(
                    running_partitions(ingest, settings, worker_id)
                )
                parts += f"monitor on {len(partitions.owned)} partitions as {worker_id}, "
        else:
            database = stack.enter_context(open_store(settings.database_url))
            engine, factory, bus, parts = database.engine, database.factory, None, ""
        scheduler = await stack.enter_async_context(
            running_scheduler(scheduler_jobs(factory, settings), on_run=print_run)
        )
        report = health_report(settings, bus, scheduler=scheduler, partitions=partitions)
        app = health_app(engine, report, settings.gateway)
        port = await stack.enter_async_context(
            serving_http(app, host, 0, settings.gateway, bound=listener)
        )
        typer.echo(
            f"worker: bus {settings.bus.kind}; {parts}jobs {', '.join(scheduler.statuses)}; "
            f"http port {port}; Ctrl-C to stop",
            err=True,
        )
        gave_up = await until_stopped(stop, bus)
        why = f"position bus gave up: {gave_up}" if gave_up else "running jobs finish first"
        typer.echo(f"worker: stopping ({why})", err=True)
    typer.echo("worker: stopped", err=True)
    if gave_up:
        raise typer.Exit(code=1)


def print_run(status: JobStatus) -> None:
    """One JSON line for a finished run: the job, its run number, how long it took and its
    result, or its error."""
    line: dict[str, Any] = {
        "job": status.name,
        "run": status.runs,
        "seconds": status.last_duration_s,
    }
    if status.last_ok:
        line["result"] = status.last_result
    else:
        line["error"] = status.last_error
    typer.echo(json.dumps(line, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    """Add ``worker`` to the root ``lienwatch`` app."""
    app.command("worker")(worker)
