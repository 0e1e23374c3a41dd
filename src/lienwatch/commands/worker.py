"""``lienwatch worker``: the scaled-out background process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import typer

from lienwatch.config import Settings, load_settings
from lienwatch.jobs import scheduler_jobs
from lienwatch.scheduling import JobStatus, running_scheduler
from lienwatch.store.db import open_database
from lienwatch.store.migrate import require_head


def worker() -> None:
    """Run the background work of a scaled-out deployment until interrupted (Ctrl-C or
    SIGTERM): the follow-up tick and the nightly servicing run, and with the JetStream bus
    ([bus] kind = "jetstream") the durable consumer that writes positions to the store.

    Run as many as needed on one PostgreSQL database: one worker at a time ticks or runs a
    night (the others skip), all of them execute the due follow-up steps in batches, no step
    is executed twice and no day is run twice. Prints one JSON line per job run.
    """
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(_work(settings))


async def _work(settings: Settings) -> None:
    from lienwatch.runtime import open_ingest, stop_on_signals

    stop = stop_on_signals()
    async with contextlib.AsyncExitStack() as stack:
        if settings.bus.kind == "jetstream":
            ingest = await stack.enter_async_context(
                open_ingest(settings.database_url, settings.gateway, settings.bus)
            )
            engine, factory, parts = ingest.engine, ingest.factory, "store writer, "
        else:
            database = stack.enter_context(open_database(settings.database_url))
            engine, factory, parts = database.engine, database.factory, ""
        require_head(engine)
        scheduler = await stack.enter_async_context(
            running_scheduler(scheduler_jobs(factory, settings), on_run=print_run)
        )
        typer.echo(
            f"worker: bus {settings.bus.kind}; {parts}jobs {', '.join(scheduler.statuses)}; "
            "Ctrl-C to stop",
            err=True,
        )
        await stop.wait()
        typer.echo("worker: stopping (running jobs finish first)", err=True)
    typer.echo("worker: stopped", err=True)


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
