"""One catalogue for both languages: every key the template asks for, every code the data
carries."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from lienwatch.followup.repossession import RepoStatus
from lienwatch.monitor.model import AlertType
from lienwatch.reports.i18n import CATALOGUE, Translator
from lienwatch.telematics.registry import DEVICE_CLONED


def test_every_entry_has_both_languages():
    for key, (en, zh) in CATALOGUE.items():
        assert en.strip() and zh.strip(), key
        assert set(re.findall(r"{(\w+)}", en)) == set(re.findall(r"{(\w+)}", zh)), key


def test_every_key_of_the_template_and_the_charts_is_in_the_catalogue():
    template = files("lienwatch.reports").joinpath("templates/daily.html").read_text("utf-8")
    source = files("lienwatch.reports").joinpath("daily.py").read_text("utf-8")
    keys = set(re.findall(r"""\bt\(\s*["'](\w+)["']""", template + source))
    keys |= {"c_vintage30", "c_vintage90"}  # asked for as t(f"c_{key}")
    # asked for as t("behaviour_" ~ reason): every reason the behaviour score gives
    behaviour = files("lienwatch.risk").joinpath("behaviour.py").read_text("utf-8")
    reasons = set(re.findall(r'reason(?:: str)?\s*=\s*"(\w+)"', behaviour))
    assert reasons == {"one_class", "few_months", "capacity"}
    keys = (keys - {"behaviour_"}) | {f"behaviour_{reason}" for reason in reasons}
    assert keys - set(CATALOGUE) == set()
    assert len(keys) > 60


def test_codes_of_the_data_are_translated():
    t = Translator("zh")
    for code in [*AlertType, DEVICE_CLONED, *RepoStatus, "info", "warning", "critical"]:
        assert f"code:{code}" in CATALOGUE, code
    assert (t.code("power_cut"), t.code("recovered"), t.code("a_new_type")) == (
        "断电", "已收车", "a_new_type")
    assert Translator("en")("kpi_period", days=30) == "Follow-up figures over the last 30 days."
    with pytest.raises(ValueError, match=r"^--lang: 'fr' is not one of en, zh$"):
        Translator("fr")
