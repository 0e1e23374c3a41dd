"""Canonical alarm names and the per-model mapping from protocol alarm codes to them.

Trackers report alarms as bits (JT/T 808 alarm DWORD) or codes (GT06 alarm byte, the 3-bit
alarm field of the GT06 terminal-info byte). Vendors reuse the reserved bits and disagree on
the codes, so the mapping is configuration: :class:`AlarmMap` holds one model's mapping and
:func:`alarm_map_from_dict` builds one from a plain (TOML-loadable) dictionary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from lienwatch.errors import LienwatchError

CANONICAL_ALARMS: frozenset[str] = frozenset(
    {
        "sos",
        "power_cut",
        "low_voltage",
        "gnss_antenna_cut",
        "removal",
        "tamper",
        "vibration",
        "illegal_movement",
        "overspeed",
        "geofence",
        "low_battery",
        "jamming",
    }
)


class ProtocolConfigError(LienwatchError, ValueError):
    """A device-model configuration that cannot be used; the message names the field."""


def _frozen(mapping: Mapping[int, str]) -> Mapping[int, str]:
    return MappingProxyType(dict(mapping))


# JT/T 808-2019 table 24's standard bits, and the reserved bits 15–17 as the trackers sold for
# car loans commonly use them and Traccar's decoder maps them: 15 vibration, 16 and 17 the
# light-sensor tamper ("防拆") alarm.
DEFAULT_JT808_ALARM_BITS: Mapping[int, str] = _frozen(
    {
        0: "sos",
        1: "overspeed",
        5: "gnss_antenna_cut",
        7: "low_voltage",
        8: "power_cut",
        15: "vibration",
        16: "tamper",
        17: "tamper",
        20: "geofence",
        28: "illegal_movement",
    }
)

#: A JT/T 808 additional-information item's alarm meaning: a canonical name (raised when the
#: item is present with a value other than zero) or a table of its value → canonical name.
ItemAlarms = str | Mapping[int, str]

# Concox GT06 alarm byte of the 0x16 / 0x26 / 0x27 alarm packets.
DEFAULT_GT06_ALARM_CODES: Mapping[int, str] = _frozen(
    {
        0x01: "sos",
        0x02: "power_cut",
        0x03: "vibration",
        0x04: "geofence",
        0x05: "geofence",
        0x06: "overspeed",
        0x0C: "tamper",
        0x0E: "low_battery",
        0x0F: "low_battery",
        0x13: "tamper",
        0x18: "removal",
        0x30: "jamming",
    }
)

# Bits 5–3 of the GT06 terminal-info byte (0x13 heartbeat and alarm packets).
DEFAULT_GT06_TERMINAL_ALARMS: Mapping[int, str] = _frozen(
    {
        0b001: "vibration",
        0b010: "power_cut",
        0b011: "low_battery",
        0b100: "sos",
        0b111: "removal",
    }
)


def _check_table(field_name: str, table: Mapping[int, str], max_code: int) -> None:
    for code, name in table.items():
        if not isinstance(code, int) or isinstance(code, bool) or not 0 <= code <= max_code:
            raise ProtocolConfigError(f"{field_name}: code {code!r} is not an integer 0–{max_code}")
        if not isinstance(name, str) or name not in CANONICAL_ALARMS:
            raise ProtocolConfigError(
                f"{field_name}[{code}]: {name!r} is not a canonical alarm name "
                f"({', '.join(sorted(CANONICAL_ALARMS))})"
            )


def _check_items(items: Mapping[int, ItemAlarms]) -> dict[int, ItemAlarms]:
    """Validated, frozen copies of the additional-information item tables."""
    checked: dict[int, ItemAlarms] = {}
    for item, meaning in items.items():
        _check_table("jt808_items", {item: "sos"}, 0xFF)  # the item id alone
        if isinstance(meaning, str):
            _check_table("jt808_items", {item: meaning}, 0xFF)
            checked[item] = meaning
        else:
            _check_table(f"jt808_items[0x{item:02x}]", meaning, 0xFFFFFFFF)
            checked[item] = _frozen(meaning)
    return checked


@dataclass(frozen=True, slots=True)
class AlarmMap:
    """One device model's mapping from protocol alarm codes to canonical alarm names.

    Attributes:
        jt808_bits: JT/T 808 alarm-DWORD bit number (0–31) → canonical name.
        gt06_codes: GT06 alarm byte (0x16 / 0x26 / 0x27 packets) → canonical name.
        gt06_terminal: GT06 terminal-info bits 5–3 as a number (0–7) → canonical name.
        jt808_items: JT/T 808 additional-information item id (0–255; the vendor items 0xE0–0xFF
            that lienwatch does not decode itself) → a canonical name, raised when the item is
            present with a value other than zero, or a table of the item's value (an unsigned
            big-endian integer) → canonical name. None by default: vendors agree on no item.

    Codes that are not in the mapping produce no canonical alarm; decoders keep the raw
    word or code in the message status (and the item in the extras) so nothing is lost.
    """

    jt808_bits: Mapping[int, str] = field(default_factory=lambda: DEFAULT_JT808_ALARM_BITS)
    gt06_codes: Mapping[int, str] = field(default_factory=lambda: DEFAULT_GT06_ALARM_CODES)
    gt06_terminal: Mapping[int, str] = field(default_factory=lambda: DEFAULT_GT06_TERMINAL_ALARMS)
    jt808_items: Mapping[int, ItemAlarms] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_table("jt808_bits", self.jt808_bits, 31)
        _check_table("gt06_codes", self.gt06_codes, 0xFF)
        _check_table("gt06_terminal", self.gt06_terminal, 7)
        # Freeze copies so a caller's later edits cannot change a running decoder.
        object.__setattr__(self, "jt808_bits", _frozen(self.jt808_bits))
        object.__setattr__(self, "gt06_codes", _frozen(self.gt06_codes))
        object.__setattr__(self, "gt06_terminal", _frozen(self.gt06_terminal))
        object.__setattr__(self, "jt808_items", MappingProxyType(_check_items(self.jt808_items)))

    def jt808_alarms(self, alarm_word: int) -> tuple[str, ...]:
        """Canonical names for the set bits of a JT/T 808 alarm DWORD, deduplicated, bit order."""
        if not alarm_word:  # the usual case: skip the table walk
            return ()
        names = (name for bit, name in sorted(self.jt808_bits.items()) if alarm_word >> bit & 1)
        return tuple(dict.fromkeys(names))

    def jt808_item_alarms(self, items: Mapping[int, bytes]) -> tuple[str, ...]:
        """Canonical names the additional-information ``items`` (id → value bytes) raise."""
        names = []
        for item, meaning in self.jt808_items.items():
            value = items.get(item)
            if value is None:
                continue
            number = int.from_bytes(value, "big")
            if isinstance(meaning, str):
                names += [meaning] if number else []
            elif number in meaning:
                names.append(meaning[number])
        return tuple(dict.fromkeys(names))

    def jt808_word(self, names: Iterable[str]) -> int:
        """The alarm DWORD that raises ``names`` (lowest mapped bit per name): for simulators."""
        word = 0
        for name in names:
            bits = [bit for bit, mapped in self.jt808_bits.items() if mapped == name]
            if not bits:
                raise ProtocolConfigError(f"alarms: {name!r} has no JT/T 808 bit in this map")
            word |= 1 << min(bits)
        return word


DEFAULT_ALARM_MAP = AlarmMap()


def _parse_code(field_name: str, key: Any) -> int:
    """TOML keys are strings: accept ``"16"``, ``"0x18"`` and plain ints."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str):
        try:
            return int(key, 0)
        except ValueError:
            pass
    raise ProtocolConfigError(f"{field_name}: key {key!r} is not an integer code")


