"""``/api/v1/reports``: the daily risk warning reports written below ``[report] out`` (by
``lienwatch report`` and the scheduler's ``report`` job), listed by business day and opened
as HTML or as their figures (auditors, supervisors, analysts)."""

# No `from __future__ import annotations`: FastAPI reads the signatures at run time.
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from lienwatch.api.context import (
    ERRORS,
    ApiContext,
    Cursor,
    Limit,
    day_cursor,
    next_cursor,
)
from lienwatch.reports.archive import list_reports, report_figures, report_html


class ReportOut(BaseModel):
    """A report written for a business day: its figures.json, report.pdf and CSV tables."""

    day: date
    figures: bool
    pdf: bool
    tables: list[str]
    written_at: datetime


class ReportPage(BaseModel):
    items: list[ReportOut]
    next_cursor: str | None


def router(context: ApiContext) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["reports"], responses=ERRORS)
    Caller = context.caller
    out = context.settings.report.out

    @api.get("/reports", response_model=ReportPage)
    def reports(caller: Caller, limit: Limit = 100, cursor: Cursor = None) -> ReportPage:
        """The daily risk warning reports written, newest business day first, by pages."""
        rows = list_reports(out, before=day_cursor(cursor), limit=limit)
        more = next_cursor(rows, limit, lambda r: [r["day"].isoformat()])
        return ReportPage(items=[ReportOut(**row) for row in rows], next_cursor=more)

    @api.get("/reports/{day}", response_model=dict[str, Any])
    def figures(day: date, caller: Caller) -> dict[str, Any]:
        """The figures of a day's report (its figures.json, as ``lienwatch report --json``
        prints them)."""
        return report_figures(out, day)

    # the 200 answer is HTML; its errors keep the one JSON error body (so no response_class,
    # which would document them as HTML too)
    @api.get("/reports/{day}/html", response_model=None,
             responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}})
    def html(day: date, caller: Caller) -> HTMLResponse:
        """A day's report.html: self-contained (styles and charts inline), opens offline."""
        return HTMLResponse(report_html(out, day))

    return api
