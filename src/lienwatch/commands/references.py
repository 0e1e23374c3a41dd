"""``lienwatch references publish``: risk zones and permitted regions for every monitor."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from lienwatch.commands.common import emit
from lienwatch.commands.options import Json
from lienwatch.config import load_settings
from lienwatch.tabular import require_file


def register(app: typer.Typer) -> None:
    """Add the ``references`` sub-app (``references publish``) to the root ``app``."""
    references = typer.Typer(help="The live monitors' risk zones and permitted regions.",
                             no_args_is_help=True)  # fmt: skip
    references.command("publish")(publish_command)
    app.add_typer(references, name="references")


def publish_command(
    zones: Annotated[Path | None, typer.Option(
        "--zones", help="Risk zones (GeoJSON); default [monitor] zones_file.")] = None,
    regions: Annotated[Path | None, typer.Option(
        "--regions", help="Permitted regions (GeoJSON); default [monitor] regions_file.")] = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """Publish risk zones and permitted regions once, through the JetStream key-value bucket
    `<stream>_REFERENCES`, for every `worker` and `serve` on the bus: each takes a publication
    within seconds and its monitors judge by it from their next fleet reload
    ([monitor] fleet_refresh_s), instead of the files on their own machine. The files are
    checked first: one that does not parse is refused with its name and nothing is published."""
    from lienwatch.runtime import publish_references

    for path, option in ((zones, "--zones"), (regions, "--regions")):
        if path is not None:
            require_file(path, option)
    settings = load_settings()
    zones = zones or settings.monitor.zones_file
    regions = regions or settings.monitor.regions_file
    if zones is None and regions is None:
        raise typer.BadParameter("give --zones or --regions (or set [monitor] zones_file)")
    done = asyncio.run(publish_references(settings, zones, regions))
    emit(done, as_json, f"references: publication {done['publication']} in {done['bucket']}, "
         f"version {done['references']} ({done['risk_zones']} risk zones, {done['regions']} "
         "regions); monitors take it at their next fleet reload")  # fmt: skip
