"""One error body for every refusal of the HTTP API: ``{"detail": "<field>: <what is wrong>"}``.

A validation failure names the first bad field and quotes at most a short excerpt of what was
sent: a bad request is never echoed back (a 50 MB body once came back as a 45 MB 422), and a
value JSON cannot carry (NaN, Infinity) cannot turn a 422 into a 500.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

#: Longest quotation of a client's input in an error body.
EXCERPT_CHARS = 60

_EXCERPT = reprlib.Repr()  # keyword arguments only from Python 3.12
_EXCERPT.maxlevel, _EXCERPT.maxdict, _EXCERPT.maxlist = 2, 3, 3
_EXCERPT.maxstring, _EXCERPT.maxother = EXCERPT_CHARS, 40


def excerpt(value: Any) -> str:
    """A short, JSON-safe quotation of ``value`` (reprlib bounds it before it is built)."""
    text = _EXCERPT.repr(value)
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 3] + "..."


def describe(errors: Sequence[Mapping[str, Any]]) -> str:
    """The first of pydantic's ``errors`` as ``field: message (got excerpt)``, counting the rest."""
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"] if part not in ("body", "query"))
    got = f" (got {excerpt(first['input'])})" if "input" in first else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{field or 'request'}: {first['msg']}{got}{more}"


def error_response(
    status: int, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The project's error body."""
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Every validation failure of ``app`` becomes a 422 with the project's error body."""

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, describe(exc.errors()))

    app.add_exception_handler(RequestValidationError, invalid)
