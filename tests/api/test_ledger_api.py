"""The ledger through the API, as an auditor uses it: the signed head and its key, a loan's
entries, a proof bundle that the standalone verifier accepts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from lienwatch.adapters.ledger_key import load_or_create_key
from lienwatch.config import Settings
from lienwatch.ledger.verify_proof import check
from lienwatch.services.ledger import LedgerService
from lienwatch.store.db import make_engine, session_factory, transaction
from tests.api.support import api_client, login, sqlite_book


def test_an_auditor_reads_the_head_a_loans_entries_and_a_proof(tmp_path):
    url = sqlite_book(tmp_path)
    key_file = tmp_path / "keys" / "ledger.key"
    settings = Settings(database_url=url, ledger={"key_file": key_file})
    with api_client(url, settings) as client:
        auditor = login(client, "aud")
        assert client.get("/api/v1/ledger/head", headers=auditor).status_code == 404
        key = load_or_create_key(key_file)
        engine = make_engine(url)
        with transaction(session_factory(engine)) as session:
            LedgerService(session, key=key).seal(at=datetime(2026, 3, 1, tzinfo=UTC))
        engine.dispose()
        head = client.get("/api/v1/ledger/head", headers=auditor).json()
        assert head["tree_size"] > 0 and head["public_key"]
        entries = client.get("/api/v1/ledger/entries", params={"subject": "L1"},
                             headers=auditor).json()  # fmt: skip
        assert entries and all(json.loads(e["body"])["subject"] == "L1" for e in entries)
        leaf = entries[0]["leaf_index"]
        bundle = client.get(f"/api/v1/ledger/proofs/{leaf}", headers=auditor).json()
        assert check(bundle) is None  # proven
        missing = client.get(f"/api/v1/ledger/proofs/{head['tree_size']}", headers=auditor)
        assert missing.status_code == 404 and missing.json()["error"]["field"] == "entry"
        collector = login(client, "ann")
        assert client.get("/api/v1/ledger/head", headers=collector).status_code == 403
