"""Applications as the decision reads them, from rows of text (a CSV file as
:mod:`lienwatch.tabular` reads it), and the decision on a batch of them.

Columns: ``application_id, applied_on, id_number, monthly_income, monthly_debt, amount,
term_months, vin, vehicle_year, price, appraisal`` (money in yuan), optional
``vehicle_class`` (new-ice, new-nev, used; default new-ice), the contact identifiers of
:data:`IDENTIFIER_KINDS` (optional, empty = none), and the scorecard's characteristics.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import date
from typing import Any

import numpy as np

from lienwatch.domain.money import MoneyError, parse_yuan
from lienwatch.errors import LienwatchError
from lienwatch.risk.checks import INCOME_PROOFS, Application
from lienwatch.risk.policy import Decision, Policy, decide
from lienwatch.risk.rings import Rings, encode_links, find_rings
from lienwatch.risk.scorecard import Scorecard

REQUIRED = ("application_id", "applied_on", "id_number", "monthly_income", "monthly_debt",
            "amount", "term_months", "vin", "vehicle_year", "price", "appraisal")  # fmt: skip
#: Identifiers that link applications (and that a blacklist may list, with id_number and vin).
IDENTIFIER_KINDS = ("phone", "device", "bank_account", "address", "employer_phone",
                    "emergency_contact")  # fmt: skip
#: Optional columns: the vehicle's class, the credit record (征信) and the income proof.
OPTIONAL = ("vehicle_class", "credit_overdue", "credit_worst_dpd_24m", "credit_inquiries_6m",
            "income_proof")  # fmt: skip
_MONEY = ("monthly_income", "monthly_debt", "amount", "price", "appraisal")
_CLASSES = ("new-ice", "new-nev", "used")


class ApplicationError(LienwatchError, ValueError):
    """A row that is not an application; the message names file, line and column."""


def _field(where: str, name: str, text: str, parse: Any) -> Any:
    try:
        return parse(text)
    except (ValueError, MoneyError):
        raise ApplicationError(f"{where}, column {name}: bad value {text!r}") from None


def parse_application(where: str, row: Mapping[str, str]) -> Application:
    """One application from a row of text; a bad value names ``where`` and the column."""
    text = {k: (row.get(k) or "").strip() for k in (*REQUIRED, *OPTIONAL)}
    empty = [k for k in REQUIRED if not text[k]]
    if empty:
        raise ApplicationError(f"{where}, column {empty[0]}: empty")
    money = {k: _field(where, k, text[k], parse_yuan) for k in _MONEY}
    negative = [k for k, v in money.items() if v < 0]
    if negative:
        raise ApplicationError(f"{where}, column {negative[0]}: negative")
    term = _field(where, "term_months", text["term_months"], int)
    if not 1 <= term <= 120:
        raise ApplicationError(f"{where}, column term_months: {term} outside 1..120")
    vehicle_class = text["vehicle_class"] or "new-ice"
    if vehicle_class not in _CLASSES:
        raise ApplicationError(f"{where}, column vehicle_class: {vehicle_class!r} is not one of "
                               f"{', '.join(_CLASSES)}")  # fmt: skip
    return Application(
        application_id=text["application_id"],
        applied_on=_field(where, "applied_on", text["applied_on"], date.fromisoformat),
        id_number=text["id_number"], term_months=term, vin=text["vin"],
        vehicle_year=_field(where, "vehicle_year", text["vehicle_year"], int),
        vehicle_class=vehicle_class,
        identifiers={k: (row.get(k) or "").strip() for k in IDENTIFIER_KINDS},
        **money, **_credit_record(where, text),
    )  # fmt: skip


def _credit_record(where: str, text: Mapping[str, str]) -> dict[str, Any]:
    """The optional credit-record and income-proof columns (empty: not supplied)."""
    found: dict[str, Any] = {}
    if text["credit_overdue"]:
        found["credit_overdue"] = _field(where, "credit_overdue", text["credit_overdue"],
                                         parse_yuan)  # fmt: skip
    for name in ("credit_worst_dpd_24m", "credit_inquiries_6m"):
        if text[name]:
            found[name] = _field(where, name, text[name], int)
    for name, value in found.items():
        if value < 0:
            raise ApplicationError(f"{where}, column {name}: negative")
    if text["income_proof"] and text["income_proof"] not in INCOME_PROOFS:
        raise ApplicationError(f"{where}, column income_proof: {text['income_proof']!r} is not "
                               f"one of {', '.join(INCOME_PROOFS)}")  # fmt: skip
    return {**found, "income_proof": text["income_proof"]}


def application_rings(
    apps: list[Application], max_share: int
) -> tuple[Rings, list[tuple[str, str]]]:
    """The fraud-ring graph of a batch (:mod:`.rings`): applications linked through shared
    identity numbers, VINs and contact identifiers; and each identifier code's (kind, value)."""
    held = (
        (a.application_id, kind, value)
        for a in apps
        for kind, value in (("id_number", a.id_number.upper()), ("vin", a.vin.upper()),
                            *a.identifiers.items())
    )  # fmt: skip
    links, identifiers = encode_links([a.application_id for a in apps], held)
    return find_rings(links, max_share=max_share), identifiers


