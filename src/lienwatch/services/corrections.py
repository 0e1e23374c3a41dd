"""Corrections of recorded data: a borrower's contact details or a vehicle's plate or
permitted area changed,
with the old and new values, who and why, in the ledger with the change.

Personal data (a phone number, an address, coordinates of a home) is recorded in the ledger by
its SHA-256 digest only: the ledger cannot forget, and a person may ask that their data be
erased. The digests still prove what a value was to anyone who holds the value (a dispute over
which number was called). Other fields (city, province, time zone, plate) are recorded as
they are.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.errors import LienwatchError, NotFoundError
from lienwatch.ledger.entries import EntryKind
from lienwatch.services.ledger import record, require_user
from lienwatch.servicing.book_import import SPECS, CellError
from lienwatch.store.tables import Borrower, Vehicle

#: What may be corrected, per record kind; the values are parsed as an import would.
CORRECTABLE: dict[str, frozenset[str]] = {
    "borrower": frozenset(
        {"phone", "address", "city", "province_code", "home_lat", "home_lon", "time_zone"}
    ),
    "vehicle": frozenset({"plate", "permitted_area"}),
}
PERSONAL = frozenset({"phone", "address", "home_lat", "home_lon"})
_SPEC = {"borrower": "borrowers", "vehicle": "vehicles"}


@dataclass(frozen=True, slots=True)
class Correction:
    """What a correction changed: the record, ``{field: (old, new)}``, who, when and why."""

    kind: str
    key: str
    changes: dict[str, tuple[Any, Any]]
    by: str
    at: datetime
    why: str

    def as_dict(self) -> dict[str, Any]:
        """The correction as shown: the fields changed, with their old and new values except
        for personal data (shown as changed only)."""
        shown = {field: "changed" if field in PERSONAL else {"old": _text(old), "new": _text(new)}
                 for field, (old, new) in self.changes.items()}  # fmt: skip
        return {"kind": self.kind, "key": self.key, "by": self.by, "at": self.at.isoformat(),
                "why": self.why, "changes": shown}  # fmt: skip


def correct(
    session: Session, *, kind: str, key: str, values: dict[str, str], why: str, by: str,
    at: datetime,
) -> Correction:  # fmt: skip
    """Set ``values`` (field -> text, parsed as the import parses it) on the borrower (by
    reference) or vehicle (by VIN) ``key`` and record the correction in the ledger, in the
    caller's transaction. Fields whose value does not change are left out; a correction that
    changes nothing records nothing."""
    if kind not in CORRECTABLE:
        raise LienwatchError(f"kind: corrections are made to {', '.join(CORRECTABLE)}, "
                             f"not {kind!r}")  # fmt: skip
    if not why.strip():
        raise LienwatchError("why: a correction needs its reason")
    require_user(session, by)
    row = _record(session, kind, key)
    parsed = {field: _parse(kind, field, text) for field, text in values.items()}
    changes = {field: (getattr(row, field), new) for field, new in parsed.items()
               if getattr(row, field) != new}  # fmt: skip
    for field, (_old, new) in changes.items():
        setattr(row, field, new)
    correction = Correction(kind, key, changes, by, at, why.strip())
    if changes:
        record(session, EntryKind.CORRECTION, subject=key, at=at, by=by, data={
            "record": kind, "why": correction.why,
            "changes": {field: {"old": _entry_value(field, old), "new": _entry_value(field, new)}
                        for field, (old, new) in changes.items()},
        })  # fmt: skip
    return correction


def _record(session: Session, kind: str, key: str) -> Borrower | Vehicle:
    if kind == "borrower":
        found: Borrower | Vehicle | None = session.scalar(
            select(Borrower).where(Borrower.ref == key))
    else:
        found = session.scalar(select(Vehicle).where(Vehicle.vin == key))
    if found is None:
        raise NotFoundError(f"{kind}: no {kind} {key!r}")
    return found


def _parse(kind: str, field: str, text: str) -> Any:
    if field not in CORRECTABLE[kind]:
        raise LienwatchError(f"{field}: not a field a {kind} correction may change (one of "
                             f"{', '.join(sorted(CORRECTABLE[kind]))})")  # fmt: skip
    column = next(c for c in SPECS[_SPEC[kind]] if c.name == field)
    if not text.strip() and column.default == "":
        return None  # an optional field cleared
    try:
        return column.parse(text.strip())
    except CellError as exc:
        raise LienwatchError(f"{field}: {exc}") from None


def _entry_value(field: str, value: Any) -> str | dict[str, str] | None:
    """A value as the ledger keeps it: personal data by its digest, the rest as text."""
    text = _text(value)
    if text is not None and field in PERSONAL:
        return {"sha256": hashlib.sha256(text.encode()).hexdigest()}
    return text


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
