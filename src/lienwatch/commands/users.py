"""``lienwatch user``: the people who work the queues (agents, supervisors, ...)."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer

from lienwatch import clock
from lienwatch.commands.common import emit, store_session
from lienwatch.commands.options import At, Json
from lienwatch.errors import LienwatchError
from lienwatch.followup.model import Role, Skill
from lienwatch.services.auth import AuthService
from lienwatch.services.users import (
    ROSTER_KEYS,
    change_user_role,
    create_user,
    describe_user,
    list_users,
    set_roster,
    set_user_active,
)

#: Where a change made with the CLI came from, in the audit log.
CLIENT = "cli"
Admin = Annotated[str, typer.Option("--by", metavar="USER", help="The administrator acting.")]


def register(app: typer.Typer) -> None:
    """Add the ``user`` sub-app to the root ``app``."""
    user = typer.Typer(help="Agents, supervisors and the other users.", no_args_is_help=True)
    user.command("add")(add_command)
    user.command("roster")(roster_command)
    user.command("list")(list_command)
    user.command("role")(role_command)
    user.command("disable")(disable_command)
    user.command("enable")(enable_command)
    user.command("passwd")(passwd_command)
    user.command("token")(token_command)
    app.add_typer(user, name="user")


def add_command(
    username: Annotated[str, typer.Argument(help="Sign-in name, e.g. ann.")],
    role: Annotated[Role, typer.Option("--role", help="What the user does.")],
    team: Annotated[str | None, typer.Option("--team", help="Team (agents need one).")] = None,
    name: Annotated[str, typer.Option("--name", help="Display name [default: USERNAME].")] = "",
    skill: Annotated[Skill, typer.Option("--skill", help="An agent's tasks.")] = Skill.PHONE,
    regions: Annotated[
        str, typer.Option("--regions", help="Province codes served, e.g. 31,32 [default: all].")
    ] = "",
    capacity: Annotated[int, typer.Option("--capacity", help="Tasks a day.")] = 60,
    by: Admin = "admin",
    at: At = None,
    as_json: Json = False,
) -> None:
    """Add a user: an agent of a team with a skill (phone, field, recovery), regions and a
    daily capacity, or a supervisor, analyst, auditor, administrator (in the audit log)."""
    served = [code.strip() for code in regions.split(",") if code.strip()]
    with store_session() as (settings, session):
        user = create_user(session, settings.auth, username=username, role=role, team=team,
                           display_name=name, by=by, at=at or clock.now(), client=CLIENT,
                           skill=skill, regions=served, daily_capacity=capacity)  # fmt: skip
        row = describe_user(user)
    emit([row], as_json, f"added {_line(row)}")


def roster_command(
    username: Annotated[str, typer.Argument(help="The agent.")],
    skills: Annotated[
        str | None,
        typer.Option("--skills", help="The agent's skills, the main one first, e.g. phone,field."),
    ] = None,
    capacity: Annotated[int | None, typer.Option("--capacity", help="Tasks a day.")] = None,
    per_hour: Annotated[
        list[str] | None,
        typer.Option("--per-hour", metavar="CHANNEL=N",
                     help="The agent's own tasks an hour of a channel (a visit's on site), "
                          "e.g. call=10; repeat; '' clears them."),
    ] = None,
    hours: Annotated[
        str | None, typer.Option("--hours", help="Working hours, e.g. 09:00-17:00 ('' clears).")
    ] = None,
    time_zone: Annotated[
        str | None, typer.Option("--time-zone", help="The agent's own zone, e.g. Asia/Urumqi.")
    ] = None,
    weekdays: Annotated[
        str | None, typer.Option("--weekdays", help="Days worked, 0 = Monday, e.g. 0,1,2,3,4.")
    ] = None,
    leave: Annotated[
        list[str] | None, typer.Option("--leave", help="A day off (ISO date); repeat.")
    ] = None,
    as_json: Json = False,
) -> None:
    """An agent's roster entry, which the capacity forecast and plan read: their skills, tasks
    a day and own tasks an hour by channel, working hours in their own time zone, the days of
    the week worked, days of leave (options left out stay as they are; the capacity rules'
    figures where none is set)."""
    try:
        days = None if weekdays is None else [int(d) for d in weekdays.split(",") if d.strip()]
    except ValueError:
        raise LienwatchError(f"--weekdays: {weekdays!r} is not like 0,1,2,3,4") from None
    held = None if skills is None else [s.strip() for s in skills.split(",") if s.strip()]
    with store_session() as (_settings, session):
        user = set_roster(session, username=username, skills=held, capacity=capacity,
                          per_hour=_rates(per_hour), hours=hours, time_zone=time_zone,
                          weekdays=days, leave=leave)  # fmt: skip
        row = describe_user(user)
    emit(row, as_json, f"{username}: {_roster_line(row)}")


def _rates(given: list[str] | None) -> dict[str, float] | None:
    """``--per-hour call=10 --per-hour visit=1.5`` as ``{"call": 10.0, "visit": 1.5}``
    (None: left as they are; ``''``: cleared)."""
    if given is None:
        return None
    rates = {}
    for item in (g for g in given if g.strip()):
        channel, _, rate = item.partition("=")
        try:
            rates[channel.strip()] = float(rate)
        except ValueError:
            raise LienwatchError(f"--per-hour: {item!r} is not like call=10") from None
    return dict(sorted(rates.items()))


def _roster_line(row: dict[str, Any]) -> str:
    """An agent's skills, tasks a day and roster keys, as one line."""
    entry = [f"skills {','.join(row['skills'])}", f"capacity {row['capacity']}/day"]
    for key in ROSTER_KEYS:
        if key == "per_hour" and key in row:
            entry.append("per hour " + ", ".join(f"{c} {n:g}" for c, n in row[key].items()))
        elif key in row:
            entry.append(f"{key} {row[key]}")
    if not any(key in row for key in ("hours", "weekdays")):
        entry.append("the capacity rules' working day")
    return ", ".join(entry)


