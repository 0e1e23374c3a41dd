"""The options every command shares, typed once (docs/cli.md): ``--json``, ``--at`` (an ISO 8601
time with a UTC offset), ``--as-of`` (a business date), ``--by`` (the acting user), amounts in
yuan, ports and listen addresses.

A bad value is refused at the option, with the same message wherever the option appears;
``lienwatch`` prints it on one line and exits with status 2.
"""

from __future__ import annotations

import errno
import socket
from datetime import UTC, date, datetime
from typing import Annotated

import typer

from lienwatch.domain.money import MoneyError, parse_yuan
from lienwatch.errors import LienwatchError

#: Business dates lienwatch accepts: a loan's whole life, with room (and no overflow when a
#: rule looks a day or a term ahead).
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2199, 12, 31)


def parse_at(text: str) -> datetime:
    """An ISO 8601 time with a UTC offset (``Z`` allowed), in UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time, e.g. 2026-03-01T09:00:00+08:00"
        ) from None
    if moment.tzinfo is None:
        raise typer.BadParameter(
            f"{text!r} has no UTC offset; add one, e.g. {text.strip()}+08:00"
        )
    if not FIRST_DAY <= moment.date() <= LAST_DAY:  # its own date: UTC may overflow
        raise typer.BadParameter(f"{text} is out of range ({FIRST_DAY} to {LAST_DAY})")
    return moment.astimezone(UTC)


def parse_day(text: str) -> date:
    """A business date ``YYYY-MM-DD`` between FIRST_DAY and LAST_DAY."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date YYYY-MM-DD") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise typer.BadParameter(f"{text} is out of range ({FIRST_DAY} to {LAST_DAY})")
    return day


def parse_fen(text: str) -> int:
    """Yuan as typed (``3179.51``) in fen."""
    try:
        return parse_yuan(text)
    except MoneyError as exc:
        raise typer.BadParameter(str(exc).removeprefix("amount: ")) from None


def time_option(option: str, what: str, default: str = "") -> typer.models.OptionInfo:
    """An option taking an ISO 8601 time with a UTC offset (:func:`parse_at`)."""
    shown = f" [default: {default}]" if default else ""
    return typer.Option(option, parser=parse_at, metavar="TIME", help=f"{what}, ISO 8601 with "
                        f"a UTC offset, e.g. 2026-03-01T09:00:00+08:00{shown}.")  # fmt: skip


def day_option(
    option: str, what: str = "Business date", default: str = ""
) -> typer.models.OptionInfo:
    """An option taking a business date (:func:`parse_day`)."""
    shown = f" [default: {default}]" if default else ""
    return typer.Option(option, parser=parse_day, metavar="DATE", help=f"{what} YYYY-MM-DD{shown}.")


def yuan_option(option: str, what: str = "Yuan") -> typer.models.OptionInfo:
    """An option taking an amount in yuan, given in fen (:func:`parse_fen`)."""
    return typer.Option(option, parser=parse_fen, metavar="YUAN", help=f"{what}, e.g. 1500.00.")


Json = Annotated[
    bool, typer.Option("--json", help="Print one JSON document instead of a table.")
]
At = Annotated[datetime | None, time_option("--at", "When", "now")]
Since = Annotated[datetime | None, time_option("--since", "Period start")]
AsOf = Annotated[date | None, day_option("--as-of")]
By = Annotated[str, typer.Option("--by", metavar="USER", help="Username of the acting user.")]


def host_option(setting: str) -> typer.models.OptionInfo:
    """``--host``: the listen address, by default the ``setting`` of the config."""
    return typer.Option("--host", metavar="ADDRESS", help=f"Listen address [default: {setting}].")


def port_option(option: str, what: str, setting: str) -> typer.models.OptionInfo:
    """A port option (0–65535, 0 = any free), by default the ``setting`` of the config."""
    return typer.Option(
        option, min=0, max=65535, metavar="PORT",
        help=f"{what} port, 0 = any free [default: {setting}].",
    )  # fmt: skip


def bind_listener(host: str, port: int, option: str) -> socket.socket:
    """A TCP socket bound on ``host``:``port`` (0 = any free port), not yet listening; a port
    in use or an address that cannot be bound is one line naming ``option``.

    Binding every port of a process before it starts any job means a busy port stops it
    before it has done anything."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise LienwatchError(f"{option}: cannot listen on {host!r}: {exc.strerror}") from None
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise LienwatchError(
                f"{option}: port {port} on {host} is in use by another process; stop it or "
                f"choose another port ({option} 0 picks a free one)"
            ) from None
        raise LienwatchError(f"{option}: cannot listen on {host}:{port}: {exc.strerror}") from None
    return listener


def check_free(host: str, port: int, option: str) -> None:
    """Refuse (one line naming ``option``) a port another process holds."""
    if port:
        bind_listener(host, port, option).close()
