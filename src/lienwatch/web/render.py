"""Rendering the console's pages: one Jinja2 environment with the gettext extension, the
filters that print money and times as people read them, and the page shell's context."""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from lienwatch.domain.money import to_yuan
from lienwatch.web.codes import CODES
from lienwatch.web.i18n import LANGUAGES, translations

KNOWN = frozenset(CODES)


def yuan(fen: int | None) -> str:
    """``317951`` → ``3,179.51`` (the amount in yuan, exact)."""
    if fen is None:
        return "—"
    return f"{to_yuan(fen):,.2f}"


def local(moment: datetime | str | None, zone: str | None = None) -> Markup:
    """A time (aware, or ISO 8601 with an offset) in ``zone`` (the business zone when None)
    as ``2026-12-01 10:00 +08:00``, in a ``<time>`` element carrying the exact ISO time."""
    if moment is None:
        return Markup("—")
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    there = moment.astimezone(ZoneInfo(zone or "Asia/Shanghai"))
    offset = there.strftime("%z")
    text = f"{there:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"
    return Markup('<time datetime="{}">{}</time>').format(moment.isoformat(), text)


#: The evidence keys the alerts page lays out itself; the detector's own figures follow.
EVIDENCE_SHOWN = frozenset({"rule", "why", "thresholds", "fixes", "stay"})


def figure(value: Any) -> str:
    """A detector's figure in an alert's evidence: a number or text as is, a place or a
    list as compact JSON (not Python's notation)."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return str(value)


def day(value: date | None) -> str:
    return "—" if value is None else value.isoformat()


def code_filter(language: str):
    """The ``code`` filter of ``language``: a code of ``codes.CODES`` (or any message of the
    catalog) as its words, any other as the code itself, marked as one."""
    catalog = translations(language)

    def code(value: object) -> Markup:
        text = "" if value is None else str(value)
        words = catalog.gettext(text) if text else ""
        if text in KNOWN or (words and words != text):
            return Markup.escape(words)
        return Markup('<code class="code">{}</code>').format(text)

    return code


@cache
def environment(language: str) -> Environment:
    """The templates' environment in ``language`` (one per language, built once)."""
    env = Environment(
        loader=PackageLoader("lienwatch.web", "templates"),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(yuan=yuan, local=local, day=day, figure=figure,
                       code=code_filter(language))  # fmt: skip
    env.globals.update(languages=LANGUAGES, EVIDENCE_SHOWN=EVIDENCE_SHOWN)
    return env


def render(template: str, language: str, **context: Any) -> str:
    """The page ``template`` in ``language`` with ``context``."""
    return environment(language).get_template(template).render(language=language, **context)
