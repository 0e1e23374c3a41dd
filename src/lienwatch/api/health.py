"""``GET /api/v1/health``: is this process able to do its work?

Anyone gets the liveness answer ``{"status": ...}``: ``unavailable`` with HTTP 503 when the
database does not answer or a part cannot do its work (a load balancer then takes the process
out of rotation, a supervisor restarts it), ``degraded`` with HTTP 200 when a part works but is
behind, else ``ok``. A request carrying the operators' token (``Authorization: Bearer``,
``[gateway] health_token``) also gets the detail, which strangers must not see: ``database``
(``reachable``, ``backend`` and, when unreachable, ``error``), ``clock`` (the process's time and
its ``offset_s`` from the system clock, non-zero only when ``LIENWATCH_CLOCK`` set it),
``problems`` (one line each), then what the process reports about its other parts (the
gateway's ports and counters, the bus and its consumers, the monitor, each scheduler job's
status).
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time.
import asyncio
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from lienwatch import clock
from lienwatch.store.db import DatabaseError, check_connection

#: A database that has not answered within this is reported unreachable.
DATABASE_TIMEOUT_S = 5.0


async def database_problem(engine: Engine) -> str | None:
    """None when ``engine``'s database answers in time, else why it does not (one line)."""
    try:
        await asyncio.wait_for(asyncio.to_thread(check_connection, engine), DATABASE_TIMEOUT_S)
    except DatabaseError as exc:
        return str(exc)
    except TimeoutError:
        return f"no answer within {DATABASE_TIMEOUT_S:g} s"
    return None


@dataclass(frozen=True, slots=True)
class Report:
    """What a process says about its parts besides the database."""

    parts: dict[str, Any]
    failing: list[str] = field(default_factory=list)  # cannot do its work: unavailable
    lagging: list[str] = field(default_factory=list)  # works, but behind: degraded


def health_router(
    engine: Engine, report: Callable[[], Awaitable[Report]], *, detail_token: str | None = None
) -> APIRouter:
    """The health endpoint over ``engine``; ``report()`` adds the process's own parts, shown
    only to requests bearing ``detail_token`` (to nobody when it is None)."""
    router = APIRouter(prefix="/api/v1", tags=["health"])

    def may_see_detail(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else ""
        return bool(detail_token) and hmac.compare_digest(given.encode(), detail_token.encode())

    answer = {"description": "``status`` (and the detail for the operators' token)",
              "content": {"application/json": {"schema": {"type": "object"}}}}
    @router.get("/health", response_model=None, responses={200: answer, 503: answer})
    async def health(request: Request) -> JSONResponse:
        problem = await database_problem(engine)
        parts = await report()
        failing = parts.failing if problem is None else [f"database: {problem}", *parts.failing]
        status = "unavailable" if failing else "degraded" if parts.lagging else "ok"
        body: dict[str, Any] = {"status": status}
        if may_see_detail(request):
            database: dict[str, Any] = {
                "reachable": problem is None, "backend": engine.dialect.name,
            }  # fmt: skip
            if problem is not None:
                database["error"] = problem
            now = {"now": clock.now().isoformat(), "offset_s": clock.offset().total_seconds()}
            body |= {"database": database, "clock": now, "problems": failing + parts.lagging,
                     **parts.parts}  # fmt: skip
        return JSONResponse(body, status_code=503 if failing else 200)

    return router
