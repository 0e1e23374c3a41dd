"""The console's languages without a browser: the catalogs are complete and current, every
code the pages show has words, and a request's language is chosen as documented."""

from __future__ import annotations

import io
import json
from importlib.resources import files
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from lienwatch.domain.delinquency import LoanStatus
from lienwatch.followup import model as followup
from lienwatch.followup.repossession import LegalRoute
from lienwatch.monitor.model import AlertStatus, AlertType
from lienwatch.web.codes import CODES
from lienwatch.web.i18n import catalog_path, negotiate, translations
from lienwatch.web.render import code_filter

WEB = Path(files("lienwatch.web"))  # type: ignore[arg-type]
ROOT = Path(__file__).resolve().parents[2]


def extracted() -> set[str]:
    """The messages of the templates and codes as scripts/catalog.sh extracts them."""
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true",
                                     "lstrip_blocks": "true"}}  # fmt: skip
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(WEB), method_map, options, keywords={"_": None, "gettext": None,
                                                 "ngettext": (1, 2), "N_": None},
    ):  # fmt: skip
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def catalog(language: str) -> dict[str, object]:
    source = (WEB / catalog_path(language)).read_bytes()
    return {m.id if isinstance(m.id, str) else m.id[0]: m
            for m in read_po(io.BytesIO(source)) if m.id}  # fmt: skip


def test_the_chinese_catalog_translates_every_message_of_the_pages():
    chinese = catalog("zh")
    missing = sorted(extracted() - set(chinese))
    assert missing == [], "new messages: run `make catalogs` and translate them"
    untranslated = sorted(key for key, m in chinese.items()
                          if not all(m.string if isinstance(m.string, tuple) else [m.string])
                          or m.fuzzy)  # fmt: skip
    assert untranslated == []


def test_every_code_of_the_rules_has_words_in_both_languages():
    enums = [followup.Role, followup.Channel, followup.Outcome, followup.CaseStatus,
             followup.TaskStatus, followup.PromiseStatus, followup.TriggerKind,
             followup.TrackerCommand, AlertType, AlertStatus, LoanStatus,
             LegalRoute]  # fmt: skip
    values = {member.value for enum in enums for member in enum}
    assert sorted(values - set(CODES)) == []
    english = catalog("en")
    assert sorted(code for code in CODES if not english[code].string) == []
    assert translations("zh").gettext("quiet_hours") == "禁止联系时段"
    assert translations("en").gettext("quiet_hours") == "quiet hours"


def test_a_code_without_words_is_shown_as_a_code():
    assert str(code_filter("zh")("quiet_hours")) == "禁止联系时段"
    assert str(code_filter("en")("delinquent")) == "delinquent"  # known, same words
    shown = str(code_filter("zh")("court_order<x>"))
    assert shown == '<code class="code">court_order&lt;x&gt;</code>'


@pytest.mark.parametrize(("setting", "header", "language"), [
    (None, "zh-CN,zh;q=0.9,en;q=0.8", "zh"),
    (None, "en-US,en;q=0.9", "en"),
    (None, "fr-FR,zh;q=0.5,en;q=0.4", "zh"),
    (None, "en;q=0.2,zh-TW;q=0.8", "zh"),
    (None, "", "en"),
    (None, "de, fr;q=bad", "en"),
    ("en", "zh-CN", "en"),  # the user's setting wins
    ("xx", "zh-CN", "zh"),  # a setting the console does not speak is ignored
])  # fmt: skip
def test_the_language_is_the_users_setting_else_the_browsers(setting, header, language):
    assert negotiate(setting, header) == language


def test_the_shipped_htmx_is_the_one_the_lock_file_pins():
    lock = json.loads((ROOT / "web-assets" / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/htmx.org"]["version"]
    assert (WEB / "static" / "vendor" / "VERSIONS").read_text().split() == ["htmx.org", pinned]
    assert (WEB / "static" / "vendor" / "htmx.min.js").stat().st_size > 10_000
