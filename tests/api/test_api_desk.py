"""A supervisor's desk and the book's remaining verbs through the API: tracker command
requests answered by a supervisor of the team, reassignment and escalation of a case,
repossession orders refused below the DPD floor, payment reversal (idempotent), loan search
(a phone search audited), API tokens listed and revoked, the timeline by pages, a strategy
version published. Each refusal
in the one error body."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from importlib import resources

from sqlalchemy import select

from lienwatch import clock
from lienwatch.config import Settings
from lienwatch.services.auth import AuthService
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Loan
from tests import factories
from tests.api.support import BOTH, TICK_AT, api_client, login, sqlite_book


def error(answer, status: int, code: str, field: str | None = None) -> str:
    """The message of an error answer, checked to be ``status`` in the one error body."""
    assert answer.status_code == status, answer.text
    body = answer.json()["error"]
    assert body["code"] == code, answer.text
    if field is not None:
        assert body["field"] == field, answer.text
    return body["message"]


@BOTH
def test_an_agents_request_waits_for_the_teams_supervisor_who_approves_it_once(book):
    client, _ = book
    ann, sam = login(client, "ann"), login(client, "sam")
    asked = client.post("/api/v1/loans/L1/tracker-command-requests", headers=ann,
                        json={"command": "immobilise", "why": "car at a pawn yard"})  # fmt: skip
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert (request["loan"], request["command"], request["requested_by"], request["why"]) == (
        "L1", "immobilise", "ann", "car at a pawn yard")
    again = client.post("/api/v1/loans/L1/tracker-command-requests", headers=sam,
                        json={"command": "immobilise"})  # fmt: skip
    assert again.json() == request  # one request, asked twice
    error(client.post("/api/v1/loans/L2/tracker-command-requests", headers=ann,
                      json={"command": "immobilise"}), 404, "not_found", "ref")  # fmt: skip
    waiting = client.get("/api/v1/tracker-command-requests", headers=sam).json()["items"]
    assert [w["request"] for w in waiting] == [request["request"]]
    path = f"/api/v1/tracker-command-requests/{request['request']}"
    error(client.post(f"{path}/approve", headers=ann), 403, "forbidden")
    sent = client.post(f"{path}/approve", headers=sam)
    assert sent.status_code == 201 and sent.json()["outcome"] == "sent", sent.text
    assert client.get("/api/v1/tracker-command-requests", headers=sam).json()["items"] == []
    error(client.post(f"{path}/decline", headers=sam, json={"why": "too late"}), 409,
          "conflict", "request_id")  # fmt: skip
    error(client.post("/api/v1/tracker-command-requests/999999/approve", headers=sam), 404,
          "not_found", "request_id")  # fmt: skip
    timeline = client.get(f"/api/v1/cases/{request['case']}/timeline", headers=ann).json()
    outcomes = [i["details"]["outcome"] for i in timeline["items"]
                if i["kind"] == "action" and i["details"]["action_kind"] == "tracker_command"]
    assert outcomes == ["requested", "sent"]


def test_a_supervisor_declines_a_request_saying_why_and_not_another_teams(book):
    client, _ = book
    ann, bob, sam = login(client, "ann"), login(client, "bob"), login(client, "sam")
    mine = client.post("/api/v1/loans/L1/tracker-command-requests", headers=ann,
                       json={"command": "fuel_cut"}).json()  # fmt: skip
    west = client.post("/api/v1/loans/L2/tracker-command-requests", headers=bob,
                       json={"command": "fuel_cut"}).json()  # fmt: skip
    assert [w["loan"] for w in client.get("/api/v1/tracker-command-requests",
                                          headers=sam).json()["items"]] == ["L1"]  # fmt: skip
    error(client.post(f"/api/v1/tracker-command-requests/{west['request']}/approve",
                      headers=sam), 404, "not_found", "request_id")  # fmt: skip
    path = f"/api/v1/tracker-command-requests/{mine['request']}/decline"
    error(client.post(path, headers=sam, json={}), 422, "invalid", "why")
    declined = client.post(path, headers=sam, json={"why": "the borrower paid by phone"})
    assert declined.status_code == 200 and declined.json()["outcome"] == "declined"
    error(client.post("/api/v1/loans/L1/tracker-command-requests", headers=ann,
                      json={"command": "explode"}), 422, "invalid", "command")  # fmt: skip


def test_a_supervisor_reassigns_and_escalates_a_case_of_the_team(book):
    client, _ = book
    adm, sam = login(client, "adm"), login(client, "sam")
    added = client.post("/api/v1/users", headers=adm, json={"username": "amy", "role": "agent",
                                                            "team": "east"})  # fmt: skip
    assert added.status_code == 201, added.text
    [top] = client.get("/api/v1/queue", headers=login(client, "ann")).json()["items"]
    case = top["case"]
    moved = client.post(f"/api/v1/cases/{case}/reassign", headers=sam, json={"to": "amy"})
    assert moved.status_code == 200 and moved.json()["assignee"] == "amy", moved.text
    error(client.get(f"/api/v1/cases/{case}", headers=login(client, "ann")), 404, "not_found")
    error(client.post(f"/api/v1/cases/{case}/reassign", headers=sam, json={"to": "bob"}), 422,
          "invalid", "to")  # fmt: skip
    west = client.get("/api/v1/queue", headers=login(client, "bob")).json()["items"][0]["case"]
    error(client.post(f"/api/v1/cases/{west}/reassign", headers=sam, json={"to": "amy"}), 404,
          "not_found", "case_id")  # fmt: skip
    error(client.post(f"/api/v1/cases/{case}/escalate", headers=sam,
                      json={"to": "repossession", "why": "x"}), 422, "invalid", "to")  # fmt: skip
    assert client.get(f"/api/v1/cases/{case}", headers=sam).json()["status"] == "escalated"
    up = client.post(f"/api/v1/cases/{case}/escalate", headers=sam,
                     json={"to": "legal", "why": "no contact for ten days"})  # fmt: skip
    assert up.status_code == 200 and up.json()["status"] == "legal", up.text
    error(client.post(f"/api/v1/cases/{case}/escalate", headers=sam,
                      json={"to": "escalated", "why": "back"}), 422, "invalid",
          "status")  # fmt: skip


def test_a_repossession_order_below_the_dpd_floor_is_refused_and_nothing_waits(book):
    client, _ = book
    sam = login(client, "sam")
    with clock.travel(TICK_AT):  # the day of the book's last nightly run: DPD 6
        refused = client.post("/api/v1/loans/L1/repossessions", headers=sam,
                              json={"route": "court_order", "legal_ref": "(2026) 沪01民初1号",
                                    "why": "no payment"})  # fmt: skip
        towing = client.post("/api/v1/loans/L1/repossessions", headers=sam,
                             json={"route": "self_help", "why": "no payment"})  # fmt: skip
    message = error(refused, 422, "invalid")
    assert "dpd" in message.lower(), message
    assert "self_help" in error(towing, 422, "invalid")
    assert client.get("/api/v1/repossessions", headers=sam).json()["items"] == []
    error(client.get("/api/v1/repossessions/999999/steps", headers=sam), 404, "not_found",
          "repossession_id")  # fmt: skip
    error(client.post("/api/v1/repossessions/999999/recovery", headers=sam,
                      json={"recovered_on": "2026-02-20", "place": "lot", "condition": "good",
                            "property_returned": True}), 404, "not_found")  # fmt: skip


@BOTH
def test_a_payment_reversal_is_idempotent(book):
    client, _ = book
    sam = login(client, "sam")
    payment = {"external_id": "BANK-0009", "paid_on": "2026-02-21", "amount_fen": 900_000}
    assert client.post("/api/v1/loans/L1/payments", headers=sam, json=payment).status_code == 201
    first = client.post("/api/v1/payments/BANK-0009/reverse", headers=sam,
                        json={"reason": "bounced: insufficient funds"})  # fmt: skip
    assert first.status_code == 201 and first.json()["reversed_now"], first.text
    again = client.post("/api/v1/payments/BANK-0009/reverse", headers=sam,
                        json={"reason": "bounced: insufficient funds"})  # fmt: skip
    assert again.status_code == 200 and not again.json()["reversed_now"]
    assert again.json()["reversed_at"] == first.json()["reversed_at"]
    listed = client.get("/api/v1/loans/L1/payments", headers=sam).json()["items"]
    assert listed[0]["reversal_reason"] == "bounced: insufficient funds"
    error(client.post("/api/v1/payments/NOPE/reverse", headers=sam, json={"reason": "x"}), 404,
          "not_found")  # fmt: skip
    error(client.post("/api/v1/payments/BANK-0009/reverse", headers=login(client, "ann"),
                      json={"reason": "x"}), 403, "forbidden")  # fmt: skip


def test_loans_are_found_by_reference_plate_vin_or_phone_and_a_phone_search_is_audited(book):
    client, _ = book
    ann, nia = login(client, "ann"), login(client, "nia")
    found = client.get("/api/v1/search/loans?q=l&by=ref", headers=nia).json()["items"]
    assert [f["loan"] for f in found] == ["L1", "L2"]
    assert [f["loan"] for f in client.get("/api/v1/search/loans?q=L",
                                          headers=ann).json()["items"]] == ["L1"]  # fmt: skip
    by_phone = client.get("/api/v1/search/loans?q=13800000001&by=phone", headers=ann).json()
    assert [(f["loan"], f["phone"]) for f in by_phone["items"]] == [("L1", "138****0001")]
    log = client.get("/api/v1/audit?action=personal_data_viewed",
                     headers=login(client, "aud")).json()["items"]  # fmt: skip
    assert [(e["actor"], e["subject"]) for e in log] == [("ann", "phone search: 1 loans")]
    error(client.get("/api/v1/search/loans?q=L&by=name", headers=nia), 422, "invalid", "by")


def test_api_tokens_are_listed_without_their_secret_and_revoked_by_their_owner(book):
    client, url = book
    engine = make_engine(url)
    with transaction(session_factory(engine)) as session:
        service = AuthService(session)
        for owner in ("nia", "aud"):
            service.issue_api_token(username=owner, name=f"{owner}'s export", scopes=["read"],
                                    by="adm", at=clock.now())  # fmt: skip
        secret = service.issue_api_token(username="nia", name="nightly", scopes=["read"],
                                         by="adm", at=clock.now()).token  # fmt: skip
    engine.dispose()
    nia, adm = login(client, "nia"), login(client, "adm")
    mine = client.get("/api/v1/tokens", headers=nia).json()
    assert [t["name"] for t in mine["items"]] == ["nightly", "nia's export"]
    assert "token" not in mine["items"][0] and "digest" not in mine["items"][0]
    everyone = client.get("/api/v1/tokens?limit=2", headers=adm).json()
    rest = client.get(f"/api/v1/tokens?cursor={everyone['next_cursor']}", headers=adm).json()
    assert len(everyone["items"] + rest["items"]) == 3
    aud_token = next(t for t in rest["items"] + everyone["items"] if t["username"] == "aud")
    error(client.post(f"/api/v1/tokens/{aud_token['id']}/revoke", headers=nia), 404,
          "not_found", "token_id")  # fmt: skip
    nightly = mine["items"][0]
    bearer = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/loans", headers=bearer).status_code == 200
    revoked = client.post(f"/api/v1/tokens/{nightly['id']}/revoke", headers=nia)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"], revoked.text
    with clock.travel(clock.now() + timedelta(seconds=10)):  # past the cache's trust
        error(client.get("/api/v1/loans", headers=bearer), 401, "unauthenticated")
    again = client.post(f"/api/v1/tokens/{nightly['id']}/revoke", headers=adm).json()
    assert again["revoked_at"] == revoked.json()["revoked_at"]
    log = client.get("/api/v1/audit?action=token_revoked",
                     headers=login(client, "aud")).json()["items"]  # fmt: skip
    assert [(e["actor"], e["subject"]) for e in log] == [("nia", "nia")]


def test_the_timeline_pages_by_cursor(book):
    client, _ = book
    ann = login(client, "ann")
    [top] = client.get("/api/v1/queue", headers=ann).json()["items"]
    path = f"/api/v1/cases/{top['case']}/timeline"
    whole = client.get(path, headers=ann).json()
    assert whole["next_cursor"] is None and len(whole["items"]) > 3
    pages, cursor = [], None
    while True:
        page = client.get(path, headers=ann,
                          params={"limit": 2} | ({"cursor": cursor} if cursor else {})).json()
        pages += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [i["id"] for i in pages] == [i["id"] for i in whole["items"]]
    error(client.get(path, headers=ann, params={"cursor": "bm9wZQ"}), 422, "invalid", "cursor")


def test_an_analyst_publishes_a_new_strategy_version_the_engine_then_uses(book):
    client, _ = book
    nia = login(client, "nia")
    shipped = tomllib.loads((resources.files("lienwatch.followup") / "strategies/cn.toml")
                            .read_text(encoding="utf-8"))  # fmt: skip
    before = client.get("/api/v1/strategy", headers=nia).json()
    assert (before["name"], before["version"]) == (shipped["name"], shipped["version"])
    newer = {**shipped, "version": shipped["version"] + 1}
    published = client.post("/api/v1/strategy", headers=nia, json={"document": newer})
    assert published.status_code == 201, published.text
    assert client.get("/api/v1/strategy", headers=nia).json()["version"] == newer["version"]
    error(client.post("/api/v1/strategy", headers=nia, json={"document": newer}), 409,
          "conflict", "document.version")  # fmt: skip
    error(client.post("/api/v1/strategy", headers=nia,
                      json={"document": {**newer, "version": 9, "name": "other"}}), 422,
          "invalid", "document.name")  # fmt: skip
    broken = {**newer, "version": 9, "ladders": []}
    error(client.post("/api/v1/strategy", headers=nia, json={"document": broken}), 422,
          "invalid", "document")  # fmt: skip
    error(client.post("/api/v1/strategy", headers=login(client, "sam"),
                      json={"document": newer}), 403, "forbidden")  # fmt: skip


def test_a_repossession_is_ordered_approved_by_another_supervisor_and_recovered(tmp_path):
    url = sqlite_book(tmp_path)
    engine = make_engine(url)
    with transaction(session_factory(engine)) as session:
        factories.pledge(session, session.scalar(select(Loan).where(Loan.ref == "L1")))
    engine.dispose()
    settings = Settings(database_url=url, repossession={"min_dpd": 5})  # L1 is 6 days late
    with api_client(url, settings) as client, clock.travel(TICK_AT):
        sue = client.post("/api/v1/users", headers=login(client, "adm"),
                          json={"username": "sue", "role": "supervisor", "team": "east",
                                "password": "another long password"})  # fmt: skip
        assert sue.status_code == 201, sue.text
        sam, sue = login(client, "sam"), login(client, "sue", "another long password")
        ordered = client.post("/api/v1/loans/L1/repossessions", headers=sam,
                              json={"route": "court_order", "legal_ref": "(2026)沪0115执1号",
                                    "why": "no payment, car hidden"})  # fmt: skip
        assert ordered.status_code == 201, ordered.text
        order = ordered.json()
        assert (order["status"], order["ordered_by"], order["dpd_at_order"]) == (
            "ordered", "sam", 6)
        assert [r["id"] for r in client.get("/api/v1/repossessions",
                                            headers=sue).json()["items"]] == [order["id"]]
        path = f"/api/v1/repossessions/{order['id']}"
        steps = client.get(f"{path}/steps", headers=sue).json()
        assert [s["step"] for s in steps["items"]] == ["order"]
        assert steps["waiting_for"]["step"] == "approve"
        error(client.post(f"{path}/approve", headers=sam, json={"assignee": "ann"}), 422,
              "invalid")  # fmt: skip
        approved = client.post(f"{path}/approve", headers=sue, json={"assignee": "ann"})
        assert approved.status_code == 200 and approved.json()["approved_by"] == "sue"
        assert client.get("/api/v1/repossessions", headers=sue).json()["items"] == []
        recovered = client.post(f"{path}/recovery", headers=sue,
                                json={"recovered_on": "2026-02-21", "place": "Pudong lot 4",
                                      "condition": "intact", "property_returned": True})
        assert recovered.status_code == 200 and recovered.json()["status"] == "recovered"
        steps = client.get(f"{path}/steps", headers=sue).json()
        assert [s["step"] for s in steps["items"]][:3] == ["order", "approve", "recover"]
        error(client.post("/api/v1/loans/L1/repossessions", headers=sam,
                          json={"route": "court_order", "legal_ref": "(2026)沪0115执2号",
                                "why": "again"}), 422, "invalid",
              "loan_id")  # fmt: skip


@BOTH
def test_user_changes_are_in_the_audit_log_and_users_come_by_pages(book):
    client, _ = book
    adm, aud = login(client, "adm"), login(client, "aud")
    moved = client.post("/api/v1/users/bob/role", headers=adm,
                        json={"role": "supervisor", "team": "west"})  # fmt: skip
    assert moved.status_code == 200 and moved.json()["role"] == "supervisor", moved.text
    assert client.post("/api/v1/users/bob/disable", headers=adm).json()["active"] is False
    error(client.post("/api/v1/users/adm/role", headers=adm, json={"role": "agent",
                                                                   "team": "east"}),
          422, "invalid", "username")  # fmt: skip
    error(client.post("/api/v1/users/adm/disable", headers=adm), 422, "invalid", "username")
    error(client.post("/api/v1/users/bob/enable", headers=aud), 403, "forbidden")
    entries = client.get("/api/v1/audit", headers=aud).json()["items"]
    changes = [(e["actor"], e["action"], e["subject"], e["details"]) for e in entries
               if e["action"] in ("role_changed", "user_disabled")]  # fmt: skip
    assert changes == [
        ("adm", "user_disabled", "bob", {"active": False}),
        ("adm", "role_changed", "bob", {"from": {"role": "agent", "team": "west"},
                                        "to": {"role": "supervisor", "team": "west"}}),
    ]
    assert all(e["client"] and e["at"] for e in entries)
    names, cursor = [], None
    while True:
        page = client.get("/api/v1/users", headers=adm,
                          params={"limit": 4, **({"cursor": cursor} if cursor else {})}).json()
        names += [user["username"] for user in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert names == sorted(["ann", "bob", "sam", "nia", "aud", "adm"])
    error(client.get("/api/v1/users", headers=adm, params={"cursor": "WzFd"}), 422, "invalid",
          "cursor")  # fmt: skip


@BOTH
def test_payments_and_waiting_requests_come_by_pages_and_by_the_case_rule(book):
    client, _ = book
    ann, bob, sam, nia = (login(client, name) for name in ("ann", "bob", "sam", "nia"))
    for n, day in enumerate(("2026-02-19", "2026-02-20", "2026-02-21")):
        posted = client.post("/api/v1/loans/L1/payments", headers=sam, json={
            "external_id": f"BANK-10{n}", "paid_on": day, "amount_fen": 1_000})  # fmt: skip
        assert posted.status_code == 201, posted.text
    first = client.get("/api/v1/loans/L1/payments", headers=sam, params={"limit": 2}).json()
    rest = client.get("/api/v1/loans/L1/payments", headers=sam,
                      params={"limit": 2, "cursor": first["next_cursor"]}).json()  # fmt: skip
    assert [p["external_id"] for p in first["items"] + rest["items"]] == [
        "BANK-100", "BANK-101", "BANK-102"]
    assert rest["next_cursor"] is None
    for command in ("immobilise", "fuel_cut"):
        assert client.post("/api/v1/loans/L1/tracker-command-requests", headers=ann,
                           json={"command": command}).status_code == 201  # fmt: skip
    assert client.post("/api/v1/loans/L2/tracker-command-requests", headers=bob,
                       json={"command": "immobilise"}).status_code == 201  # fmt: skip
    one = client.get("/api/v1/tracker-command-requests", headers=sam, params={"limit": 1}).json()
    two = client.get("/api/v1/tracker-command-requests", headers=sam,
                     params={"limit": 1, "cursor": one["next_cursor"]}).json()  # fmt: skip
    assert [(r["loan"], r["command"]) for r in one["items"] + two["items"]] == [
        ("L1", "immobilise"), ("L1", "fuel_cut")]  # team east's case only, oldest first
    last = client.get("/api/v1/tracker-command-requests", headers=sam,
                      params={"limit": 1, "cursor": two["next_cursor"]}).json()  # fmt: skip
    assert last == {"items": [], "next_cursor": None}
    every = client.get("/api/v1/tracker-command-requests", headers=nia).json()["items"]
    assert sorted(r["loan"] for r in every) == ["L1", "L1", "L2"]
    assert client.get("/api/v1/repossessions", headers=sam,
                      params={"limit": 1}).json() == {"items": [], "next_cursor": None}