def alarm_map_from_dict(data: Mapping[str, Any], *, base: AlarmMap = DEFAULT_ALARM_MAP) -> AlarmMap:
    """Build an :class:`AlarmMap` from a plain dictionary, such as a parsed TOML table.

    ``data`` may hold the tables ``jt808_bits``, ``gt06_codes``, ``gt06_terminal`` and
    ``jt808_items``; keys are integers or integer strings (``"17"``, ``"0x18"``), values
    canonical names, or ``""`` to remove a default entry; a ``jt808_items`` value may also be a
    table of the item's value → canonical name. Each table given is merged over the one in
    ``base``; tables not given are taken from ``base`` unchanged.

    Raises:
        ProtocolConfigError: an unknown table, a key that is not a code in range, or a name
            that is not canonical; the message names the table and key.
    """
    unknown = set(data) - {"jt808_bits", "gt06_codes", "gt06_terminal", "jt808_items"}
    if unknown:
        raise ProtocolConfigError(f"alarms: unknown table(s) {', '.join(sorted(unknown))}")
    tables: dict[str, Mapping[int, Any]] = {}
    for name in ("jt808_bits", "gt06_codes", "gt06_terminal", "jt808_items"):
        merged = dict(getattr(base, name))
        given = data.get(name, {})
        if not isinstance(given, Mapping):
            raise ProtocolConfigError(f"alarms.{name}: expected a table of code = name")
        for key, value in given.items():
            code = _parse_code(f"alarms.{name}", key)
            if value == "":
                merged.pop(code, None)
            elif isinstance(value, Mapping) and name == "jt808_items":  # value → name
                merged[code] = {_parse_code(f"alarms.{name}.{key}", k): v for k, v in value.items()}
            else:
                merged[code] = value
        tables[name] = merged
    return AlarmMap(**tables)
