"""The console's languages: English (the messages as written) and Chinese (``zh_CN``), from
gettext catalogs kept with Babel (``web/locale/``, docs/console.md).

The ``.po`` catalogs are the source and are compiled in memory when the console starts, so no
binary ``.mo`` file is kept in the repository and no build step is needed to run. A user's
language is their setting (the ``lang`` cookie the console's language switch sets) or else the
browser's ``Accept-Language``; English when neither names a language the console speaks.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from importlib.resources import files

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

#: The console's languages: code -> the name shown in the language switch.
LANGUAGES = {"en": "English", "zh": "中文"}
DEFAULT = "en"
DOMAIN = "console"
#: The Babel locale of each language's catalog. English is the source text of the pages'
#: messages; its catalog only turns the codes the pages show into words (``codes.py``).
CATALOG_LOCALES = {"en": "en", "zh": "zh_CN"}


def catalog_path(language: str) -> str:
    """The ``.po`` file of ``language`` inside the package (for the catalog test)."""
    return f"locale/{CATALOG_LOCALES[language]}/LC_MESSAGES/{DOMAIN}.po"


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog of ``language``; fuzzy entries are left out, as gettext does."""
    source = files(__package__).joinpath(catalog_path(language)).read_bytes()
    catalog = read_po(io.BytesIO(source), locale=CATALOG_LOCALES[language], domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def negotiate(setting: str | None, accept_language: str | None) -> str:
    """The language of a request: ``setting`` if the console speaks it, else the first
    language of ``accept_language`` (by quality) that it speaks, else English."""
    if setting in LANGUAGES:
        return setting
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else DEFAULT
