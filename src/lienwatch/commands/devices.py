"""CLI commands on registered devices: ``lienwatch device reset-auth``, ``set-partner``,
``set-fitted``."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session

from lienwatch import clock
from lienwatch.commands.common import store_session
from lienwatch.commands.options import By, Json, parse_day
from lienwatch.config import load_settings
from lienwatch.store.migrate import open_store
from lienwatch.store.repositories import DeviceRepository
from lienwatch.store.telematics import StoreDeviceDirectory, set_fitted_on
from lienwatch.telematics.registry import DeviceRegistry

#: Operators' changes to device credentials, one line each (who, what, when).
audit = logging.getLogger("lienwatch.audit")


def register(app: typer.Typer) -> None:
    """Add the ``device`` sub-app (``reset-auth``, ``set-partner``, ``set-fitted``) to the
    root ``app``."""
    device = typer.Typer(help="Registered devices.", no_args_is_help=True)
    device.command("reset-auth")(reset_auth_command)
    device.command("set-partner")(set_partner_command)
    device.command("set-fitted")(set_fitted_command)
    app.add_typer(device, name="device")


def reset_auth_command(
    ident: Annotated[str, typer.Argument(help="The JT/T 808 terminal phone number.")],
    by: By,
    as_json: Json = False,
) -> None:
    """Let a JT/T 808 terminal register again (replaced or factory-reset): its auth code is
    forgotten, so its next 0x0100 registration gets a new one. Until then nobody can
    register as it. The reset is written to the audit log."""
    settings = load_settings()
    with open_store(settings.database_url) as database:
        registry = DeviceRegistry(
            StoreDeviceDirectory(database.factory),
            unknown_devices=settings.gateway.unknown_devices,
        )
        record = registry.reset_auth(ident)
    if record is None:
        raise typer.BadParameter(
            f"no JT/T 808 terminal {ident!r} is registered", param_hint="IDENT"
        )
    _audited("reset-auth", ident, by, {}, as_json,
             f"{ident}: registration reset; the terminal may register again")  # fmt: skip


def set_partner_command(
    ident: Annotated[str, typer.Argument(help="The device's IMEI or phone number.")],
    by: By,
    partner: Annotated[
        str | None, typer.Argument(help="The partner ([gateway.partners]); omit for any.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Tie a device to the one HTTP ingest partner that may post its positions (others get
    403), or, without PARTNER, let any partner post. Written to the audit log."""
    settings = load_settings()
    if partner is not None and partner not in settings.gateway.partners:
        raise typer.BadParameter(
            f"no partner {partner!r} in [gateway.partners]", param_hint="PARTNER"
        )
    _change_device(ident, lambda session: DeviceRepository(session).set_partner(ident, partner))
    _audited("set-partner", ident, by, {"partner": partner}, as_json,
             f"{ident}: posted by {partner or 'any partner'}")  # fmt: skip


def set_fitted_command(
    ident: Annotated[str, typer.Argument(help="The device's IMEI or phone number.")],
    by: By,
    day: Annotated[
        date | None,
        typer.Argument(parser=parse_day, metavar="DAY",
                       help="The day it was fitted, YYYY-MM-DD; omit: unknown."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Record the day a tracker was fitted to its vehicle: the gateway and HTTP ingest then
    refuse its fixes dated before that day (counted as ``before_fitting``). Without DAY the
    day is forgotten and nothing is refused. Written to the audit log."""
    _change_device(ident, lambda session: set_fitted_on(session, ident, day))
    shown = None if day is None else day.isoformat()
    _audited("set-fitted", ident, by, {"fitted_on": shown}, as_json,
             f"{ident}: fitted on {shown or 'an unknown day'}")  # fmt: skip


def _change_device(ident: str, change: Callable[[Session], object]) -> None:
    """Run ``change`` in one transaction; it returns None when there is no device ``ident``,
    which is then a usage error."""
    with store_session() as (_settings, session):
        found = change(session) is not None
    if not found:
        raise typer.BadParameter(f"no device {ident!r}", param_hint="IDENT")


def _audited(
    action: str, ident: str, by: str, change: dict[str, Any], as_json: bool, message: str
) -> None:
    """Write the change to the audit log, then print it (``message``, or JSON)."""
    at = clock.now().isoformat(timespec="seconds")
    audit.warning("device %s: %s by %s at %s %s", action, ident, by, at, change or "")
    typer.echo(json.dumps({"device": ident, **change, "by": by, "at": at}) if as_json else message)
