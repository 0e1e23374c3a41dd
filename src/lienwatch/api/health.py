"""``GET /api/v1/health``: is this process able to do its work?

The answer is JSON: ``status`` (``ok`` or ``unavailable``), ``database`` (``reachable``,
``backend`` and, when unreachable, ``error``), ``clock`` (the process's time and its
``offset_s`` from the system clock, non-zero only when ``LIENWATCH_CLOCK`` set it), then what
the process reports about its other parts (``parts``: the gateway's ports and counters, the
bus kind, each scheduler job's status).
HTTP 200 when the database answers, 503 when it does not (a load balancer then takes the
process out of rotation).
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time.
import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
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


def health_router(engine: Engine, parts: Callable[[], dict[str, Any]]) -> APIRouter:
    """The health endpoint over ``engine``; ``parts()`` adds the process's own report."""
    router = APIRouter(prefix="/api/v1", tags=["health"])

    @router.get("/health")
    async def health() -> JSONResponse:
        problem = await database_problem(engine)
        database: dict[str, Any] = {"reachable": problem is None, "backend": engine.dialect.name}
        if problem is not None:
            database["error"] = problem
        body = {
            "status": "ok" if problem is None else "unavailable",
            "database": database,
            "clock": {"now": clock.now().isoformat(), "offset_s": clock.offset().total_seconds()},
        }
        return JSONResponse({**body, **parts()}, status_code=200 if problem is None else 503)

    return router
