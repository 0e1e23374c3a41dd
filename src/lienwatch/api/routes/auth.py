"""``/api/v1/auth``: log in for a bearer token, log out, who am I."""

# No `from __future__ import annotations`: FastAPI reads the signatures at run time.
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from lienwatch import clock
from lienwatch.api.auth import SESSION_COOKIE, bearer_token, client_address
from lienwatch.api.context import ApiContext
from lienwatch.api.errors import ErrorBody
from lienwatch.services.auth import AuthService


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=1024)


class LoginAnswer(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime


class Me(BaseModel):
    username: str
    role: str
    team: str | None
    scopes: list[str]
    token_kind: str


ERRORS = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody}}


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=ERRORS)
    Caller = context.caller

    def login_now(body: LoginRequest, client: str) -> LoginAnswer:
        with context.session() as session:
            issued = AuthService(session, context.settings.auth).login(
                username=body.username, password=body.password, at=clock.now(), client=client
            )
        return LoginAnswer(access_token=issued.token, expires_at=issued.expires_at)

    @api.post("/login", response_model=LoginAnswer)
    async def login(body: LoginRequest, request: Request) -> LoginAnswer:
        """A bearer token for a username and password (401 for a wrong pair, a locked or
        disabled account; each attempt is in the audit log)."""
        return await run_in_threadpool(login_now, body, client_address(request))

    @api.post("/logout", status_code=204)
    def logout(caller: Caller, request: Request) -> None:
        """End the token (or console session) the request carries."""
        token = bearer_token(request) or request.cookies.get(SESSION_COOKIE) or ""
        with context.session() as session:
            AuthService(session).revoke(token, at=clock.now(), client=caller.client)
        context.tokens.forget(token)

    @api.get("/me", response_model=Me)
    def me(caller: Caller) -> Me:
        """The signed-in user: name, role, team, the token's scopes."""
        who = caller.principal
        return Me(username=who.username, role=who.role.value, team=who.team,
                  scopes=sorted(who.scopes), token_kind=who.token_kind)  # fmt: skip

    return api
