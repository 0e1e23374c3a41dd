"""The users as people read them (the CLI's ``user list``, the API's ``/users`` and the
console's user admin), and an administrator's additions and changes of role and team."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import false, select
from sqlalchemy.orm import Session

from lienwatch.config import AuthSettings
from lienwatch.domain.schedule import parse_enum
from lienwatch.errors import LienwatchError
from lienwatch.followup.model import Role, agent_skills, checked_daily_capacity
from lienwatch.services.auth import AuditAction, AuthService
from lienwatch.store.repositories import AuditRepository, TeamRepository, UserRepository
from lienwatch.store.tables import Team, User
from lienwatch.workforce.roster import roster_entry
from lienwatch.workforce.rules import capacity_rules


def describe_user(user: User) -> dict[str, Any]:
    """A user without their secrets: name, role, team, skill (the first of an agent's
    ``skills``), regions, capacity (tasks a day), active, and the roster keys set
    (``hours``, ``time_zone``, ``weekdays``, ``leave``, ``per_hour``)."""
    skills = user.skills or {}
    agent = {"skills": list(agent_skills(skills))} if user.role == Role.AGENT else {}
    return {"username": user.username, "name": user.display_name, "role": user.role,
            "team": user.team, "skill": skills.get("mode"), **agent,
            "regions": skills.get("regions", []), "capacity": user.daily_capacity,
            "active": user.active,
            **{key: skills[key] for key in ROSTER_KEYS if key in skills}}  # fmt: skip


ROSTER_KEYS = ("hours", "time_zone", "weekdays", "leave", "per_hour")


def set_roster(
    session: Session, *, username: str, skills: list[str] | None = None,
    capacity: int | None = None, **entry: Any,
) -> User:  # fmt: skip
    """An agent's roster entry: their ``skills`` (phone, field, recovery: the first is their
    main one), ``capacity`` (tasks a day), working ``hours`` (``"09:00-17:00"``) in their own
    ``time_zone``, ``weekdays`` (0 = Monday), days of ``leave`` (ISO dates) and ``per_hour``
    (their own tasks an hour by channel, ``{"call": 10}``); a key given as None is left as
    it is, an empty value clears it (the capacity rules' figure then). The entry is checked
    as the capacity forecast reads it (FollowupError naming the key)."""
    unknown = set(entry) - set(ROSTER_KEYS)
    if unknown:
        raise LienwatchError(f"{sorted(unknown)[0]}: not a roster key ({', '.join(ROSTER_KEYS)})")
    user = UserRepository(session).get(username)
    if user.role != Role.AGENT:
        raise LienwatchError(f"username: {username} is not an agent")
    work = dict(user.skills or {})
    for key, value in entry.items():
        if value is None:
            continue
        if value in ("", [], {}):
            work.pop(key, None)
        else:
            work[key] = value
    if skills:  # the first stays ``mode``: what a reader of one skill sees
        work["mode"], work["modes"] = skills[0], list(dict.fromkeys(skills))
    if capacity is not None:
        user.daily_capacity = checked_daily_capacity(capacity)
    roster_entry(work, capacity_rules(), None, source=f"user {username}")
    user.skills = work
    session.flush()
    return user


def create_user(
    session: Session, auth: AuthSettings, *, username: str, role: Role | str,
    team: str | None, display_name: str = "", password: str | None = None, by: str,
    at: datetime, client: str = "", **work: Any,
) -> User:
    """An administrator adds a user (``work``: an agent's skill, regions and daily capacity,
    as :meth:`UserRepository.add` takes them), with a first password if given (the password
    rules of :mod:`lienwatch.access.credentials`); both written to the audit log."""
    user = UserRepository(session).add(
        username=username, role=role, team=team, display_name=display_name, **work
    )
    _audit(session, AuditAction.USER_ADDED, user, by=by, at=at, client=client,
           details={"role": user.role, "team": user.team})  # fmt: skip
    if password is not None:
        AuthService(session, auth).set_password(username=username, password=password, by=by,
                                                at=at)  # fmt: skip
    return user


def list_users(
    session: Session, *, team: str | None = None, only_team: bool = False,
    after: str | None = None, limit: int | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Every user by username (``limit`` of them after username ``after``, a page); with
    ``only_team``, those of ``team`` alone (none without a team)."""
    query = select(User).order_by(User.username)
    if only_team:
        query = query.where(User.team == team) if team is not None else query.where(false())
    if after is not None:
        query = query.where(User.username > after)
    if limit is not None:
        query = query.limit(limit)
    return [describe_user(user) for user in session.scalars(query)]


def team_names(session: Session) -> list[str]:
    """The teams' names, in order (what a user's team may be)."""
    return list(session.scalars(select(Team.name).order_by(Team.name)))


def change_user_role(
    session: Session, *, username: str, role: Role | str, team: str | None, by: str,
    at: datetime, client: str = "",
) -> User:
    """Give ``username`` another role and team (administrators; ``by`` may not change their
    own, so the last administrator cannot lock everyone out by mistake). An agent needs a
    team; the team must exist. Their sessions carry the new role within seconds (the API trusts a
    checked token for a few seconds). Written to the audit log: who, from what to what,
    when, from where."""
    if username == by:
        raise LienwatchError(f"username: {by} may not change their own role")
    role = parse_enum(Role, role, "role")
    team = (team or "").strip() or None
    if role is Role.AGENT and team is None:
        raise LienwatchError("team: an agent works in a team")
    if team is not None:
        TeamRepository(session).get(team)
    user = UserRepository(session).get(username)
    before = {"role": user.role, "team": user.team}
    user.role, user.team = role.value, team
    session.flush()
    _audit(session, AuditAction.ROLE_CHANGED, user, by=by, at=at, client=client,
           details={"from": before, "to": {"role": user.role, "team": user.team}})  # fmt: skip
    return user


def set_user_active(
    session: Session, *, username: str, active: bool, by: str, at: datetime, client: str = ""
) -> User:
    """Disable a user (left, on leave: their tokens stop working, a disabled agent's queue
    goes to others at the next tick) or enable them again; ``by`` may not disable
    themselves. Written to the audit log: who, whom, when, from where."""
    if username == by and not active:
        raise LienwatchError(f"username: {by} may not disable themselves")
    user = UserRepository(session).set_active(username, active)
    action = AuditAction.USER_ENABLED if active else AuditAction.USER_DISABLED
    _audit(session, action, user, by=by, at=at, client=client, details={"active": active})
    return user


def _audit(
    session: Session, action: AuditAction, user: User, *, by: str, at: datetime, client: str,
    details: dict[str, Any],
) -> None:  # fmt: skip
    AuditRepository(session).add(at=at, actor=by, action=action.value, subject=user.username,
                                 client=client, details=details)  # fmt: skip
