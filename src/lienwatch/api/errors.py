"""One error body for every refusal of the HTTP API:
``{"error": {"code": "<kind>", "message": "<field>: <what is wrong>", "field": "<field>"}}``.

``message`` is the one line the CLI would print; ``field`` names the input at fault (null
when none is); ``code`` is the kind of refusal, for programs: ``invalid`` (422),
``unauthenticated`` (401), ``forbidden`` (403), ``not_found`` (404), ``conflict`` (409, a
write contradicting what is stored), ``refused`` (409, a rule refused the act and the refusal
was recorded; the body then also carries ``rule`` and ``next_allowed_at``), ``too_large``
(413), ``timeout`` (408), ``unavailable`` (503), ``error`` (anything else).

A validation failure names the first bad field and quotes at most a short excerpt of what was
sent: a bad request is never echoed back (a 50 MB body once came back as a 45 MB 422), and a
value JSON cannot carry (NaN, Infinity) cannot turn a 422 into a 500.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from lienwatch.errors import (
    ConflictError,
    DatabaseBusy,
    Forbidden,
    LienwatchError,
    NotAuthenticated,
    NotFoundError,
    Refused,
)

#: Longest quotation of a client's input in an error body.
EXCERPT_CHARS = 60

_EXCERPT = reprlib.Repr()  # keyword arguments only from Python 3.12
_EXCERPT.maxlevel, _EXCERPT.maxdict, _EXCERPT.maxlist = 2, 3, 3
_EXCERPT.maxstring, _EXCERPT.maxother = EXCERPT_CHARS, 40

#: The code of each status the API answers with.
CODES = {400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
         405: "not_allowed", 408: "timeout", 409: "conflict", 413: "too_large",
         422: "invalid", 503: "unavailable"}  # fmt: skip
#: A message's leading field name: ``positions.0.time: ...``, ``--team: ...``.
_FIELD = re.compile(r"^(-{0,2}[A-Za-z_][\w.\-]*): ")


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    rule: str | None = None
    next_allowed_at: str | None = None


class ErrorBody(BaseModel):
    """The body of every error answer (the OpenAPI schema of 4xx answers)."""

    error: ErrorDetail


def excerpt(value: Any) -> str:
    """A short, JSON-safe quotation of ``value`` (reprlib bounds it before it is built)."""
    text = _EXCERPT.repr(value)
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 3] + "..."


def describe(errors: Sequence[Mapping[str, Any]]) -> str:
    """The first of pydantic's ``errors`` as ``field: message (got excerpt)``, counting the rest."""
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"]
                     if part not in ("body", "query", "path", "header", "cookie"))  # fmt: skip
    got = f" (got {excerpt(first['input'])})" if "input" in first else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{field or 'request'}: {first['msg']}{got}{more}"


def error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None, *,
    code: str | None = None, **extra: str | None,
) -> JSONResponse:  # fmt: skip
    """The project's error body for ``message`` (``field: what is wrong``)."""
    match = _FIELD.match(message)
    body = {"code": code or CODES.get(status, "error"), "message": message,
            "field": match.group(1).lstrip("-") if match else None}  # fmt: skip
    body |= {key: value for key, value in extra.items() if value is not None}
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def status_of(exc: LienwatchError) -> int:
    """The HTTP status of a user error."""
    for kind, status in ((NotAuthenticated, 401), (Forbidden, 403), (NotFoundError, 404),
                         (Refused, 409), (ConflictError, 409), (DatabaseBusy, 503)):  # fmt: skip
        if isinstance(exc, kind):
            return status
    return 422


def install_error_handlers(app: FastAPI) -> None:
    """Every refusal of ``app`` gets the project's error body: validation failures (422),
    HTTP exceptions with their status, and lienwatch's errors by kind."""

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, describe(exc.errors()))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        message = exc.detail if isinstance(exc.detail, str) else excerpt(exc.detail)
        return error_response(exc.status_code, message, exc.headers)

    async def user_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LienwatchError)
        status = status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        code = "refused" if isinstance(exc, Refused) and status == 409 else None
        extra = getattr(exc, "extra", {})
        return error_response(status, str(exc), headers, code=code, **extra)

    async def bad_value(request: Request, exc: Exception) -> JSONResponse:
        # the rules refuse bad input with a ValueError naming the field (FollowupError is one)
        return error_response(422, str(exc).splitlines()[0] if str(exc) else "request: invalid")

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(ValueError, bad_value)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(LienwatchError, user_error)
