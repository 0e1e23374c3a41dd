"""The API's documentation page at ``/api/v1/docs``: Swagger UI from the
``swagger-ui-bundle`` package, served by this process (no CDN, nothing from the internet)."""

# No `from __future__ import annotations`: FastAPI reads the signatures at run time.
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path

ASSETS = Path(swagger_ui_path)
#: The files the page loads; nothing else of the bundle is served.
SERVED = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}


def docs_router(openapi_url: str, title: str) -> APIRouter:
    api = APIRouter(prefix="/api/v1/docs", tags=["docs"], include_in_schema=False)

    @api.get("")
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{title} - API",
            swagger_js_url="/api/v1/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/api/v1/docs/assets/swagger-ui.css",
            swagger_favicon_url="/api/v1/docs/assets/favicon-32x32.png",
        )  # fmt: skip

    @api.get("/assets/{name}")
    def asset(name: str) -> FileResponse:
        if name not in SERVED:
            raise HTTPException(404, f"name: no asset {name!r}")
        return FileResponse(ASSETS / name, headers={"Cache-Control": "max-age=86400"})

    return api
