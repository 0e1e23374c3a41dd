"""``POST /api/v1/applications``: the pre-loan decision on a batch with its reasons, the same
as ``lienwatch risk score`` on docs/risk.md's worked example; bad rows named; credit roles
only."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from lienwatch.clock import now
from lienwatch.data import german_credit_path
from lienwatch.risk.datasets import GERMAN_CREDIT
from lienwatch.risk.scorecard import fit_scorecard
from lienwatch.services.applications import decide_applications, german_credit, shipped_scorecard
from lienwatch.services.origination import (
    THROUGH_THE_DOOR,
    fit_reference,
    scorecard_id,
    scorecard_stability,
)
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import ApplicationRecord, ScorecardRecord
from tests.api.support import api_client, login, sqlite_book

EXAMPLE = Path(__file__).parents[2] / "docs" / "risk.md"


@pytest.fixture(scope="module")
def book_url(tmp_path_factory):
    return sqlite_book(tmp_path_factory.mktemp("applications"))


@pytest.fixture(scope="module")
def client(book_url):
    with api_client(book_url) as client:
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


def test_each_decision_is_kept_with_the_attributes_the_scorecard_binned(client, book_url):
    """What the report's scorecard stability reads: score, grade, decision and the bin of every
    kept characteristic; the same application decided again replaces the stored one."""
    headers = login(client, "nia")
    rows = _example_rows()
    assert client.post("/api/v1/applications", json={"applications": rows},
                       headers=headers).status_code == 200  # fmt: skip
    rows[0]["duration_in_month"] = "60"
    again = client.post("/api/v1/applications", json={"applications": rows[:1]},
                        headers=headers)  # fmt: skip
    engine = make_engine(book_url)
    with transaction(session_factory(engine)) as session:
        stored = {a.ref: a for a in session.scalars(select(ApplicationRecord))}
        assert sorted(stored) == ["A1", "A2", "A3"]
        assert session.scalar(select(func.count()).select_from(ScorecardRecord)) == 1
        assert (stored["A2"].score, stored["A2"].grade, stored["A2"].decision) == (
            479, "D", "decline")
        a1 = stored["A1"]
        assert a1.score == again.json()["decisions"][0]["score"]
        card = shipped_scorecard()
        assert set(a1.attributes) == set(card.names)
        duration = next(c for c in card.characteristics if c.name == "duration_in_month")
        assert a1.attributes["duration_in_month"] == duration.binning.bins[
            int(duration.binning.bin_index(np.array([60.0]))[0])].label
    engine.dispose()


def test_applications_are_scored_by_the_scorecard_in_force_and_all_watched(tmp_path):
    """A book whose origination stored its own scorecard (as the demo's does): the API scores
    with that one, not the shipped one, and every decision it kept, declines included, is
    the population its stability is watched on."""
    url = sqlite_book(tmp_path)
    data = german_credit()
    half = data.rows(np.arange(0, data.bad.size, 2))
    card = fit_scorecard(half.columns, half.bad, GERMAN_CREDIT)
    engine = make_engine(url)
    factory = session_factory(engine)
    with transaction(factory) as session:
        in_force = scorecard_id(session, card, fit_reference(card, half.columns), at=now())
    with german_credit_path().open(encoding="utf-8") as handle:
        german = next(csv.DictReader(handle))
    rows = [{**{name: german[name] for name in card.names}, **row} for row in _example_rows()]
    with api_client(url) as client:
        answer = client.post("/api/v1/applications", json={"applications": rows},
                             headers=login(client, "nia"))  # fmt: skip
    assert answer.status_code == 200, answer.text
    got = {d["application_id"]: (d["score"], d["decision"]) for d in answer.json()["decisions"]}
    expected = {d.application_id: (d.score, d.decision)
                for d in decide_applications(rows, card=card)}  # fmt: skip
    shipped = {d.application_id: d.score for d in decide_applications(rows)}
    assert got == expected and {k: v[0] for k, v in got.items()} != shipped
    with transaction(factory) as session:
        stored = list(session.scalars(select(ApplicationRecord)))
        assert {a.scorecard_id for a in stored} == {in_force}
        assert session.scalar(select(func.count()).select_from(ScorecardRecord)) == 1
        day = max(a.decided_on for a in stored)
        found = scorecard_stability(session, day=day)
    assert (found["population"], found["applications"]) == (THROUGH_THE_DOOR, len(rows))
    assert "decline" in {decision for _, decision in got.values()}
    engine.dispose()