def list_command(as_json: Json = False) -> None:
    """Every user, by username."""
    with store_session(write=False) as (_settings, session):
        rows = list_users(session)
    emit(rows, as_json, [_line(row) for row in rows] or ["no users"])


def role_command(
    username: Annotated[str, typer.Argument()],
    role: Annotated[Role, typer.Option("--role", help="The new role.")],
    team: Annotated[str | None, typer.Option("--team", help="Team (agents need one).")] = None,
    by: Admin = "admin",
    at: At = None,
    as_json: Json = False,
) -> None:
    """Give a user another role and team (in the audit log, from and to)."""
    with store_session() as (_settings, session):
        row = describe_user(change_user_role(session, username=username, role=role, team=team,
                                             by=by, at=at or clock.now(),
                                             client=CLIENT))  # fmt: skip
    emit(row, as_json, f"changed {_line(row)}")


def disable_command(
    username: Annotated[str, typer.Argument()], by: Admin = "admin", at: At = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """Disable a user (left, on leave): a disabled agent's queue goes to others at the next
    tick (in the audit log)."""
    _set_active(username, False, by, at)
    emit({"username": username, "active": False}, as_json, f"disabled {username}")


def enable_command(
    username: Annotated[str, typer.Argument()], by: Admin = "admin", at: At = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """Enable a user again (in the audit log)."""
    _set_active(username, True, by, at)
    emit({"username": username, "active": True}, as_json, f"enabled {username}")


def _set_active(username: str, active: bool, by: str, at: datetime | None) -> None:
    with store_session() as (_settings, session):
        set_user_active(session, username=username, active=active, by=by,
                        at=at or clock.now(), client=CLIENT)  # fmt: skip


def passwd_command(
    username: Annotated[str, typer.Argument()],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    by: Annotated[
        str, typer.Option("--by", metavar="USER", help="The administrator setting it.")
    ] = "admin",
    at: At = None,
    as_json: Json = False,
) -> None:
    """Set a user's password (argon2id; at least 10 characters), asked twice at a prompt or
    read from standard input; unlocks the account."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():  # no terminal to ask at (a script, a pipe): say how
        raise LienwatchError("--password-stdin: no terminal to ask the password at; pipe it "
                             "in with --password-stdin")  # fmt: skip
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with store_session() as (settings, session):
        AuthService(session, settings.auth).set_password(
            username=username, password=password, by=by, at=at or clock.now()
        )
    emit({"username": username, "password_set": True}, as_json, f"password set for {username}")


def token_command(
    username: Annotated[str, typer.Argument(help="The user the integration acts as.")],
    name: Annotated[str, typer.Option("--name", help="What the token is for, e.g. crm-sync.")],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="read or write; repeat for both.")
    ] = None,
    days: Annotated[
        int | None,
        typer.Option("--days", min=1, max=3650, help="Lifetime in days [default: 365]."),
    ] = None,
    by: Annotated[
        str, typer.Option("--by", metavar="USER", help="The administrator issuing it.")
    ] = "admin",
    at: At = None,
    as_json: Json = False,
) -> None:
    """Issue an API token for an integration acting as USERNAME, scoped (read, write) and
    stored hashed: it is printed once, here."""
    with store_session() as (settings, session):
        issued = AuthService(session, settings.auth).issue_api_token(
            username=username, name=name, scopes=scope or ["read"], by=by,
            at=at or clock.now(), ttl=timedelta(days=days) if days else None,
        )  # fmt: skip
    row = {"username": username, "name": name, "token": issued.token,
           "scopes": sorted(issued.scopes),
           "expires_at": issued.expires_at.isoformat()}  # fmt: skip
    emit(row, as_json, [f"token for {username} ({', '.join(row['scopes'])}), expires "
                        f"{row['expires_at']}; shown once:", issued.token])  # fmt: skip


def _line(row: dict[str, Any]) -> str:
    """``ann: agent of team east (phone+field, 60 a day, call 10/h, regions 31,32)``."""
    line = f"{row['username']}: {row['role']}"
    if row["team"]:
        line += f" of team {row['team']}"
    if row["role"] == Role.AGENT:
        regions = f", regions {','.join(row['regions'])}" if row["regions"] else ""
        pace = "".join(f", {c} {n:g}/h" for c, n in row.get("per_hour", {}).items())
        line += f" ({'+'.join(row['skills'])}, {row['capacity']} a day{pace}{regions})"
    return line if row["active"] else line + " [disabled]"
