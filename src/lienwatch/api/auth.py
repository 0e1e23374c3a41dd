"""Authentication and the route policy on every request, for the API and the console.

:func:`authorizer` makes the one dependency every user route carries: it finds the caller's
token (``Authorization: Bearer``, else the console's session cookie), checks it, looks the
route up in :data:`lienwatch.access.policy.POLICY` and answers 401 or 403 before the route
runs; the route gets a :class:`Caller` (the user, the rows their role reaches, the client's
address). A request authenticated by the session cookie that changes something must carry the
session's CSRF token, as the ``X-CSRF-Token`` header or a ``csrf_token`` form field.

The console's helpers: :func:`start_session` (a login whose token goes into the cookie),
:func:`set_session_cookie` (HTTP-only, SameSite=Lax, Secure per ``[auth] secure_cookies``),
:func:`clear_session_cookie`, :func:`csrf_for` (the token a page puts in its forms).
"""

# No `from __future__ import annotations`: FastAPI reads the signatures at run time.
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request, Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from lienwatch import clock
from lienwatch.access.credentials import check_csrf, csrf_token, token_digest
from lienwatch.access.policy import POLICY, Access, decide
from lienwatch.access.principal import Principal, Viewer
from lienwatch.config import AuthSettings
from lienwatch.errors import Forbidden, NotAuthenticated
from lienwatch.services.auth import AuthService, Issued, TokenKind
from lienwatch.store.db import transaction

SESSION_COOKIE = "lienwatch_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls a route, on which rows, from where."""

    viewer: Viewer
    client: str

    @property
    def principal(self) -> Principal:
        return self.viewer.principal

    @property
    def username(self) -> str:
        return self.viewer.username


def client_address(request: Request) -> str:
    """The address the request came from (the peer; a proxy's header is not trusted)."""
    return request.client.host if request.client else ""


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def route_template(request: Request) -> str:
    """The path template of the route serving ``request`` (``/api/v1/cases/{case_id}``)."""
    route = request.scope.get("route")
    return getattr(route, "path", request.url.path)


#: How long a checked token is trusted without asking the database again: a revoked token,
#: a disabled user or an expiry takes effect within this (a logout in this process at once).
TRUST_S = 5.0


class TokenCache:
    """Principals of tokens checked in the last :data:`TRUST_S` seconds, by token digest: a
    request then costs no database round trip to authenticate."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Principal, datetime]] = {}

    def get(self, token: str, now: datetime) -> Principal | None:
        entry = self._entries.get(token_digest(token))
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def put(self, token: str, principal: Principal, now: datetime) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[token_digest(token)] = (principal, now + timedelta(seconds=TRUST_S))

    def forget(self, token: str) -> None:
        self._entries.pop(token_digest(token), None)


def authorizer(
    factory: sessionmaker[Session], cache: TokenCache | None = None
) -> Callable[[Request], Awaitable[Caller]]:
    """The dependency that authenticates a request and applies the route policy."""
    cache = cache or TokenCache()

    def principal_of(token: str) -> Principal:
        now = clock.now()  # the caller found no principal in the cache
        with transaction(factory, write=False) as session:
            principal = AuthService(session).authenticate(token, at=now)
        cache.put(token, principal, now)
        return principal

    async def authorize(request: Request) -> Caller:
        method, path = request.method, route_template(request)
        rule = POLICY.get((method, path))
        if rule is None or rule.access is not Access.USER:  # a user route without a rule
            raise Forbidden(f"route: {method} {path} has no rule in the route policy")
        token = bearer_token(request)
        from_cookie = token is None
        if from_cookie:
            token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise NotAuthenticated("token: log in (POST /api/v1/auth/login) and send "
                                   "Authorization: Bearer <token>")  # fmt: skip
        principal = cache.get(token, clock.now()) or await run_in_threadpool(principal_of, token)
        if from_cookie and method not in SAFE_METHODS:
            await _check_csrf(request, token)
        decision = decide(method, path, principal.role, principal.scopes)
        if decision.scope is None:
            raise Forbidden(decision.reason)
        return Caller(Viewer(principal, decision.scope), client_address(request))

    return authorize


async def _check_csrf(request: Request, session_token: str) -> None:
    given = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if given is None and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not check_csrf(session_token, given):
        raise Forbidden(f"{CSRF_FIELD}: missing or wrong CSRF token for this session")


def start_session(
    factory: sessionmaker[Session], settings: AuthSettings, *, username: str, password: str,
    client: str,
) -> Issued:  # fmt: skip
    """Log ``username`` in to the console: a session token for :func:`set_session_cookie`
    (a failed login is committed and raises ``LoginRefused``)."""
    with transaction(factory) as session:
        return AuthService(session, settings).login(
            username=username, password=password, at=clock.now(), client=client,
            kind=TokenKind.SESSION,
        )  # fmt: skip


def set_session_cookie(response: Response, issued: Issued, settings: AuthSettings) -> None:
    """Put the session token in an HTTP-only, SameSite=Lax cookie expiring with it. The
    lifetime is sent as Max-Age, not as a date: a process whose clock is set elsewhere
    (LIENWATCH_CLOCK) would otherwise hand out cookies the browser finds expired."""
    lifetime = int((issued.expires_at - clock.now()).total_seconds())
    response.set_cookie(
        SESSION_COOKIE, issued.token, max_age=lifetime, path="/",
        httponly=True, samesite="lax", secure=settings.secure_cookies,
    )  # fmt: skip


def clear_session_cookie(response: Response, settings: AuthSettings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=settings.secure_cookies)  # fmt: skip


def csrf_for(request: Request) -> str:
    """The CSRF token a console page puts in its forms (empty without a session)."""
    token = request.cookies.get(SESSION_COOKIE)
    return csrf_token(token) if token else ""
