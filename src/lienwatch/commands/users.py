"""``lienwatch user``: the people who work the queues (agents, supervisors, ...)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from lienwatch.commands.common import emit, store_session
from lienwatch.commands.options import Json
from lienwatch.followup.model import Role, Skill
from lienwatch.store.repositories import UserRepository
from lienwatch.store.tables import User


def register(app: typer.Typer) -> None:
    """Add the ``user`` sub-app to the root ``app``."""
    user = typer.Typer(help="Agents, supervisors and the other users.", no_args_is_help=True)
    user.command("add")(add_command)
    user.command("list")(list_command)
    user.command("disable")(disable_command)
    user.command("enable")(enable_command)
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
    as_json: Json = False,
) -> None:
    """Add a user: an agent of a team with a skill (phone, field, recovery), regions and a
    daily capacity, or a supervisor, analyst, auditor, administrator."""
    served = [code.strip() for code in regions.split(",") if code.strip()]
    with _users() as users:
        user = users.add(username=username, role=role, team=team, display_name=name,
                         skill=skill, regions=served, daily_capacity=capacity)  # fmt: skip
        row = _describe(user)
    emit([row], as_json, f"added {_line(row)}")


def list_command(as_json: Json = False) -> None:
    """Every user, by team."""
    with _users() as users:
        rows = [_describe(user) for user in users.all()]
    emit(rows, as_json, [_line(row) for row in rows] or ["no users"])


def disable_command(username: Annotated[str, typer.Argument()], as_json: Json = False) -> None:
    """Disable a user (left, on leave): a disabled agent's queue goes to others at the next
    tick."""
    with _users() as users:
        users.set_active(username, False)
    emit({"username": username, "active": False}, as_json, f"disabled {username}")


def enable_command(username: Annotated[str, typer.Argument()], as_json: Json = False) -> None:
    """Enable a user again."""
    with _users() as users:
        users.set_active(username, True)
    emit({"username": username, "active": True}, as_json, f"enabled {username}")


@contextmanager
def _users() -> Iterator[UserRepository]:
    """A UserRepository in one transaction on the configured database."""
    with store_session() as (_settings, session):
        yield UserRepository(session)


def _describe(user: User) -> dict[str, Any]:
    skills = user.skills or {}
    return {"username": user.username, "name": user.display_name, "role": user.role,
            "team": user.team, "skill": skills.get("mode"), "regions": skills.get("regions", []),
            "capacity": user.daily_capacity, "active": user.active}  # fmt: skip


def _line(row: dict[str, Any]) -> str:
    """``ann: agent of team east (phone, 60 a day, regions 31,32)``."""
    line = f"{row['username']}: {row['role']}"
    if row["team"]:
        line += f" of team {row['team']}"
    if row["role"] == Role.AGENT:
        regions = f", regions {','.join(row['regions'])}" if row["regions"] else ""
        line += f" ({row['skill']}, {row['capacity']} a day{regions})"
    return line if row["active"] else line + " [disabled]"
