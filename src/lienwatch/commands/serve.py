"""``lienwatch serve``: the embedded deployment in one process and one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Annotated, Any

import typer

from lienwatch.commands.common import configure_logging
from lienwatch.commands.options import bind_listener, check_free, host_option, port_option
from lienwatch.config import Settings, load_settings
from lienwatch.errors import LienwatchError
from lienwatch.jobs import scheduler_jobs
from lienwatch.scheduling import running_scheduler


def serve(
    host: Annotated[str | None, host_option("gateway.host")] = None,
    jt808_port: Annotated[int | None, port_option("--jt808-port", "JT/T 808", "5015")] = None,
    gt06_port: Annotated[int | None, port_option("--gt06-port", "GT06", "5023")] = None,
    http_port: Annotated[int | None, port_option("--http-port", "HTTP", "5055")] = None,
    gateway: Annotated[
        bool, typer.Option("--gateway/--no-gateway", help="Run the tracker TCP servers.")
    ] = True,
    scheduler: Annotated[
        bool,
        typer.Option("--scheduler/--no-scheduler", help="Run the follow-up and nightly jobs."),
    ] = True,
    monitor: Annotated[
        bool | None,
        typer.Option(
            "--monitor/--no-monitor",
            help="Run the live collateral monitor (default: unless [worker] monitor = true, "
            "when the workers run it over their partitions).",
            show_default=False,
        ),
    ] = None,
    store_writer: Annotated[
        bool,
        typer.Option(
            "--store-writer/--no-store-writer",
            help="With the JetStream bus, also write the stream to the store.",
        ),
    ] = True,
    workers: Annotated[
        int,
        typer.Option(
            "--workers", min=1, max=64,
            help="HTTP processes sharing the HTTP port: this one and N-1 more serving the API, "
            "the console and HTTP ingest (never the gateway, the monitor or the jobs).",
        ),
    ] = 1,
) -> None:
    """Run lienwatch in one process until interrupted (Ctrl-C or SIGTERM): the JT/T 808 and
    GT06 servers, one HTTP server (HTTP ingest and GET /api/v1/health), the live collateral
    monitor on every position received, and the scheduler (the follow-up tick, which turns
    the monitor's alerts into follow-ups, and the nightly servicing run).

    With the JetStream bus ([bus] kind = "jetstream") it also runs the durable store-writer
    consumer unless --no-store-writer (workers or gateways write the stream then).

    With --workers N, N-1 more processes answer HTTP on the same port (the API and the
    console use every core); this process alone runs the gateway, the monitor and the jobs.
    HTTP ingest then needs the JetStream bus (or [gateway] http_ingest = false): the
    in-process bus of one process is not another's.

    The ports in use are printed in one line on stderr. On SIGTERM the HTTP server and the
    gateway stop and running jobs finish before the process exits with status 0; if a bus
    consumer cannot go on, it stops the same way and exits with status 1.
    """
    settings = load_settings()
    configure_logging(settings)
    if workers > 1 and settings.gateway.http_ingest and settings.bus.kind != "jetstream":
        raise typer.BadParameter(
            "HTTP ingest in several processes needs [bus] kind = \"jetstream\" (or set "
            "[gateway] http_ingest = false): each process's in-process bus is its own",
            param_hint="--workers",
        )
    monitor = runs_monitor(settings, monitor)
    ports = {
        name: port
        for name, port in (("jt808", jt808_port), ("gt06", gt06_port))
        if port is not None
    }
    parts = Parts(gateway=gateway, scheduler=scheduler, monitor=monitor, store_writer=store_writer,
                  http_workers=workers - 1)  # fmt: skip
    address = host or settings.gateway.host
    if gateway:  # a busy port stops the command before it opens anything
        check_free(address, jt808_port if jt808_port is not None
                   else settings.gateway.jt808_port, "--jt808-port")
        check_free(address, gt06_port if gt06_port is not None
                   else settings.gateway.gt06_port, "--gt06-port")  # fmt: skip
    listener = bind_listener(
        address, settings.gateway.http_port if http_port is None else http_port, "--http-port"
    )
    with listener:
        asyncio.run(_serve(settings, address, ports, listener, parts))


def runs_monitor(settings: Settings, asked: bool | None) -> bool:
    """Whether this ``serve`` runs the live monitor: as ``asked`` (``--monitor`` or
    ``--no-monitor``), else unless the workers run it (``[worker] monitor = true``).

    Raises:
        typer.BadParameter: ``--monitor`` while the workers run the monitor: two monitors
            over one fleet would each raise every alert.
    """
    if asked and settings.worker.monitor:
        raise typer.BadParameter(
            "[worker] monitor = true: the workers run the live monitor over their partitions, "
            "a second one here would raise every alert twice; drop --monitor (serve then runs "
            "without one) or set [worker] monitor = false",
            param_hint="--monitor",
        )
    return not settings.worker.monitor if asked is None else asked


@dataclass(frozen=True, slots=True)
class Parts:
    """Which parts of the embedded deployment this process runs."""

    gateway: bool = True
    scheduler: bool = True
    monitor: bool = True
    store_writer: bool = True
    http_workers: int = 0  # more processes answering on the HTTP port


@contextlib.contextmanager
def http_workers(count: int, listener: socket.socket, host: str) -> Iterator[list[BaseProcess]]:
    """``count`` processes serving HTTP on ``listener`` until exit (then stopped by SIGTERM,
    each finishing its requests); call it in a thread: it returns once each answers (one
    that fails to start is an error). Spawned, not forked: nothing of this process's event
    loop, threads or database connections is inherited."""
    context = multiprocessing.get_context("spawn")
    ready = [context.Event() for _ in range(count)]
    processes = [
        context.Process(target=_http_worker, args=(listener, host, answering),
                        name=f"lienwatch-http-{i}")
        for i, answering in enumerate(ready, start=1)
    ]  # fmt: skip
    for process in processes:
        process.start()
    try:
        for process, answering in zip(processes, ready, strict=True):
            while not answering.wait(0.2):
                if not process.is_alive():
                    raise LienwatchError(f"--workers: {process.name} stopped at start "
                                         f"(status {process.exitcode})")  # fmt: skip
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


def _http_worker(listener: socket.socket, host: str, ready: Any) -> None:
    """One more HTTP process of ``serve --workers``: the API, the console, HTTP ingest and
    its own health on the shared socket (``ready`` set once it answers), until SIGTERM or
    SIGINT."""
    settings = load_settings()
    configure_logging(settings)
    asyncio.run(_serve_http(settings, host, listener, ready))


async def _serve_http(settings: Settings, host: str, listener: socket.socket, ready: Any) -> None:
    from lienwatch.runtime import (
        open_ingest,
        serve_app,
        serving_http,
        stop_on_signals,
        until_stopped,
    )

    stop = stop_on_signals()
    async with open_ingest(settings.database_url, settings.gateway, settings.bus,
                           store_writer=False) as ingest:  # fmt: skip
        app = serve_app(ingest, settings, gateway=None, scheduler=None)
        async with serving_http(app, host, 0, settings.gateway, bound=listener):
            ready.set()
            await until_stopped(stop, ingest.bus)


async def _serve(
    settings: Settings, host: str, ports: dict[str, int], listener: socket.socket, parts: Parts
) -> None:
    """Every port is bound before the scheduler starts its first job: the HTTP port by the
    caller (``listener``), the gateway's here."""
    from lienwatch.runtime import (
        open_ingest,
        running_gateway,
        running_monitor,
        serve_app,
        serving_http,
        stop_on_signals,
        until_stopped,
    )

    stop = stop_on_signals()
    async with contextlib.AsyncExitStack() as stack:  # closed in reverse: HTTP first
        ingest = await stack.enter_async_context(
            open_ingest(
                settings.database_url, settings.gateway, settings.bus,
                store_writer=parts.store_writer,
            )
        )  # fmt: skip
        # The monitor starts before the gateway, so on exit it stops after it (it sees every
        # position made durable) and before the bus closes.
        monitor = (
            await stack.enter_async_context(running_monitor(ingest, settings))
            if parts.monitor
            else None
        )
        gateway = (
            await stack.enter_async_context(
                running_gateway(ingest, settings.gateway, host=host, ports=ports)
            )
            if parts.gateway
            else None
        )
        scheduler = (
            await stack.enter_async_context(
                running_scheduler(scheduler_jobs(ingest.factory, settings))
            )
            if parts.scheduler
            else None
        )
        app = serve_app(ingest, settings, gateway=gateway, scheduler=scheduler, monitor=monitor)
        port = await stack.enter_async_context(
            serving_http(app, host, 0, settings.gateway, bound=listener)
        )
        # started once the schema is checked and this process answers; stopped first on exit
        workers = http_workers(parts.http_workers, listener, host)
        await asyncio.to_thread(stack.enter_context, workers)
        listening = [f"{p} port {gateway.port(p)}" for p in ("jt808", "gt06") if gateway]
        jobs = ", ".join(scheduler.statuses) if scheduler else "none"
        watching = (
            f"monitor on {monitor.status()['vehicles']:,} vehicles" if monitor else "no monitor"
        )
        http = f"http port {port}" + (
            f" ({1 + parts.http_workers} processes)" if parts.http_workers else ""
        )
        typer.echo(
            f"serve: {', '.join([*listening, http])}; bus {settings.bus.kind}; "
            f"{watching}; jobs {jobs}; Ctrl-C to stop",
            err=True,
        )
        gave_up = await until_stopped(stop, ingest.bus)
        why = f"position bus gave up: {gave_up}" if gave_up else "running jobs finish first"
        typer.echo(f"serve: stopping ({why})", err=True)
    typer.echo("serve: stopped", err=True)
    if gave_up:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the root ``lienwatch`` app."""
    app.command("serve")(serve)
