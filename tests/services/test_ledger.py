"""The ledger on the store (SQLite and PostgreSQL): sealing, proofs a third party checks, and
tampering with the rows — an edit, a deletion, an insertion, a reordering — found and located."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from lienwatch.errors import NotFoundError
from lienwatch.followup.model import Role
from lienwatch.ledger.entries import EntryKind, LedgerError
from lienwatch.ledger.merkle import leaf_hash, verify_consistency
from lienwatch.ledger.verify_proof import check
from lienwatch.services.ledger import LedgerService, record
from lienwatch.store.repositories import TeamRepository, UserRepository
from tests import factories

AT = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()


def fill(session, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        record(session, EntryKind.CASE_ACTION, subject=f"L{i % 7:06d}",
               at=AT + timedelta(minutes=i), by="ann" if i % 2 else None,
               data={"n": i, "kind": "call", "outcome": "no_answer"})  # fmt: skip
    session.flush()


@pytest.fixture
def sealed(db_session) -> LedgerService:
    """37 entries under one head and 5 more under a second."""
    ledger = LedgerService(db_session, key=KEY)
    fill(db_session, 37)
    assert ledger.seal(at=AT).tree_size == 37
    fill(db_session, 5, start=37)
    assert ledger.seal(at=AT + timedelta(hours=1)).tree_size == 42
    return ledger


def sql(session, statement: str, **params) -> None:
    session.execute(text(statement), params)
    session.expire_all()


def test_a_sealed_ledger_verifies_and_nothing_pending_makes_no_head(sealed, db_session):
    report = sealed.verify()
    assert report.as_dict() == {"ok": True, "entries": 42, "heads": 2, "pending": 0,
                                "problems": []}  # fmt: skip
    assert sealed.seal(at=AT + timedelta(hours=2)) is None
    fill(db_session, 1, start=42)
    assert sealed.verify().pending == 1
    with pytest.raises(NotFoundError, match="no sealed entry 42"):
        sealed.prove(leaf_index=42)


def test_every_entry_has_a_proof_that_stands_alone(sealed):
    for index in range(42):
        bundle = sealed.prove(leaf_index=index)
        assert check(bundle) is None, index
        assert json.loads(bundle["entry"])["data"]["n"] == index


def test_a_proof_fails_after_any_byte_of_it_changes(sealed):
    text_ = json.dumps(sealed.prove(leaf_index=29))
    assert check(json.loads(text_)) is None
    for position in range(len(text_)):
        changed = text_[:position] + chr(ord(text_[position]) ^ 1) + text_[position + 1:]
        try:
            bundle = json.loads(changed)
        except ValueError:
            continue  # no longer JSON: refused before any check
        assert check(bundle) is not None, (position, text_[position])


def test_an_older_head_is_proven_a_prefix_of_a_newer_one(sealed):
    proof = sealed.prove_consistency(old_size=37, new_size=42)
    old, new = proof["old"], proof["new"]
    path = [bytes.fromhex(h) for h in proof["consistency_path"]]
    assert verify_consistency(37, 42, bytes.fromhex(old["root"]), bytes.fromhex(new["root"]),
                              path)  # fmt: skip
    with pytest.raises(NotFoundError, match="no signed head of 40 entries"):
        sealed.prove_consistency(old_size=40, new_size=42)


def test_an_edited_entry_is_named(sealed, db_session):
    sql(db_session, "UPDATE ledger_entries SET body = replace(body, 'no_answer', 'promise') "
                    "WHERE leaf_index = 10")  # fmt: skip
    problems = sealed.verify().problems
    assert "entry 10: its content is not what was recorded" in problems
    assert any(p.startswith("head 37: the entries no longer give its root") for p in problems)


def test_an_edit_that_rewrites_its_hash_too_is_caught_by_the_signed_head(sealed, db_session):
    sql(db_session, "UPDATE ledger_entries SET body = replace(body, 'no_answer', 'promise') "
                    "WHERE leaf_index = 40")  # fmt: skip
    body = db_session.execute(text("SELECT body FROM ledger_entries WHERE leaf_index = 40"))
    sql(db_session, "UPDATE ledger_nodes SET hash = :h WHERE level = 0 AND node_index = 40",
        h=leaf_hash(body.scalar_one().encode()))  # fmt: skip
    problems = sealed.verify().problems
    assert problems == ["head 42: the entries no longer give its root (a change among entries "
                        "37 to 41)"]  # fmt: skip


def test_a_deleted_entry_is_named(sealed, db_session):
    sql(db_session, "DELETE FROM ledger_entries WHERE leaf_index = 12")
    problems = sealed.verify().problems
    assert problems[0] == "entry 12 is missing"
    sql(db_session, "DELETE FROM ledger_entries WHERE leaf_index >= 40")
    assert "head 42: entries 40 to 41 are missing" in sealed.verify().problems


def test_reordered_entries_are_named_both(sealed, db_session):
    sql(db_session, "UPDATE ledger_entries SET leaf_index = -1 WHERE leaf_index = 3")
    sql(db_session, "UPDATE ledger_entries SET leaf_index = 3 WHERE leaf_index = 4")
    sql(db_session, "UPDATE ledger_entries SET leaf_index = 4 WHERE leaf_index = -1")
    problems = sealed.verify().problems
    assert {"entry 3: its content is not what was recorded",
            "entry 4: its content is not what was recorded"} <= set(problems)  # fmt: skip


def test_an_inserted_entry_is_named(sealed, db_session):
    sql(db_session, "INSERT INTO ledger_entries (leaf_index, kind, subject, body, recorded_at) "
                    "VALUES (42, 'case_action', 'L000001', '{}', :at)", at=AT)  # fmt: skip
    assert sealed.verify().problems == ["entry 42: no hash was recorded for it"]


def test_a_forged_head_fails_its_signature(sealed, db_session):
    sql(db_session, "UPDATE ledger_heads SET tree_size = 36 WHERE tree_size = 37")
    problems = sealed.verify().problems
    assert "head 36: the signature does not verify" in problems


def test_another_key_neither_seals_nor_is_taken_for_tampering(sealed, db_session):
    """Serving a database with the wrong ``[ledger] key_file`` (a new key made in another
    folder): sealing is refused and nothing pending is lost; verifying names the key, not a
    forged signature."""
    other = Ed25519PrivateKey.generate()
    fill(db_session, 3, start=42)
    with pytest.raises(LedgerError, match=r"^key: the ledger's heads are signed by key "
                                          r"[0-9a-f]{16}, and this key is [0-9a-f]{16}: set "
                                          r"\[ledger\] key_file"):  # fmt: skip
        LedgerService(db_session, key=other).seal(at=AT + timedelta(hours=2))
    report = LedgerService(db_session, public_key=other.public_key()).verify()
    assert report.pending == 3 and len(report.problems) == 2  # one per head
    assert all(" not by this key " in problem and "does not verify" not in problem
               for problem in report.problems)  # fmt: skip
    assert sealed.seal(at=AT + timedelta(hours=2)).tree_size == 45  # the right key seals them


def test_contracts_and_collateral_registrations(db_session):
    ledger = LedgerService(db_session, key=KEY)
    with pytest.raises(NotFoundError, match="by: no user 'sam'"):
        ledger.register_contract(document=b"x", loan_ref="L000001", parties=["lender"],
                                 signed_at=AT, method="wet", by="sam", at=AT)  # fmt: skip
    TeamRepository(db_session).add(name="east")
    UserRepository(db_session).add(username="sam", role=Role.SUPERVISOR, team="east")
    document = b"%PDF-1.7 loan contract L000001 signed"
    fields = ledger.register_contract(document=document, loan_ref="L000001",
                                     parties=["lender", "borrower B1"], signed_at=AT,
                                     method="CFCA e-signature", by="sam", at=AT)  # fmt: skip
    assert json.loads(ledger.find_contract(document).body) == fields
    assert fields["data"]["parties"] == ["lender", "borrower B1"]
    assert ledger.find_contract(document + b" ") is None
    with pytest.raises(LedgerError, match="registered already"):
        ledger.register_contract(document=document, loan_ref="L000001", parties=["x"],
                                 signed_at=AT, method="wet", by="sam", at=AT)  # fmt: skip
    vin = factories.loan(db_session, "L000001").vehicle.vin
    pledge = {"plate": "京A12345", "authority": "北京市车管所", "certificate": "110000123",
              "registered_on": date(2026, 1, 16), "by": "sam", "at": AT}  # fmt: skip
    with pytest.raises(NotFoundError, match="loan: no loan 'L9'"):
        ledger.register_collateral(vin=vin, loan_ref="L9", **pledge)
    with pytest.raises(LedgerError, match=f"secured on vehicle {vin}, not LSVAU2180N2183294"):
        ledger.register_collateral(vin="LSVAU2180N2183294", loan_ref="L000001", **pledge)
    ledger.register_collateral(vin=vin, loan_ref="L000001", **pledge)
    registration = ledger.collateral_registration(vin)
    assert registration is not None and registration.loan == "L000001"
    with pytest.raises(LedgerError, match="unreleased registration"):
        ledger.register_collateral(vin=vin, loan_ref="L000001", **pledge)
    with pytest.raises(LedgerError, match="before the registration on 2026-01-16"):
        ledger.release_collateral(vin=vin, released_on=date(2026, 1, 15), certificate="R1",
                                  by="sam", at=AT)  # fmt: skip
    ledger.release_collateral(vin=vin, released_on=date(2027, 1, 16), certificate="R1",
                              by="sam", at=AT)  # fmt: skip
    assert ledger.collateral_registration(vin) is None
    with pytest.raises(LedgerError, match="no registration to release"):
        ledger.release_collateral(vin=vin, released_on=date(2027, 1, 16), certificate="R1",
                                  by="sam", at=AT)  # fmt: skip
    db_session.flush()
    ledger.seal(at=AT)
    assert ledger.verify().ok
    body = json.loads(ledger.prove(leaf_index=1)["entry"])
    assert (body["kind"], body["subject"], body["data"]["plate"]) == (
        "collateral_registered", vin, "京A12345")  # fmt: skip


def test_an_entry_has_no_floats():
    with pytest.raises(LedgerError, match=r"entry\.data\.amount: float"):
        record(None, EntryKind.PAYMENT_POSTED, subject="L1", at=AT, by=None,
               data={"amount": 12.5})  # fmt: skip
