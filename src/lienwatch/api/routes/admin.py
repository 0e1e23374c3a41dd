"""``/api/v1/users`` (administrators; supervisors read their team), ``/api/v1/configuration``
(administrators) and ``/api/v1/audit`` (auditors)."""

# No `from __future__ import annotations`: FastAPI reads the signatures at run time.
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from lienwatch import clock
from lienwatch.access.policy import Scope
from lienwatch.api.context import (
    ERRORS,
    ApiContext,
    Cursor,
    Limit,
    decode_cursor,
    next_cursor,
)
from lienwatch.errors import LienwatchError
from lienwatch.followup.model import Role, Skill
from lienwatch.services.auth import AuthService
from lienwatch.services.configuration import effective_configuration
from lienwatch.services.users import (
    change_user_role,
    create_user,
    describe_user,
    list_users,
    set_user_active,
)

Username = Annotated[str, Path(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._-]+$")]


class UserOut(BaseModel):
    username: str
    name: str
    role: str
    team: str | None
    skill: str | None
    regions: list[str]
    capacity: int
    active: bool
    # an agent's skills (the first is ``skill``), and roster entry where set
    # (lienwatch user roster)
    skills: list[str] | None = None
    per_hour: dict[str, float] | None = None
    hours: str | None = None
    time_zone: str | None = None
    weekdays: list[int] | None = None
    leave: list[str] | None = None


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._-]+$")
    role: Role
    team: str | None = Field(None, min_length=1, max_length=80)
    name: str = Field("", max_length=200)
    skill: Skill = Skill.PHONE
    regions: list[Annotated[str, Field(pattern=r"^\d{2}$")]] = Field(default_factory=list,
                                                                     max_length=40)
    capacity: int = Field(60, ge=1, le=1000)
    password: str | None = Field(None, min_length=10, max_length=1024)


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class RoleIn(BaseModel):
    """A user's new role and team (an agent needs a team)."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    team: str | None = Field(None, min_length=1, max_length=80)


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    client: str
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None


class TokenOut(BaseModel):
    """An integration's API token as listed (its secret is never stored)."""

    id: int
    username: str
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class TokenPage(BaseModel):
    items: list[TokenOut]
    next_cursor: str | None


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["users"], responses=ERRORS)
    Caller = context.caller

    @api.get("/users", response_model=UserPage)
    def users(caller: Caller, limit: Limit = 100, cursor: Cursor = None) -> UserPage:
        """Every user (administrators), or a supervisor's team, by username, in pages."""
        key = decode_cursor(cursor, 1)
        if key is not None and not isinstance(key[0], str):
            raise LienwatchError("cursor: not a cursor this list handed out")
        team = caller.principal.team if caller.viewer.scope is Scope.TEAM else None
        with context.session(write=False) as session:
            rows = list_users(session, team=team, only_team=caller.viewer.scope is Scope.TEAM,
                              after=key[0] if key else None, limit=limit)  # fmt: skip
        more = next_cursor(rows, limit, lambda r: [r["username"]])
        return UserPage(items=[UserOut(**row) for row in rows], next_cursor=more)

    @api.post("/users", response_model=UserOut, status_code=201)
    def add_user(body: UserIn, caller: Caller) -> UserOut:
        """Add a user, with a password if given."""
        with context.session() as session:
            user = create_user(
                session, context.settings.auth, username=body.username, role=body.role,
                team=body.team, display_name=body.name, password=body.password,
                by=caller.username, at=clock.now(), client=caller.client, skill=body.skill,
                regions=body.regions, daily_capacity=body.capacity,
            )  # fmt: skip
            return UserOut(**describe_user(user))

    @api.post("/users/{username}/role", response_model=UserOut)
    def set_role(username: Username, body: RoleIn, caller: Caller) -> UserOut:
        """Give a user another role and team (not one's own); in the audit log."""
        with context.session() as session:
            return UserOut(**describe_user(change_user_role(
                session, username=username, role=body.role, team=body.team,
                by=caller.username, at=clock.now(), client=caller.client)))  # fmt: skip

    def set_active(username: str, active: bool, caller: Any) -> UserOut:
        with context.session() as session:
            return UserOut(**describe_user(set_user_active(
                session, username=username, active=active, by=caller.username, at=clock.now(),
                client=caller.client)))  # fmt: skip

    @api.post("/users/{username}/disable", response_model=UserOut)
    def disable(username: Username, caller: Caller) -> UserOut:
        """Disable a user (not oneself): their tokens stop working, their queue goes to
        others; in the audit log."""
        return set_active(username, False, caller)

    @api.post("/users/{username}/enable", response_model=UserOut)
    def enable(username: Username, caller: Caller) -> UserOut:
        """Enable a user again; in the audit log."""
        return set_active(username, True, caller)

    def owner(caller: Any) -> str | None:
        """Whose tokens the caller reaches: everybody's (administrators), else their own."""
        return None if caller.viewer.scope is Scope.ALL else caller.username

    @api.get("/tokens", response_model=TokenPage)
    def tokens(caller: Caller, limit: Limit = 100, cursor: Cursor = None) -> TokenPage:
        """API tokens for integrations, newest first: an administrator's view lists
        everybody's, anyone else's their own."""
        after = decode_cursor(cursor, 1)
        with context.session(write=False) as session:
            rows = AuthService(session).api_tokens(username=owner(caller), limit=limit,
                                                   before_id=int(after[0]) if after else None)
        more = next_cursor(rows, limit, lambda r: [r["id"]])
        return TokenPage(items=[TokenOut(**row) for row in rows], next_cursor=more)

    @api.post("/tokens/{token_id}/revoke", response_model=TokenOut)
    def revoke(
        token_id: Annotated[int, Path(ge=1, le=2**62)], caller: Caller
    ) -> TokenOut:
        """Revoke an API token (an administrator any, anyone else their own), audited; it
        stops working within seconds. Revoking it again changes nothing."""
        with context.session() as session:
            row = AuthService(session).revoke_api_token(
                token_id=token_id, by=caller.username, at=clock.now(), username=owner(caller),
                client=caller.client,
            )  # fmt: skip
        return TokenOut(**row)

    @api.get("/configuration", response_model=dict[str, Any], tags=["configuration"])
    def configuration(caller: Caller) -> dict[str, Any]:
        """The configuration this process runs with (file, environment and defaults), its
        secrets redacted: to change a setting, change the file or the environment and
        restart."""
        return effective_configuration(context.settings)

    @api.get("/audit", response_model=AuditPage, tags=["audit"])
    def audit(
        caller: Caller, limit: Limit = 100, cursor: Cursor = None,
        actor: Annotated[str | None, Query(max_length=80)] = None,
        action: Annotated[str | None, Query(max_length=32)] = None,
        since: datetime | None = None, until: datetime | None = None,
    ) -> AuditPage:  # fmt: skip
        """The audit log, newest first: logins, failed logins, views of unmasked personal
        data (who, what, when, from where)."""
        after = decode_cursor(cursor, 1)
        with context.session(write=False) as session:
            rows = AuthService(session).audit_entries(
                before_id=int(after[0]) if after else None, limit=limit, actor=actor,
                action=action, since=since, until=until,
            )  # fmt: skip
        more = next_cursor(rows, limit, lambda r: [r["id"]])
        return AuditPage(items=[AuditEntryOut(**row) for row in rows], next_cursor=more)

    return api
