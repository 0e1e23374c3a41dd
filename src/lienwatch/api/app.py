"""The REST API under ``/api/v1`` (docs/api.md), added to the application ``lienwatch serve``
runs beside ingest and health."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from lienwatch.api.context import ApiContext
from lienwatch.api.docs import docs_router
from lienwatch.api.routes import (
    admin,
    alerts,
    applications,
    auth,
    book,
    cases,
    ledger,
    models,
    operations,
    reports,
    supervision,
)
from lienwatch.config import Settings

OPENAPI_URL = "/api/v1/openapi.json"

#: The routers of the API, each built on the shared context.
AREAS = (auth, admin, cases, book, alerts, operations, supervision, ledger, applications,
         reports, models)


def install_api(app: FastAPI, factory: sessionmaker[Session], settings: Settings) -> ApiContext:
    """Add the API's routes and its documentation page to ``app`` (made by
    ``runtime.api_app``, whose OpenAPI schema is at :data:`OPENAPI_URL`)."""
    context = ApiContext(factory, settings)
    for area in AREAS:
        app.include_router(area.router(context))
    app.include_router(docs_router(OPENAPI_URL, app.title))
    return context
