"""Mortgage registrations (抵押登记) as the ledger records them: a vehicle's registration for
a loan, in force from its registration day until the day it is released.

The ledger is the record of registrations: these rules read them back from its entries
(registered and released, in the order they were recorded) to answer "is this car pledged
to this loan on this day", which gates closing a paid loan and ordering a repossession.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from lienwatch.ledger.entries import EntryKind


@dataclass(frozen=True, slots=True)
class Registration:
    """One registration of a vehicle's mortgage for a loan; ``released_on`` None while in
    force."""

    vin: str
    loan: str
    certificate: str
    registered_on: date
    released_on: date | None = None

    def in_force(self, day: date) -> bool:
        """Registered by the end of ``day`` and not released on or before it."""
        return self.registered_on <= day and (self.released_on is None
                                              or self.released_on > day)  # fmt: skip


def registered_data(*, loan: str, plate: str, authority: str, certificate: str,
                    registered_on: date) -> dict[str, Any]:  # fmt: skip
    """The facts of a ``collateral_registered`` entry (what :func:`registrations` reads)."""
    return {"loan": loan, "plate": plate, "authority": authority, "certificate": certificate,
            "registered_on": registered_on.isoformat()}  # fmt: skip


def released_data(*, released_on: date, certificate: str) -> dict[str, Any]:
    """The facts of a ``collateral_released`` entry."""
    return {"released_on": released_on.isoformat(), "certificate": certificate}


def registrations(entries: Iterable[tuple[str, str]]) -> list[Registration]:
    """Every registration of ``entries`` ((kind, body) of the registration and release
    entries, in the order recorded), each with its release when one followed."""
    found: list[Registration] = []
    open_by_vin: dict[str, int] = {}
    for kind, body in entries:
        entry = json.loads(body)
        vin, data = entry["subject"], entry["data"]
        if kind == EntryKind.COLLATERAL_REGISTERED:
            open_by_vin[vin] = len(found)
            found.append(Registration(vin, data["loan"], data["certificate"],
                                      date.fromisoformat(data["registered_on"])))  # fmt: skip
        elif kind == EntryKind.COLLATERAL_RELEASED and vin in open_by_vin:
            at = open_by_vin.pop(vin)
            found[at] = replace(found[at], released_on=date.fromisoformat(data["released_on"]))
    return found


def pledged_loans(found: Iterable[Registration], day: date) -> set[str]:
    """References of the loans whose vehicle's registration is in force on ``day``."""
    return {r.loan for r in found if r.in_force(day)}
