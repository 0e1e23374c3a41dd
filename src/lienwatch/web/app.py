"""Installing the console on the serve application: its static files, signing in and out,
the language switch, and the pages (``pages.py``)."""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations,
# and the signed-in dependency (``Signed``) is local to the function that adds them.
import json
from collections.abc import Callable
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException

from lienwatch import clock
from lienwatch.api.auth import (
    clear_session_cookie,
    client_address,
    set_session_cookie,
    start_session,
)
from lienwatch.api.errors import error_response
from lienwatch.config import Settings
from lienwatch.errors import LienwatchError, LoginRefused
from lienwatch.services.auth import AuthService
from lienwatch.store.db import transaction
from lienwatch.web import pages
from lienwatch.web.i18n import LANGUAGES
from lienwatch.web.render import render
from lienwatch.web.session import (
    LANGUAGE_COOKIE,
    PageRefused,
    Redirect,
    Viewer,
    form_of,
    language_of,
    viewer_dependency,
    wants_html,
)

#: The shipped static files and their media types (nothing else is served from static/).
STATIC = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "vendor/htmx.min.js": "text/javascript; charset=utf-8",
}


def install_console(app: FastAPI, factory: sessionmaker[Session], settings: Settings) -> None:
    """Add the console's routes to ``app`` (``/`` sends the browser to it)."""
    viewer = viewer_dependency(factory)
    router = APIRouter(include_in_schema=False)
    _sign_in_routes(router, factory, settings, viewer)
    pages.add_pages(router, factory, settings, viewer)
    app.include_router(router)
    app.add_exception_handler(Redirect, _redirect)  # type: ignore[arg-type]
    app.add_exception_handler(PageRefused, _refused)  # type: ignore[arg-type]
    for kind, api_handler in list(app.exception_handlers.items()):
        if kind in (RequestValidationError, HTTPException, ValueError, LienwatchError):
            app.add_exception_handler(kind, _page_for_browsers(api_handler))


def _page_for_browsers(api_handler: Callable[..., Any]) -> Callable[..., Any]:
    """The API's error answer (``lienwatch.api.errors``), as a page for a browser asking for
    the console (a bad case number in the URL, a page that does not exist)."""

    async def handle(request: Request, exc: Exception) -> Response:
        answer = await api_handler(request, exc)
        if not request.url.path.startswith("/console/") or not wants_html(request):
            return answer
        reason = json.loads(answer.body)["error"]["message"]
        return HTMLResponse(render("refused.html", language_of(request), viewer=None,
                                   status=answer.status_code, reason=reason),
                            status_code=answer.status_code)  # fmt: skip

    return handle


async def _redirect(request: Request, exc: Redirect) -> Response:
    if request.headers.get("hx-request"):  # HTMX follows this header, not a 303
        return Response(status_code=200, headers={"HX-Redirect": exc.location})
    return RedirectResponse(exc.location, status_code=303)


async def _refused(request: Request, exc: PageRefused) -> Response:
    if not wants_html(request):  # a script gets the API's one error body
        return error_response(exc.status, exc.reason)
    language = language_of(request)
    return HTMLResponse(render("refused.html", language, viewer=None, status=exc.status,
                               reason=exc.reason), status_code=exc.status)  # fmt: skip


def _safe_next(target: str | None) -> str:
    """Only a path of the console, never another site (an open redirect)."""
    if target and target.startswith("/console/") and not target.startswith("//"):
        return target
    return "/console/"


def _sign_in_routes(router: APIRouter, factory: sessionmaker[Session], settings: Settings,
                    viewer: object) -> None:  # fmt: skip
    Signed = Annotated[Viewer, Depends(viewer)]  # type: ignore[call-overload]

    @router.get("/", response_class=RedirectResponse)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=303)

    @router.get("/console/static/{name:path}")
    def static(name: str) -> Response:
        media = STATIC.get(name)
        if media is None:
            raise PageRefused(404, f"static: no file {name!r}")
        body = files("lienwatch.web").joinpath("static", *name.split("/")).read_bytes()
        return Response(body, media_type=media, headers={"Cache-Control": "max-age=3600"})

    @router.get("/console/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str | None = None) -> HTMLResponse:
        target = _safe_next(next)
        return HTMLResponse(render("login.html", language_of(request), viewer=None,
                                   next=target, next_path=login_location(target),
                                   error=None))  # fmt: skip

    @router.post("/console/login")
    async def login(request: Request) -> Response:
        fields = await form_of(request)
        target = _safe_next(fields.get("next"))
        try:
            issued = start_session(factory, settings.auth,
                                   username=fields.get("username", "").strip(),
                                   password=fields.get("password", ""),
                                   client=client_address(request))  # fmt: skip
        except LoginRefused as exc:
            page = render("login.html", language_of(request), viewer=None, next=target,
                          next_path=login_location(target), error=exc.reason,
                          until=exc.until, zone=settings.time_zone)  # fmt: skip
            return HTMLResponse(page, status_code=401)
        response = RedirectResponse(target, status_code=303)
        set_session_cookie(response, issued, settings.auth)
        return response

    @router.post("/console/logout")
    async def logout(request: Request, who: Signed) -> Response:
        with transaction(factory) as session:
            AuthService(session, settings.auth).revoke(who.token, at=clock.now(),
                                                       client=who.caller.client)
        response = RedirectResponse("/console/login", status_code=303)
        clear_session_cookie(response, settings.auth)
        return response

    @router.post("/console/language")
    async def language(request: Request) -> Response:
        fields = await form_of(request)
        chosen = fields.get("language", "")
        if chosen not in LANGUAGES:
            raise PageRefused(400, f"language: choose one of {', '.join(LANGUAGES)}")
        back = _safe_next(fields.get("next"))
        response = RedirectResponse(back, status_code=303)
        response.set_cookie(LANGUAGE_COOKIE, chosen, max_age=365 * 86400, samesite="lax",
                            path="/")  # fmt: skip
        return response


def login_location(path: str) -> str:
    """The login page that comes back to ``path``."""
    return f"/console/login?next={quote(path)}"
