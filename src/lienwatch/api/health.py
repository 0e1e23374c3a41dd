"""``GET /api/v1/health``: is this process able to do its work?

Anyone gets the liveness answer ``{"status": "ok" | "unavailable"}``: HTTP 200 when the
database answers, 503 when it does not (a load balancer then takes the process out of
rotation). A request carrying the operators' token (``Authorization: Bearer``, ``[gateway]
health_token``) also gets the detail: ``database`` (``reachable``, ``backend`` and, when
unreachable, ``error``), ``clock`` (the process's time and its ``offset_s`` from the system
clock, non-zero only when ``LIENWATCH_CLOCK`` set it), then what the process reports about its
other parts (the gateway's ports and counters, the bus kind, each scheduler job's status),
which strangers must not see.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time.
import asyncio
import hmac
from collections.abc import Callable
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


def health_router(
    engine: Engine, parts: Callable[[], dict[str, Any]], *, detail_token: str | None = None
) -> APIRouter:
    """The health endpoint over ``engine``; ``parts()`` adds the process's own report, shown
    only to requests bearing ``detail_token`` (to nobody when it is None)."""
    router = APIRouter(prefix="/api/v1", tags=["health"])

    def may_see_detail(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else ""
        return bool(detail_token) and hmac.compare_digest(given.encode(), detail_token.encode())

    @router.get("/health")
    async def health(request: Request) -> JSONResponse:
        problem = await database_problem(engine)
        body: dict[str, Any] = {"status": "ok" if problem is None else "unavailable"}
        if may_see_detail(request):
            database: dict[str, Any] = {
                "reachable": problem is None,
                "backend": engine.dialect.name,
            }
            if problem is not None:
                database["error"] = problem
            now = {"now": clock.now().isoformat(), "offset_s": clock.offset().total_seconds()}
            body = {**body, "database": database, "clock": now, **parts()}
        return JSONResponse(body, status_code=200 if problem is None else 503)

    return router
