"""CLI commands on registered trackers: ``lienwatch device reset-auth``."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Annotated

import typer

from lienwatch.config import load_settings
from lienwatch.store.db import check_connection, make_engine, session_factory
from lienwatch.store.telematics import StoreDeviceDirectory
from lienwatch.telematics.registry import DeviceRegistry

#: Operators' changes to device credentials, one line each (who, what, when).
audit = logging.getLogger("lienwatch.audit")


def register(app: typer.Typer) -> None:
    """Add the ``device`` sub-app (``device reset-auth``) to the root ``app``."""
    device = typer.Typer(help="Registered trackers.", no_args_is_help=True)
    device.command("reset-auth")(reset_auth_command)
    app.add_typer(device, name="device")


def reset_auth_command(
    ident: Annotated[str, typer.Argument(help="The JT/T 808 terminal phone number.")],
    by: Annotated[str, typer.Option("--by", help="Username of the operator.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Let a JT/T 808 terminal register again (replaced or factory-reset): its auth code is
    forgotten, so its next 0x0100 registration gets a new one. Until then nobody can
    register as it. The reset is written to the audit log."""
    settings = load_settings()
    engine = make_engine(settings.database_url)
    check_connection(engine)
    registry = DeviceRegistry(
        StoreDeviceDirectory(session_factory(engine)),
        unknown_devices=settings.gateway.unknown_devices,
    )
    record = registry.reset_auth(ident)
    engine.dispose()
    if record is None:
        raise typer.BadParameter(
            f"no JT/T 808 terminal {ident!r} is registered", param_hint="IDENT"
        )
    at = datetime.now(UTC).isoformat(timespec="seconds")
    audit.warning("device reset-auth: %s by %s at %s", ident, by, at)
    result = {"device": ident, "reset_by": by, "at": at}
    typer.echo(json.dumps(result) if as_json else f"{ident}: registration reset by {by}; "
               "the terminal may register again")  # fmt: skip
