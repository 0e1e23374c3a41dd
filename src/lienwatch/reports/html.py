"""The Jinja2 environment of the reports (autoescaped, templates shipped with the package) and
the filters that format their figures."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from lienwatch.domain.money import to_yuan

environment = Environment(
    loader=PackageLoader("lienwatch.reports", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,  # a missing figure is an error, never a blank
)
environment.filters["yuan"] = lambda fen: f"¥{to_yuan(fen):,.2f}"
environment.filters["thousands"] = lambda n: f"{n:,}"
environment.filters["percent"] = lambda share: "—" if share is None else f"{100 * share:.1f} %"
environment.filters["signed_yuan"] = lambda fen: (
    "±¥0.00" if not fen else f"{'+' if fen > 0 else '−'}¥{to_yuan(abs(int(fen))):,.2f}"
)
environment.filters["signed"] = lambda n: "±0" if not n else f"{n:+,}".replace("-", "−")
environment.filters["signed_points"] = lambda share: (  # percentage points
    "±0.0" if not share else f"{100 * share:+.1f}".replace("-", "−")
)
environment.filters["interval"] = lambda ci: (
    "—" if ci is None or None in ci else f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f} %"
)

environment.filters["signed_psi"] = lambda x: "±0" if not x else f"{x:+.4f}".replace("-", "−")
