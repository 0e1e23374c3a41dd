"""Who is looking at a page: the API's authorizer (the session cookie, the route policy of
``lienwatch.access.policy`` and the CSRF token of every form a signed-in user posts), turned
into the console's answers: a browser without a session goes to the login page, a page the
role may not see is a 403 page. Also the page's language."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

from lienwatch.access.credentials import csrf_token
from lienwatch.access.policy import Scope
from lienwatch.access.principal import Principal
from lienwatch.access.principal import Viewer as Reader
from lienwatch.api.auth import SESSION_COOKIE, Caller, authorizer
from lienwatch.errors import Forbidden, NotAuthenticated
from lienwatch.web.i18n import negotiate

LANGUAGE_COOKIE = "lienwatch_lang"


class Redirect(Exception):
    """Send the browser to ``location`` (303)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class PageRefused(Exception):
    """Answer ``status`` with a page saying ``reason`` (403, 404, 400)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user of a page: the caller the policy made, their session token (for
    the forms' CSRF token), their language and the page they are on (where the language
    switch brings them back)."""

    caller: Caller
    token: str
    language: str
    here: str = "/console/"

    @property
    def reader(self) -> Reader:
        """The viewer the read verbs take (the rows of this route's scope)."""
        return self.caller.viewer

    @property
    def principal(self) -> Principal:
        return self.caller.principal

    @property
    def scope(self) -> Scope:
        return self.caller.viewer.scope

    @property
    def username(self) -> str:
        return self.caller.username

    @property
    def role(self) -> str:
        return self.caller.principal.role.value

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


def language_of(request: Request) -> str:
    """The user's language: their setting (the cookie the language switch sets), else the
    browser's ``Accept-Language``."""
    return negotiate(request.cookies.get(LANGUAGE_COOKIE),
                     request.headers.get("accept-language"))  # fmt: skip


def wants_html(request: Request) -> bool:
    """Whether the client reads pages (a browser, or the console's HTMX, whose requests
    accept anything), not the API's error body (a script)."""
    return bool(request.headers.get("hx-request")) or "text/html" in request.headers.get(
        "accept", "")


def came_from(request: Request) -> str:
    """Where the login page sends the user back: the page asked for, or for a form posted
    (which has no page of its own) the page the form was on."""
    if request.method == "GET":
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    page = urlsplit(request.headers.get("hx-current-url") or request.headers.get("referer")
                    or "")  # fmt: skip
    if page.netloc not in ("", request.url.netloc):
        return "/console/"
    return page.path + (f"?{page.query}" if page.query else "")


def viewer_dependency(
    factory: sessionmaker[Session],
) -> Callable[[Request], Awaitable[Viewer]]:
    """The dependency of every signed-in page: the API's authorizer, whose refusals become
    the console's (a browser without a session goes to the login page)."""
    api_authorize = authorizer(factory)

    async def authorize(request: Request) -> Viewer:
        try:
            caller = await api_authorize(request)
        except NotAuthenticated:
            if not wants_html(request):
                raise
            raise Redirect(f"/console/login?next={quote(came_from(request))}") from None
        except Forbidden as exc:
            if not wants_html(request):
                raise
            raise PageRefused(403, str(exc)) from None
        return Viewer(caller, request.cookies.get(SESSION_COOKIE, ""), language_of(request),
                      came_from(request))  # fmt: skip

    return authorize


async def form_of(request: Request) -> dict[str, str]:
    """The text fields of a posted form (the authorizer has checked its CSRF token)."""
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}
