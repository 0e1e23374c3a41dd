"""The users as people read them (the CLI's ``user list`` and the API's ``/users``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from lienwatch.store.repositories import UserRepository
from lienwatch.store.tables import User


def describe_user(user: User) -> dict[str, Any]:
    """A user without their secrets: name, role, team, skill, regions, capacity, active."""
    skills = user.skills or {}
    return {"username": user.username, "name": user.display_name, "role": user.role,
            "team": user.team, "skill": skills.get("mode"), "regions": skills.get("regions", []),
            "capacity": user.daily_capacity, "active": user.active}  # fmt: skip


def list_users(session: Session, *, team: str | None = None, only_team: bool = False) -> list[
    dict[str, Any]
]:
    """Every user by team and name; with ``only_team``, those of ``team`` alone."""
    users = UserRepository(session).all()
    if only_team:
        users = [user for user in users if team is not None and user.team == team]
    return [describe_user(user) for user in users]
