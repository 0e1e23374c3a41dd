"""What a ledger entry is: an act in canonical JSON, the bytes its leaf hash is taken of.

Canonical JSON here: keys sorted, no spaces, UTF-8, and only strings, integers, booleans,
null, lists and objects (no floats, whose text is not unique; money is integer fen, times
are ISO 8601 text with their offset). Two writers of the same act write the same bytes, and
a verifier needs nothing but ``json`` to read them.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from lienwatch.errors import LienwatchError


class LedgerError(LienwatchError):
    """Bad ledger input or a ledger that does not verify; names what is wrong."""


class EntryKind(StrEnum):
    """What an entry records."""

    CONTRACT = "contract"  # an electronic contract: the SHA-256 of the signed document
    LOAN_DISBURSED = "loan_disbursed"  # a loan's terms as disbursed (or as brought in by import)
    COLLATERAL_REGISTERED = "collateral_registered"  # 抵押登记
    COLLATERAL_RELEASED = "collateral_released"
    PAYMENT_POSTED = "payment_posted"
    PAYMENT_REVERSED = "payment_reversed"
    CASE_ACTION = "case_action"  # a contact, check, status change, escalation, breach, ...
    CONTACT_REFUSED = "contact_refused"  # a contact the compliance guard refused
    ALERT_DECIDED = "alert_decided"  # an alert acknowledged, resolved or marked false positive
    CORRECTION = "correction"  # recorded data changed: old and new values, who, why
    POSITIONS_PURGED = "positions_purged"  # positions older than a cut deleted (retention)


def canonical(value: Any) -> bytes:
    """``value`` as canonical JSON bytes; a float or another type is refused by name."""
    if not _plain(value):
        _check(value, "entry")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


_SCALARS = (type(None), bool, int, str)


def _plain(value: Any) -> bool:
    """Whether ``value`` holds only the allowed types (fast: no paths are built; every act
    is checked, so the common exact types are looked up before any ``isinstance``)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _SCALARS or isinstance(item, _SCALARS):
            continue
        if kind is dict or isinstance(item, dict):
            if not all(type(key) is str or isinstance(key, str) for key in item):
                return False
            stack.extend(item.values())
        elif kind is list or kind is tuple or isinstance(item, list | tuple):
            stack.extend(item)
        else:
            return False
    return True


def _check(value: Any, where: str) -> None:
    """Raise naming where in ``value`` a type without a canonical form is."""
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check(item, f"{where}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise LedgerError(f"{where}: key {key!r} is not text")
            _check(item, f"{where}.{key}")
    elif not (value is None or isinstance(value, bool | int | str)):
        raise LedgerError(f"{where}: {type(value).__name__} has no canonical form "
                          "(use integer fen, ISO text for times)")  # fmt: skip


def entry_body(kind: EntryKind, *, subject: str, at: datetime, by: str | None,
               data: dict[str, Any]) -> bytes:  # fmt: skip
    """The canonical bytes of an act: what (``kind``), about what (``subject``: a loan ref, a
    VIN), when (aware ``at``), who (``by``; None for the system) and its facts."""
    if at.tzinfo is None:
        raise LedgerError("at: must carry a time zone")
    return canonical({"kind": kind.value, "subject": subject, "at": at.isoformat(),
                      "by": by, "data": data})  # fmt: skip
