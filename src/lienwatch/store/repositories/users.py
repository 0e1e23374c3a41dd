"""Users and teams."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lienwatch.domain.schedule import parse_enum
from lienwatch.errors import ConflictError, LienwatchError, NotFoundError
from lienwatch.followup.model import Role, Skill, checked_daily_capacity
from lienwatch.store.tables import (
    Team,
    User,
)


class UserRepository:
    """The people who work in lienwatch: agents with their skill, team, regions and daily
    capacity (what assignment reads), supervisors, analysts, auditors, administrators."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self, *, username: str, role: Role | str, team: str | None, display_name: str = "",
        skill: Skill | str = Skill.PHONE, regions: Sequence[str] = (), daily_capacity: int = 60,
    ) -> User:  # fmt: skip
        """A new user; refused (naming the option) for a taken name, an unknown role or
        skill, an agent without a team, a capacity out of 1–1000."""
        if not USERNAME.fullmatch(username):
            raise LienwatchError(f"username: {username!r} must be 1-80 letters, digits, . _ -")
        role, skill = parse_enum(Role, role, "--role"), parse_enum(Skill, skill, "--skill")
        if role is Role.AGENT and not team:
            raise LienwatchError("--team: an agent works in a team")
        if team:
            TeamRepository(self.session).get(team)
        checked_daily_capacity(daily_capacity)
        taken = _alike(self.session, User.username, username)
        if username in taken:
            raise ConflictError(f"username: {username!r} is taken")
        if taken:
            raise ConflictError(f"username: {username!r} differs from the user {taken[0]!r} "
                                "only in case")  # fmt: skip
        skills: dict[str, Any] = {"mode": skill.value}
        if regions:
            skills["regions"] = sorted(regions)
        user = User(username=username, display_name=display_name or username, role=role.value,
                    team=team or None, skills=skills, daily_capacity=daily_capacity)  # fmt: skip
        self.session.add(user)
        self.session.flush()
        return user

    def get(self, username: str) -> User:
        user = self.session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFoundError(f"username: no user {username!r}")
        return user

    def all(self) -> list[User]:
        return list(self.session.scalars(select(User).order_by(User.team, User.username)))

    def set_active(self, username: str, active: bool) -> User:
        """Enable or disable a user; a disabled agent's queue is reassigned at the next tick."""
        user = self.get(username)
        user.active = active
        return user


USERNAME = re.compile(r"[A-Za-z0-9._-]{1,80}")


class TeamRepository:
    """The teams users belong to and strategies route agent steps to, by name."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, *, name: str, display_name: str = "") -> Team:
        """A new team; refused (naming the option) for a taken or malformed name."""
        if not USERNAME.fullmatch(name):
            raise LienwatchError(f"name: {name!r} must be 1-80 letters, digits, . _ -")
        taken = _alike(self.session, Team.name, name)
        if name in taken:
            raise ConflictError(f"name: team {name!r} exists")
        if taken:
            raise ConflictError(f"name: {name!r} differs from the team {taken[0]!r} only in case")
        team = Team(name=name, display_name=display_name or name)
        self.session.add(team)
        self.session.flush()
        return team

    def ensure(self, *names: str) -> None:
        """Add the teams of ``names`` not there yet (the demo staffing its desks)."""
        there = set(self.session.scalars(select(Team.name).where(Team.name.in_(names))))
        self.session.add_all(Team(name=n, display_name=n) for n in dict.fromkeys(names)
                             if n not in there)  # fmt: skip
        self.session.flush()

    def get(self, name: str) -> Team:
        team = self.session.scalar(select(Team).where(Team.name == name))
        if team is None:
            raise NotFoundError(
                f"--team: no team {name!r} (`lienwatch team add {name}` creates it)"
            )
        return team

    def all(self) -> list[tuple[Team, list[User]]]:
        """Every team by name, with its users (by username)."""
        members: dict[str, list[User]] = {}
        for user in self.session.scalars(select(User).order_by(User.username)):
            if user.team is not None:
                members.setdefault(user.team, []).append(user)
        teams = self.session.scalars(select(Team).order_by(Team.name))
        return [(team, members.get(team.name, [])) for team in teams]


def _alike(session: Session, column: Any, name: str) -> list[str]:
    """The names in ``column`` equal to ``name`` but for case (``name`` itself included):
    two such names cannot be told apart in a list or on the phone."""
    return sorted(session.scalars(select(column).where(func.lower(column) == name.lower())))
