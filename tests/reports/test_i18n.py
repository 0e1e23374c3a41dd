"""One catalogue for both languages: every key the template asks for, every code the data
carries."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from lienwatch.followup.repossession import RepoStatus
from lienwatch.monitor.detectors.base import RULES
from lienwatch.monitor.model import AlertType
from lienwatch.reports.daily import evidence_lines
from lienwatch.reports.i18n import CATALOGUE, Translator
from lienwatch.services.origination import BOOKED, THROUGH_THE_DOOR
from lienwatch.services.payment_anomalies import PAYMENT_ANOMALY
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
    # asked for as t("population_" ~ population): every population the stability watches
    keys = (keys - {"population_"}) | {f"population_{p}" for p in (THROUGH_THE_DOOR, BOOKED)}
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


def test_alert_evidence_is_product_text_in_the_language_and_data_as_recorded():
    """Every rule the monitor and the payment scan name has its name and its reason in both
    languages; the evidence's labels are translated, its data (times, places, threshold keys)
    kept as recorded, and a key the catalogue does not know is shown as it is."""
    for rule in [*RULES, PAYMENT_ANOMALY]:
        assert f"rule:{rule}" in CATALOGUE and f"why:{rule}" in CATALOGUE, rule
    evidence = {"rule": "long_stay", "why": RULES["long_stay"][0],
                "thresholds": {"long_stay_h": 72.0},
                "fixes": [{"time": "2026-10-11T00:33:04Z"}, {"time": "2026-10-08T01:37:31Z"}],
                "declared_home": "北京市朝阳区 1号", "brand_new_key": 3}  # fmt: skip
    lines = evidence_lines(evidence, Translator("zh"))
    assert [(e.label, e.value, e.text) for e in lines] == [
        ("规则", "长时间停留", True),
        ("原因", CATALOGUE["why:long_stay"][1], True),
        ("阈值", '{"long_stay_h": 72.0}', False),
        ("定位点", "2 个定位点，2026-10-08 01:37 至 2026-10-11 00:33", True),
        ("申报住址", "北京市朝阳区 1号", False),
        ("brand_new_key", "3", False)]
    assert [e.label_known for e in lines] == [True] * 5 + [False]
    unknown = evidence_lines({"rule": "a_new_rule", "why": "because"}, Translator("zh"))
    assert [(e.value, e.text) for e in unknown] == [("a_new_rule", False), ("because", False)]
