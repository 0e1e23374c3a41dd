"""The daily risk warning reports already written, for those who read them (auditors,
supervisors, analysts) through the API and the console: ``lienwatch report`` and the
scheduler's ``report`` job write each business day's report into its own folder, named by
the day, below ``[report] out`` (docs/report.md); these verbs list those folders and open
one (files, no database: beside the writer in ``reports/``). The report holds no personal
data (loans by reference, agents by username), so no masking applies."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from lienwatch.errors import NotFoundError
from lienwatch.reports.daily import HTML, JSON, PDF, TABLES, day_folder


def _day_of(folder: Path) -> date | None:
    """The business day a report folder is named by; None: not a report's folder."""
    try:
        day = date.fromisoformat(folder.name)
    except ValueError:
        return None
    return day if folder.name == day.isoformat() and (folder / HTML).is_file() else None


def list_reports(
    out: Path, *, before: date | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The reports written below ``out``, newest business day first, those before ``before``
    (the previous page's last day) when given: each day with its files."""
    if not out.is_dir():
        return []
    days = sorted((day for folder in out.iterdir() if folder.is_dir()
                   if (day := _day_of(folder)) is not None
                   and (before is None or day < before)), reverse=True)  # fmt: skip
    return [_listing(out, day) for day in days[:limit]]


def _listing(out: Path, day: date) -> dict[str, Any]:
    folder = day_folder(out, day)
    tables = folder / TABLES
    return {
        "day": day,
        "figures": (folder / JSON).is_file(),
        "pdf": (folder / PDF).is_file(),
        "tables": sorted(p.stem for p in tables.glob("*.csv")) if tables.is_dir() else [],
        "written_at": datetime.fromtimestamp((folder / HTML).stat().st_mtime, UTC),
    }


def _report_folder(out: Path, day: date) -> Path:
    folder = day_folder(out, day)
    if _day_of(folder) is None:
        raise NotFoundError(f"day: no report of {day} in {out}")
    return folder


def report_html(out: Path, day: date) -> str:
    """The report of ``day`` as written (report.html: self-contained, charts inline)."""
    return (_report_folder(out, day) / HTML).read_text(encoding="utf-8")


def report_figures(out: Path, day: date) -> dict[str, Any]:
    """The figures of the report of ``day`` (its figures.json)."""
    path = _report_folder(out, day) / JSON
    if not path.is_file():
        raise NotFoundError(f"day: the report of {day} has no {JSON}")
    figures: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return figures
