"""``lienwatch team``: the teams agents and supervisors work in (strategies route agent steps
to a team by name; ``lienwatch user add --team`` refuses a team not added here)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from lienwatch.commands.common import emit, store_session
from lienwatch.commands.options import Json
from lienwatch.followup.model import Role, agent_skills
from lienwatch.store.repositories import TeamRepository
from lienwatch.store.tables import Team, User


def register(app: typer.Typer) -> None:
    """Add the ``team`` sub-app to the root ``app``."""
    team = typer.Typer(help="Teams of agents and supervisors.", no_args_is_help=True)
    team.command("add")(add_command)
    team.command("list")(list_command)
    app.add_typer(team, name="team")


def add_command(
    name: Annotated[str, typer.Argument(help="The team's name, e.g. east.")],
    display_name: Annotated[
        str, typer.Option("--name", help="Display name [default: NAME].")
    ] = "",
    as_json: Json = False,
) -> None:
    """Add a team; then `lienwatch user add USERNAME --role agent --team NAME` staffs it."""
    with store_session() as (_settings, session):
        row = _describe(TeamRepository(session).add(name=name, display_name=display_name), [])
    emit(row, as_json, f"added team {_line(row)}")


def list_command(as_json: Json = False) -> None:
    """Every team with its active agents by skill and its supervisors."""
    with store_session(write=False) as (_settings, session):
        rows = [_describe(team, users) for team, users in TeamRepository(session).all()]
    emit(rows, as_json, [_line(row) for row in rows] or ["no teams"])


def _describe(team: Team, users: list[User]) -> dict[str, Any]:
    agents: dict[str, list[str]] = {}
    for user in users:
        if user.role == Role.AGENT and user.active:
            for skill in agent_skills(user.skills or {}):  # an agent of two skills is in both
                agents.setdefault(skill, []).append(user.username)
    return {"team": team.name, "name": team.display_name, "agents": agents,
            "supervisors": [u.username for u in users
                            if u.role == Role.SUPERVISOR and u.active],
            "disabled": [u.username for u in users if not u.active]}  # fmt: skip


def _line(row: dict[str, Any]) -> str:
    """``east (East China): phone ann, bob; field fay; supervisors sam``."""
    title = row["team"] if row["name"] == row["team"] else f"{row['team']} ({row['name']})"
    parts = [f"{skill} {', '.join(names)}" for skill, names in sorted(row["agents"].items())]
    if row["supervisors"]:
        parts.append(f"supervisors {', '.join(row['supervisors'])}")
    if row["disabled"]:
        parts.append(f"disabled {', '.join(row['disabled'])}")
    return f"{title}: {'; '.join(parts) or 'nobody yet'}"
