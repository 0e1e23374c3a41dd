"""A collector's and a supervisor's day through the API: the queue, a case and its timeline,
an outcome the guard allows and one it refuses (409, recorded though the request failed),
payments idempotent by key, personal data masked unless revealed (and audited), pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch import clock
from lienwatch.store.db import make_engine
from lienwatch.store.tables import Alert, ContactAttempt, LedgerEntry, Loan, Task
from tests.api.support import BOTH, PASSWORD, login

NIGHT = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai: quiet hours


@BOTH
def test_a_collector_works_the_top_case_of_the_queue(book):
    client, url = book
    ann = login(client, "ann")
    [top] = client.get("/api/v1/queue", headers=ann).json()["items"]
    assert (top["loan"], top["channel"], top["dpd"]) == ("L1", "call", 6)
    case = client.get(f"/api/v1/cases/{top['case']}", headers=ann).json()
    assert case["borrower"]["phone"] == "138****0001" and case["borrower"]["masked"]
    assert case["borrower"]["id_number"] == "1101**********7578"
    assert client.get(f"/api/v1/cases/{top['case']}?reveal=true", headers=ann).status_code == 403

    with clock.travel(NIGHT):  # a call at night: refused, and the refusal is kept
        refused = client.post(f"/api/v1/tasks/{top['task']}/outcome",
                              headers=login(client, "ann"),
                              json={"outcome": "no_answer"})  # fmt: skip
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert (error["code"], error["rule"]) == ("refused", "quiet_hours")
    assert error["next_allowed_at"] == "2026-12-02T00:00:00+00:00"  # 08:00 in Shanghai
    engine = make_engine(url)
    with Session(engine) as session:
        [attempt] = session.scalars(select(ContactAttempt).where(ContactAttempt.allowed.is_(
            False)))  # fmt: skip
        assert attempt.rule == "quiet_hours"
        assert session.get_one(Task, top["task"]).status == "queued"  # nothing else kept
        assert session.scalar(select(LedgerEntry.id).where(
            LedgerEntry.kind == "contact_refused")) is not None  # fmt: skip
    engine.dispose()

    promised = client.post(f"/api/v1/tasks/{top['task']}/outcome", headers=ann, json={
        "outcome": "promise_to_pay", "promised_on": "2026-12-08", "amount_fen": 875_366,
        "note": "pays on Tuesday"})  # fmt: skip
    assert promised.status_code == 201, promised.text
    timeline = client.get(f"/api/v1/cases/{top['case']}/timeline", headers=ann).json()
    kinds = [item["kind"] for item in timeline["items"]]
    assert "contact_refused" in kinds and "promise" in kinds and "trigger" in kinds
    [promise] = [i for i in timeline["items"] if i["kind"] == "promise"]
    assert promise["details"]["amount_fen"] == 875_366
    again = client.post(f"/api/v1/tasks/{top['task']}/outcome", headers=ann,
                        json={"outcome": "no_answer"})  # fmt: skip
    assert again.status_code == 404  # done: no longer a queued task
    assert client.get("/api/v1/queue", headers=ann).json()["items"] == []


def test_another_collectors_case_is_not_found_and_cannot_be_acted_on(book):
    client, _ = book
    bob = login(client, "bob")
    [top] = client.get("/api/v1/queue", headers=login(client, "ann")).json()["items"]
    assert client.get(f"/api/v1/cases/{top['case']}", headers=bob).status_code == 404
    taken = client.post(f"/api/v1/tasks/{top['task']}/outcome", headers=bob,
                        json={"outcome": "no_answer"})  # fmt: skip
    assert taken.status_code == 404
    assert client.get("/api/v1/loans/L1", headers=bob).json()["error"]["code"] == "not_found"


def test_a_case_page_records_only_its_own_tasks(book):
    client, url = book
    [mine] = client.get("/api/v1/queue", headers=login(client, "ann")).json()["items"]
    [bobs] = client.get("/api/v1/queue", headers=login(client, "bob")).json()["items"]
    engine = make_engine(url)
    with Session(engine) as session, session.begin():  # a step of bob's case, for anyone
        session.get_one(Task, bobs["task"]).assignee_id = None
    csrf = console_csrf(client, "ann", f"/console/cases/{mine['case']}")
    assert client.get(f"/console/cases/{bobs['case']}").status_code == 404  # not ann's
    answer = client.post(f"/console/cases/{mine['case']}/outcome", follow_redirects=False,
                         data={"csrf_token": csrf, "task": str(bobs["task"]),
                               "outcome": "no_answer"})  # fmt: skip
    assert answer.status_code == 400
    assert f"no queued task {bobs['task']} on case {mine['case']}" in answer.text
    with Session(engine) as session:  # nothing recorded on bob's case, no call placed
        assert session.get_one(Task, bobs["task"]).status == "queued"
    engine.dispose()


def test_a_promise_of_a_bad_or_huge_amount_on_a_case_page_says_what_is_wrong(book):
    client, url = book
    [mine] = client.get("/api/v1/queue", headers=login(client, "ann")).json()["items"]
    case = f"/console/cases/{mine['case']}"
    csrf = console_csrf(client, "ann", case)
    for amount, said in (("abc", "amount: 'abc' is not a number"),
                         ("1.234", "amount: '1.234' has more than two decimals"),
                         ("99999999999999999999",  # the form's pattern takes it
                          "amount: a promise to pay is at most 10,000,000,000.00 yuan")):
        answer = client.post(f"{case}/outcome", follow_redirects=False, data={
            "csrf_token": csrf, "task": str(mine["task"]), "outcome": "promise_to_pay",
            "promised_on": "2026-12-08", "amount": amount})  # fmt: skip
        assert answer.status_code == 400, answer.text
        assert "text/html" in answer.headers["content-type"]  # the case page, saying why
        assert escape(said) in answer.text
    engine = make_engine(url)
    with Session(engine) as session:
        assert session.get_one(Task, mine["task"]).status == "queued"  # nothing recorded
    engine.dispose()


def test_a_bad_console_address_is_a_page_for_a_browser_and_the_error_body_for_a_script(book):
    client, _ = book
    console_csrf(client, "ann", "/console/queue")
    for path, status, said in (("/console/cases/99999999999999999999", 422, "case_id: "),
                               ("/console/cases/abc", 422, "case_id: "),
                               ("/console/alerts?decided=abc", 422, "decided: "),
                               ("/console/nowhere", 404, "Not Found")):
        page = client.get(path, headers={"Accept": "text/html"})
        assert (page.status_code, page.headers["content-type"]) == (
            status, "text/html; charset=utf-8"), page.text
        assert said in page.text and 'class="error"' in page.text
        script = client.get(path)
        assert script.status_code == status
        assert script.json()["error"]["message"].startswith(said)


def console_csrf(client, username: str, page: str) -> str:
    """Sign ``username`` in to the console (the client keeps the cookie) and return the CSRF
    token of their forms on ``page``."""
    signed_in = client.post("/console/login", follow_redirects=False,
                            data={"username": username, "password": PASSWORD})  # fmt: skip
    assert signed_in.status_code == 303
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(page).text)
    assert found is not None
    return found.group(1)


@BOTH
def test_payments_are_idempotent_by_key(book):
    client, _ = book
    sam = login(client, "sam")
    payment = {"external_id": "BANK-0001", "paid_on": "2026-02-21", "amount_fen": 900_000}
    first = client.post("/api/v1/loans/L1/payments", headers=sam, json=payment)
    assert first.status_code == 201 and first.json()["new"]
    replay = client.post("/api/v1/loans/L1/payments", headers=sam, json=payment)
    assert replay.status_code == 200 and not replay.json()["new"]
    clash = client.post("/api/v1/loans/L1/payments", headers=sam,
                        json={**payment, "amount_fen": 1})  # fmt: skip
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "conflict"
    listed = client.get("/api/v1/loans/L1/payments", headers=sam).json()["items"]
    assert [p["external_id"] for p in listed] == ["BANK-0001"]
    state = client.get("/api/v1/loans/L1/state?as_of=2026-02-21", headers=sam).json()
    assert state["dpd"] == 0 and state["overdue_principal_fen"] == 0
    assert (listed[0]["payer_account"], listed[0]["payer_name"]) == (None, None)


def test_a_payment_carries_who_paid_it(book):
    client, _ = book
    sam = login(client, "sam")
    payment = {"external_id": "BANK-0002", "paid_on": "2026-02-21", "amount_fen": 900_000,
               "payer_account": "6222888800002222", "payer_name": "王芳"}  # fmt: skip
    posted = client.post("/api/v1/loans/L1/payments", headers=sam, json=payment)
    assert posted.status_code == 201  # answered masked, as every read of it
    assert (posted.json()["payer_account"], posted.json()["payer_name"]) == (
        "622288******2222", "王*")
    shown = client.get("/api/v1/loans/L1/payments?reveal=true", headers=sam).json()["items"]
    assert (shown[0]["payer_account"], shown[0]["payer_name"]) == ("6222888800002222", "王芳")
    long = client.post("/api/v1/loans/L1/payments", headers=sam,
                       json={**payment, "external_id": "BANK-0003", "payer_account": "6" * 65})
    assert long.status_code == 422 and "payer_account" in long.text


def test_who_paid_is_masked_for_everyone_and_revealed_as_a_borrowers_numbers_are(book):
    """The one rule of personal data: masked for every role; in clear only when a role that
    may (supervisors, analysts) asks, each such view in the audit log; refused to the
    others."""
    client, _ = book
    payment = {"external_id": "BANK-0004", "paid_on": "2026-02-21", "amount_fen": 900_000,
               "payer_account": "6222888800002222", "payer_name": "王小芳"}  # fmt: skip
    assert client.post("/api/v1/loans/L1/payments", headers=login(client, "sam"),
                       json=payment).status_code == 201  # fmt: skip

    def payer(user: str, reveal: bool = False) -> tuple[str, str] | int:
        listed = client.get("/api/v1/loans/L1/payments", headers=login(client, user),
                            params={"reveal": "true"} if reveal else {})  # fmt: skip
        if listed.status_code != 200:
            return listed.status_code
        row = listed.json()["items"][0]
        return row["payer_account"], row["payer_name"]

    masked, clear = ("622288******2222", "王**"), ("6222888800002222", "王小芳")
    assert [payer(user) for user in ("ann", "sam", "nia", "aud")] == [masked] * 4
    assert payer("adm") == 403  # no personal data, masked or not
    assert [payer(user, reveal=True) for user in ("ann", "aud", "adm")] == [403] * 3
    assert [payer(user, reveal=True) for user in ("sam", "nia")] == [clear] * 2
    log = client.get("/api/v1/audit?action=personal_data_viewed",
                     headers=login(client, "aud")).json()["items"]  # fmt: skip
    assert sorted((e["actor"], e["subject"]) for e in log) == [
        ("nia", "loan:L1:payments"), ("sam", "loan:L1:payments")]


def test_who_paid_is_masked_in_a_payment_anomalys_evidence_for_every_role(book):
    client, url = book
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        loan = session.scalar(select(Loan).where(Loan.ref == "L1"))
        session.add(Alert(type="payment_anomaly", severity="warning", vehicle_id=loan.vehicle_id,
                          loan_id=loan.id, started_at=clock.now(), evidence={
                              "rule": "payment_anomaly", "payments": [
                                  {"payment": "BANK-0005", "payer_account": "6222999900001111",
                                   "payer_name": "车贷服务部", "rules": ["shared_payer"]},
                                  {"payment": "BANK-0006", "rules": ["round_cash"]}]}))
    engine.dispose()
    for user in ("ann", "sam", "nia", "aud"):
        listed = client.get("/api/v1/alerts", params={"type": "payment_anomaly"},
                            headers=login(client, user)).json()["items"]  # fmt: skip
        assert listed[0]["evidence"]["payments"] == [
            {"payment": "BANK-0005", "payer_account": "622299******1111", "payer_name": "车****",
             "rules": ["shared_payer"]},
            {"payment": "BANK-0006", "rules": ["round_cash"]}], user  # none: none to mask


def test_revealed_personal_data_is_audited_with_who_and_from_where(book):
    client, _ = book
    sam = login(client, "sam")
    shown = client.get("/api/v1/borrowers/B-L1?reveal=true", headers=sam).json()
    assert (shown["phone"], shown["masked"]) == ("13800000001", False)
    assert client.get("/api/v1/borrowers/B-L1?reveal=true",
                      headers=login(client, "aud")).status_code == 403  # fmt: skip
    log = client.get("/api/v1/audit?action=personal_data_viewed",
                     headers=login(client, "aud")).json()["items"]  # fmt: skip
    assert [(e["actor"], e["subject"], e["client"]) for e in log] == [
        ("sam", "borrower:B-L1", "testclient")]


def test_lists_page_by_cursor_and_refuse_a_forged_one(book):
    client, _ = book
    nia = login(client, "nia")
    first = client.get("/api/v1/queue/team?limit=1", headers=nia).json()
    second = client.get(f"/api/v1/queue/team?limit=1&cursor={first['next_cursor']}",
                        headers=nia).json()  # fmt: skip
    assert {first["items"][0]["loan"], second["items"][0]["loan"]} == {"L1", "L2"}
    loans = client.get("/api/v1/loans?limit=1", headers=nia).json()
    rest = client.get(f"/api/v1/loans?cursor={loans['next_cursor']}", headers=nia).json()
    assert [row["ref"] for row in loans["items"] + rest["items"]] == ["L1", "L2"]
    forged = client.get("/api/v1/loans?cursor=bm9wZQ", headers=nia)
    assert forged.status_code == 422 and forged.json()["error"]["field"] == "cursor"


def test_tracker_commands_need_a_supervisor_and_an_agents_request_is_kept(book):
    client, _ = book
    asked = client.post("/api/v1/loans/L1/tracker-commands", headers=login(client, "ann"),
                        json={"command": "immobilise"})  # fmt: skip
    assert asked.status_code == 409 and asked.json()["error"]["code"] == "refused"
    sent = client.post("/api/v1/loans/L1/tracker-commands", headers=login(client, "sam"),
                       json={"command": "immobilise"})  # fmt: skip
    assert sent.status_code == 201 and sent.json()["outcome"] == "sent"
    [top] = client.get("/api/v1/queue", headers=login(client, "ann")).json()["items"]
    timeline = client.get(f"/api/v1/cases/{top['case']}/timeline",
                          headers=login(client, "ann")).json()["items"]  # fmt: skip
    commands = [i["details"]["outcome"] for i in timeline
                if i["kind"] == "action" and i["details"]["action_kind"] == "tracker_command"]
    assert len(commands) == 2 and commands[-1] == "sent"
