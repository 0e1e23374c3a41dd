"""CLI commands on stored positions: ``lienwatch positions purge`` and ``partition``."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Annotated

import typer

from lienwatch import clock
from lienwatch.commands.common import emit
from lienwatch.commands.options import At, Json
from lienwatch.config import load_settings
from lienwatch.services.positions import (
    PARTITION_BATCH,
    PURGE_BATCH,
    drop_partition_before,
    finish_partitioning,
    partition_batch,
    partitioning,
    purge_positions_batch,
    record_purge,
)
from lienwatch.store.db import transaction
from lienwatch.store.migrate import open_store


def register(app: typer.Typer) -> None:
    """Add the ``positions`` sub-app (``positions purge``, ``partition``) to the root ``app``."""
    positions = typer.Typer(help="Stored GPS positions.", no_args_is_help=True)
    positions.command("purge")(purge_command)
    positions.command("partition")(partition_command)
    app.add_typer(positions, name="positions")


def parse_age(text: str) -> timedelta:
    """An age in whole days, ``180d``."""
    match = re.fullmatch(r"\s*(\d{1,5})d\s*", text)
    if match is None or int(match[1]) == 0:
        raise typer.BadParameter(f"{text!r} is not an age in days such as 180d")
    return timedelta(days=int(match[1]))


def purge_command(
    older_than: Annotated[
        timedelta,
        typer.Option(
            "--older-than",
            parser=parse_age,
            metavar="AGE",
            help="Delete positions fixed longer ago than this, e.g. 180d.",
        ),
    ],
    at: At = None,
    by: Annotated[
        str | None, typer.Option("--by", metavar="USER", help="Who purges (a user).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Delete the positions fixed before now (or --at) minus --older-than and record the
    purge in the ledger. On PostgreSQL the months wholly before the cut are month partitions
    dropped whole, one short transaction each; what is left (the cut's month, and every
    position on SQLite) goes in batches of 10,000, one short transaction each. Running it
    again deletes what has aged past the cut since."""
    now = at or clock.now()
    before = now - older_than
    settings = load_settings()
    deleted, dropped = 0, []
    with open_store(settings.database_url) as database:
        while True:
            with transaction(database.factory) as session:
                partition = drop_partition_before(session, before=before)
            if partition is None:
                break
            dropped.append(partition[0])
            deleted += partition[1]
        while True:
            with transaction(database.factory) as session:
                batch = purge_positions_batch(session, before=before)
                deleted += batch
                if batch < PURGE_BATCH:
                    record_purge(session, before=before, deleted=deleted, at=now, by=by,
                                 partitions=dropped)  # fmt: skip
                    break
    data = {"before": before.isoformat(), "deleted": deleted, "partitions_dropped": dropped}
    dropped_text = f" ({len(dropped)} month partitions dropped whole)" if dropped else ""
    emit(data, as_json, f"deleted {deleted} positions fixed before {before.isoformat()}"
         f"{dropped_text}")  # fmt: skip


def partition_command(
    batch: Annotated[
        int, typer.Option("--batch", min=1, help="Positions copied per transaction.")
    ] = PARTITION_BATCH,
    restart: Annotated[
        bool, typer.Option("--restart", help="Drop a conversion under way and start again.")
    ] = False,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Convert an unpartitioned positions table (PostgreSQL; one migration 0029 left for
    being large) into month partitions while the writers go on writing: a partitioned copy
    is built beside it, a trigger mirrors every change into it, the older rows are copied
    in batches (one short transaction each; stopped, it goes on from where it was at the
    next run), and a last transaction swaps the tables under a lock held for two counts."""
    settings = load_settings()
    started = time.monotonic()
    with open_store(settings.database_url) as database:
        with transaction(database.factory) as session:
            state = partitioning(session, at=at or clock.now(), restart=restart)
        batches = 0
        while not state.copied:
            with transaction(database.factory) as session:
                state = partition_batch(session, rows=batch)
            batches += 1
        swap = time.monotonic()
        with transaction(database.factory) as session:
            rows = finish_partitioning(session)
    data = {"rows": rows, "batches": batches, "seconds": round(time.monotonic() - started, 1),
            "swap_seconds": round(time.monotonic() - swap, 2)}  # fmt: skip
    emit(data, as_json, f"positions: {rows} rows now in month partitions ({batches} batches "
         f"copied, {data['seconds']} s; the swap took {data['swap_seconds']} s)")  # fmt: skip
