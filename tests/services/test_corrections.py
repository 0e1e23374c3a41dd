"""Corrections of recorded data on both backends: the change and its ledger entry commit
together, personal data goes into the ledger by digest only, bad input changes nothing."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from lienwatch.errors import LienwatchError, NotFoundError
from lienwatch.services.corrections import correct
from lienwatch.store.db import write_deferred
from lienwatch.store.tables import LedgerEntry, User
from tests import factories

AT = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)


@pytest.fixture
def loan(db_session):
    db_session.add(User(username="ann", display_name="ann", role="agent", team="east"))
    return factories.loan(db_session, "L1")


def entries(session) -> list[dict]:
    write_deferred(session)
    return [json.loads(e.body) for e in session.scalars(
        select(LedgerEntry).where(LedgerEntry.kind == "correction").order_by(LedgerEntry.id))]


def test_a_new_phone_and_city_are_recorded_with_the_old_values(db_session, loan):
    borrower = loan.borrower
    done = correct(db_session, kind="borrower", key=borrower.ref,
                   values={"phone": "13912345678", "city": "Tianjin", "province_code": "11"},
                   why="borrower called in with a new number", by="ann", at=AT)  # fmt: skip
    assert borrower.phone == "13912345678" and borrower.city == "Tianjin"
    assert set(done.changes) == {"phone", "city"}  # the province was already 11
    assert done.as_dict()["changes"] == {"phone": "changed",
                                         "city": {"old": "Beijing", "new": "Tianjin"}}
    [entry] = entries(db_session)
    assert (entry["subject"], entry["by"], entry["at"]) == (borrower.ref, "ann", AT.isoformat())
    assert entry["data"] == {
        "record": "borrower", "why": "borrower called in with a new number",
        "changes": {
            "phone": {"old": {"sha256": hashlib.sha256(b"13800000001").hexdigest()},
                      "new": {"sha256": hashlib.sha256(b"13912345678").hexdigest()}},
            "city": {"old": "Beijing", "new": "Tianjin"},
        },
    }  # fmt: skip
    assert "13912345678" not in json.dumps(entry)


def test_a_plate_change_and_a_correction_that_changes_nothing(db_session, loan):
    vin = loan.vehicle.vin
    correct(db_session, kind="vehicle", key=vin, values={"plate": "京B54321"},
            why="re-registered", by="ann", at=AT)  # fmt: skip
    assert loan.vehicle.plate == "京B54321"
    again = correct(db_session, kind="vehicle", key=vin, values={"plate": "京B54321"},
                    why="re-registered", by="ann", at=AT)  # fmt: skip
    assert again.changes == {}
    assert [e["data"]["changes"] for e in entries(db_session)] == [
        {"plate": {"old": "京A12345", "new": "京B54321"}}]


def test_a_vehicle_is_given_a_permitted_area_and_it_is_cleared(db_session, loan):
    vin = loan.vehicle.vin
    for area in ("hangzhou-yard", " "):
        correct(db_session, kind="vehicle", key=vin, values={"permitted_area": area},
                why="lender's region for the car", by="ann", at=AT)  # fmt: skip
    assert loan.vehicle.permitted_area is None
    assert [e["data"]["changes"] for e in entries(db_session)] == [
        {"permitted_area": {"old": None, "new": "hangzhou-yard"}},
        {"permitted_area": {"old": "hangzhou-yard", "new": None}},
    ]


@pytest.mark.parametrize(("kind", "key", "values", "why", "by", "error", "message"), [
    ("borrower", "B-L1", {"phone": ""}, "x", "ann", LienwatchError, "phone: must not be empty"),
    ("borrower", "B-L1", {"province_code": "99"}, "x", "ann", LienwatchError,
     "province_code: '99' is not a GB/T 2260 province code"),
    ("borrower", "B-L1", {"name": "x"}, "x", "ann", LienwatchError,
     "name: not a field a borrower correction may change"),
    ("borrower", "B-L1", {"city": "x"}, " ", "ann", LienwatchError, "why: a correction needs"),
    ("borrower", "B-L1", {"city": "x"}, "x", "zed", NotFoundError, "by: no user 'zed'"),
    ("borrower", "B-NOPE", {"city": "x"}, "x", "ann", NotFoundError, "borrower: no borrower"),
    ("loan", "L1", {"city": "x"}, "x", "ann", LienwatchError, "kind: corrections are made to"),
])  # fmt: skip
def test_bad_input_is_named_and_changes_nothing(db_session, loan, kind, key, values, why, by,
                                                error, message):  # fmt: skip
    city = loan.borrower.city
    with pytest.raises(error, match=message):
        correct(db_session, kind=kind, key=key, values=values, why=why, by=by, at=AT)
    assert loan.borrower.city == city and entries(db_session) == []
