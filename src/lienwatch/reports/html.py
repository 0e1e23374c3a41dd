"""HTML rendering of reports with Jinja2 (autoescaped; templates ship with the package)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from lienwatch import __version__, clock
from lienwatch.domain.money import to_yuan

_environment = Environment(
    loader=PackageLoader("lienwatch.reports", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,  # a missing figure is an error, never a blank
)
_environment.filters["yuan"] = lambda fen: f"¥{to_yuan(fen):,.2f}"
_environment.filters["thousands"] = lambda n: f"{n:,}"
_environment.filters["percent"] = lambda share: "—" if share is None else f"{100 * share:.1f} %"
_environment.filters["interval"] = lambda ci: (
    "—" if ci is None or None in ci else f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f} %"
)


def render_report(summary: Mapping[str, Any]) -> str:
    """The demo's report.html from its summary."""
    template = _environment.get_template("report.html")
    return template.render(
        s=summary, version=__version__, generated=clock.now().strftime("%Y-%m-%d %H:%M UTC")
    )