def ring_report(apps: list[Application], max_share: int) -> list[dict[str, Any]]:
    """The candidate rings of a batch, highest score first: members, score and the shared
    identifiers with how many applications hold each (the evidence)."""
    rings, identifiers = application_rings(apps, max_share)
    return [
        {"ring": k + 1, "score": round(float(rings.score[k]), 4), "size": int(rings.size[k]),
         "members": [apps[i].application_id for i in rings.members(k)],
         "evidence": [{"kind": identifiers[code][0], "value": identifiers[code][1],
                       "holders": holders} for code, holders in rings.evidence(k)]}
        for k in range(len(rings))
    ]  # fmt: skip


def linked_applications(apps: list[Application], max_share: int) -> dict[str, set[str]]:
    """For each application of the batch, the others in its candidate ring."""
    ids = [a.application_id for a in apps]
    rings, _ = application_rings(apps, max_share)
    found: dict[str, set[str]] = {}
    for k in range(len(rings)):
        members = {ids[i] for i in rings.members(k)}
        for member in members:
            found[member] = members - {member}
    return found


def decide_batch(
    apps: list[Application], columns: Mapping[str, np.ndarray], card: Scorecard,
    policy: Policy, *, blacklist: Mapping[str, Collection[str]],
) -> list[Decision]:  # fmt: skip
    """Score ``apps`` (their characteristics in ``columns``, row for row) and decide each."""
    scores = card.score(columns)
    reasons = card.reasons(columns)
    linked = linked_applications(apps, policy.ring_max_share)
    return [
        decide(app, int(score), why, policy, blacklist=blacklist,
               linked=linked.get(app.application_id, ()))
        for app, score, why in zip(apps, scores, reasons, strict=True)
    ]  # fmt: skip


def blacklist_of(rows: Iterable[tuple[str, Mapping[str, str]]]) -> dict[str, set[str]]:
    """A blacklist from rows ``kind,value`` (kind: id_number, vin or an identifier kind)."""
    kinds = {"id_number", "vin", *IDENTIFIER_KINDS}
    listed: dict[str, set[str]] = {}
    for where, row in rows:
        kind, value = (row.get("kind") or "").strip(), (row.get("value") or "").strip()
        if kind not in kinds:
            raise ApplicationError(f"{where}, column kind: {kind!r} is not one of "
                                   f"{', '.join(sorted(kinds))}")  # fmt: skip
        if value:
            listed.setdefault(kind, set()).add(value.upper() if kind in ("id_number", "vin")
                                               else value)  # fmt: skip
    return listed
