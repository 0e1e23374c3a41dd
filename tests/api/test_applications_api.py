"""``POST /api/v1/applications``: the pre-loan decision on a batch with its reasons, the same
as ``lienwatch risk score`` on docs/risk.md's worked example; bad rows named; credit roles
only."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from tests.api.support import api_client, login, sqlite_book

EXAMPLE = Path(__file__).parents[2] / "docs" / "risk.md"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with api_client(sqlite_book(tmp_path_factory.mktemp("applications"))) as client:
        yield client


def _example_rows() -> list[dict[str, str]]:
    """The three applications of the worked example in docs/risk.md."""
    text = EXAMPLE.read_text(encoding="utf-8")
    block = re.search(r"cat > applications.csv <<END\n(.*?)\nEND", text, re.S)
    assert block is not None
    return list(csv.DictReader(io.StringIO(block.group(1))))


def test_an_analyst_gets_each_decision_with_its_reasons(client):
    answer = client.post("/api/v1/applications", json={"applications": _example_rows()},
                         headers=login(client, "nia"))  # fmt: skip
    assert answer.status_code == 200, answer.text
    got = {d["application_id"]: d for d in answer.json()["decisions"]}
    assert {k: (d["score"], d["grade"], d["decision"]) for k, d in got.items()} == {
        "A1": (569, "A", "approve"), "A2": (479, "D", "decline"), "A3": (573, "A", "decline")}
    assert (got["A1"]["amount"], got["A1"]["apr"], got["A1"]["term_months"]) == (
        "150000.00", "0.069", 36)  # fmt: skip
    codes = {k: [r["code"] for r in d["reasons"]] for k, d in got.items()}
    assert codes["A2"][:3] == ["PRICE_VS_APPRAISAL", "LINKED_APPLICATIONS", "AMOUNT_DTI"]
    assert codes["A3"][0] == "VIN_CHECK_DIGIT" and len(codes["A1"]) == 4


def test_a_bad_row_is_named_and_nothing_is_decided(client):
    rows = _example_rows()
    rows[1]["amount"] = "lots"
    headers = login(client, "sam")
    bad = client.post("/api/v1/applications", json={"applications": rows}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["error"]["message"] == "applications[1], column amount: bad value 'lots'"
    del rows[2]["vin"]
    missing = client.post("/api/v1/applications", json={"applications": rows}, headers=headers)
    assert missing.json()["error"]["message"] == "applications[2], column vin: missing"
    empty = client.post("/api/v1/applications", json={"applications": []}, headers=headers)
    assert empty.status_code == 422


def test_collectors_and_auditors_may_not_decide(client):
    for user in ("ann", "aud", "adm"):
        answer = client.post("/api/v1/applications", json={"applications": _example_rows()},
                             headers=login(client, user))  # fmt: skip
        assert answer.status_code == 403, user
