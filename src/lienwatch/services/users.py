"""The users as people read them (the CLI's ``user list``, the API's ``/users`` and the
console's user admin), and an administrator's additions and changes of role and team."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.config import AuthSettings
from lienwatch.domain.schedule import parse_enum
from lienwatch.errors import LienwatchError
from lienwatch.followup.model import Role
from lienwatch.services.auth import AuthService
from lienwatch.store.repositories import TeamRepository, UserRepository
from lienwatch.store.tables import Team, User


def describe_user(user: User) -> dict[str, Any]:
    """A user without their secrets: name, role, team, skill, regions, capacity, active."""
    skills = user.skills or {}
    return {"username": user.username, "name": user.display_name, "role": user.role,
            "team": user.team, "skill": skills.get("mode"), "regions": skills.get("regions", []),
            "capacity": user.daily_capacity, "active": user.active}  # fmt: skip


def create_user(
    session: Session, auth: AuthSettings, *, username: str, role: Role | str,
    team: str | None, display_name: str = "", password: str | None = None, by: str,
    at: datetime, **work: Any,
) -> User:
    """An administrator adds a user (``work``: an agent's skill, regions and daily capacity,
    as :meth:`UserRepository.add` takes them), with a first password if given (the password
    rules of :mod:`lienwatch.access.credentials`, recorded in the audit log)."""
    user = UserRepository(session).add(
        username=username, role=role, team=team, display_name=display_name, **work
    )
    if password is not None:
        AuthService(session, auth).set_password(username=username, password=password, by=by,
                                                at=at)  # fmt: skip
    return user


def list_users(session: Session, *, team: str | None = None, only_team: bool = False) -> list[
    dict[str, Any]
]:
    """Every user by team and name; with ``only_team``, those of ``team`` alone."""
    users = UserRepository(session).all()
    if only_team:
        users = [user for user in users if team is not None and user.team == team]
    return [describe_user(user) for user in users]


def team_names(session: Session) -> list[str]:
    """The teams' names, in order (what a user's team may be)."""
    return list(session.scalars(select(Team.name).order_by(Team.name)))


def change_user_role(
    session: Session, *, username: str, role: Role | str, team: str | None, by: str
) -> User:
    """Give ``username`` another role and team (administrators; ``by`` may not change their
    own, so the last administrator cannot lock everyone out by mistake). An agent needs a
    team; the team must exist. Their sessions carry the new role within seconds (the API trusts a
    checked token for a few seconds)."""
    if username == by:
        raise LienwatchError(f"username: {by} may not change their own role")
    role = parse_enum(Role, role, "role")
    team = (team or "").strip() or None
    if role is Role.AGENT and team is None:
        raise LienwatchError("team: an agent works in a team")
    if team is not None:
        TeamRepository(session).get(team)
    user = UserRepository(session).get(username)
    user.role, user.team = role.value, team
    session.flush()
    return user
