"""Alarm mapping and device profiles as configuration (plain dicts, as TOML gives them)."""

from __future__ import annotations

import tomllib
from datetime import timedelta

import pytest

from lienwatch.telematics.protocols import (
    DEFAULT_ALARM_MAP,
    ProtocolConfigError,
    alarm_map_from_dict,
    profile_from_dict,
)

VENDOR_TOML = """
name = "vendor-x"
accept_bad_checksum = true
utc_offset = "+00:00"

[alarms.jt808_bits]
15 = "low_battery"
16 = "vibration"
17 = "removal"
20 = ""

[alarms.gt06_codes]
"0x11" = "power_cut"
"""


def test_profile_from_toml() -> None:
    profile = profile_from_dict(tomllib.loads(VENDOR_TOML))
    assert profile.name == "vendor-x" and profile.accept_bad_checksum
    assert profile.utc_offset == timedelta(0)
    word = 1 << 8 | 1 << 15 | 1 << 16 | 1 << 17 | 1 << 20
    assert profile.alarms.jt808_alarms(word) == ("power_cut", "low_battery", "vibration", "removal")
    assert profile.alarms.gt06_codes[0x11] == "power_cut"
    assert profile.alarms.gt06_codes[0x01] == "sos"  # defaults kept where not overridden


def test_default_jt808_bits() -> None:
    assert DEFAULT_ALARM_MAP.jt808_alarms(0) == ()
    assert DEFAULT_ALARM_MAP.jt808_alarms(1 << 0 | 1 << 5 | 1 << 28) == (
        "sos",
        "gnss_antenna_cut",
        "illegal_movement",
    )
    assert DEFAULT_ALARM_MAP.jt808_word(["power_cut", "sos"]) == 1 << 8 | 1


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"jt808_bits": {"3": "fatigue"}}, r"jt808_bits\[3\]: 'fatigue' is not a canonical"),
        ({"jt808_bits": {"32": "sos"}}, "jt808_bits: code 32"),
        ({"gt06_terminal": {"9": "sos"}}, "gt06_terminal: code 9"),
        ({"gt06_codes": {"x": "sos"}}, "alarms.gt06_codes: key 'x'"),
        ({"jt808": {}}, "unknown table"),
        ({"jt808_items": {"0xE6": "fatigue"}}, r"jt808_items\[230\]: 'fatigue' is not"),
        ({"jt808_items": {"0x1E6": "sos"}}, "jt808_items: code 486"),
        ({"jt808_items": {"0xE6": {"1": "x"}}}, r"jt808_items\[0xe6\]\[1\]: 'x' is not"),
        ({"jt808_bits": {"16": {"1": "sos"}}}, "jt808_bits.16.: ..1.: .sos.. is not a canonical"),
    ],
)
def test_bad_alarm_tables_name_the_field(table: dict, message: str) -> None:
    with pytest.raises(ProtocolConfigError, match=message):
        alarm_map_from_dict(table)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"utc_offset": "8 hours"}, "utc_offset: '8 hours'"),
        ({"utc_offset": "+15:00"}, "out of range"),
        ({"accept_bad_checksum": "yes"}, "accept_bad_checksum"),
        ({"colour": "red"}, "unknown key"),
    ],
)
def test_bad_profiles_name_the_field(data: dict, message: str) -> None:
    with pytest.raises(ProtocolConfigError, match=message):
        profile_from_dict(data)
    assert issubclass(ProtocolConfigError, ValueError)


def test_unmapped_name_cannot_be_encoded() -> None:
    with pytest.raises(ProtocolConfigError, match="jamming"):
        DEFAULT_ALARM_MAP.jt808_word(["jamming"])
