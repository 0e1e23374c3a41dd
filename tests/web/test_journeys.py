"""The console's journeys in headless Chromium against a real ``lienwatch serve`` (see
conftest.py): a collector's promise to pay, a refused call, a case that is not theirs, a
supervisor's reassignment and approval, the Chinese console, a phone's screen. The tests
share one server and run in this order (each leaves the book as the next expects)."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from lienwatch import clock
from lienwatch.followup.strategy import configured_strategy
from lienwatch.reports.daily import produce
from lienwatch.services.alert_rules import publish_alert_rules
from lienwatch.services.auth import AuthService
from lienwatch.services.payments import post_payment
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Alert, Loan, Task, User
from tests.web.conftest import snap

PROMISED = "1000.00"


def test_a_collector_records_a_promise_to_pay_and_sees_it_on_the_timeline(page_for, console):
    page = page_for("collector1")
    rows = page.locator("table.queue tbody tr")
    assert rows.count() == 2  # L1 and L2 are collector1's; L3 is collector2's
    assert rows.nth(0).locator("td").first.inner_text() == "L1"  # the top case
    assert "allowed" in rows.nth(0).locator("td.contact").inner_text()
    refused = rows.nth(1).locator("td.contact").inner_text()
    assert "not now" in refused and "quiet hours" in refused and "08:00 +00:00" in refused
    snap(page, "queue-collector1")

    page.click("text=L1")
    page.wait_for_url(f"**/console/cases/{console.seeded.cases['L1']}")
    body = page.inner_text("main")
    assert "138****0001" in body and "1101**********7578" in body  # masked
    assert "13800000001" not in page.content() and "110101199003077578" not in page.content()
    assert page.locator("svg polyline.track").count() == 1
    assert page.locator("svg circle.stay").count() >= 1  # the night at STAY
    snap(page, "case-L1")

    promised_on = (clock.now() + timedelta(days=3)).date().isoformat()
    page.select_option("select[name=outcome]", "promise_to_pay")
    page.fill("input[name=promised_on]", promised_on)
    page.fill("input[name=amount]", PROMISED)
    page.fill("textarea[name=note]", "will pay on Friday")
    page.click("text=Record the outcome")
    page.wait_for_selector("p.notice")
    promise = page.locator("ol.timeline li.promise")
    assert promise.count() == 1
    assert "open" in promise.inner_text() and "¥1,000.00" in promise.inner_text()
    assert promised_on in promise.inner_text()
    assert page.locator("ol.timeline li.action", has_text="promise to pay").count() == 1
    assert page.locator(".task").count() == 0  # the call is done
    snap(page, "case-L1-promise")


def test_a_refused_call_shows_the_rule_and_the_next_allowed_time(page_for, console):
    page = page_for("collector1")
    page.click("text=L2")
    page.select_option("select[name=outcome]", "no_answer")
    page.click("text=Record the outcome")
    refusal = page.locator("div.refusal")
    refusal.wait_for()
    text = refusal.inner_text()
    assert "quiet_hours" in text and "quiet hours" in text
    assert "2026-12-01 08:00 +00:00" in text and "Europe/London" in text
    assert page.locator(".task").count() == 1  # still queued
    snap(page, "case-L2-refused")
    assert page.url.endswith(f"/console/cases/{console.seeded.cases['L2']}")
    page.reload()  # the refusal is on the timeline, kept
    refused = page.locator("ol.timeline li.contact_refused").first.inner_text().lower()
    assert "refused contact" in refused and "08:00 +00:00" in refused


def test_a_collector_cannot_open_another_collectors_case_by_url(page_for, console):
    page = page_for("collector1")
    response = page.goto(f"/console/cases/{console.seeded.cases['L3']}")
    assert response is not None and response.status == 404
    assert "L3" not in page.inner_text("main").replace(
        f"case: no case {console.seeded.cases['L3']}", "")
    snap(page, "case-L3-refused-to-collector1")
    response = page.goto("/console/team")  # the dashboard is not a collector's
    assert response is not None and response.status == 403


def test_a_collector_asks_for_a_tracker_command_from_the_case_page(page_for, console):
    page = page_for("collector1")
    page.goto(f"/console/cases/{console.seeded.cases['L1']}")
    assert page.locator("form.reveal").count() == 0  # a collector never sees the numbers
    tracker = page.locator("#tracker")
    tracker.locator("select[name=command]").select_option("immobilise")
    tracker.locator("input[name=why]").fill("car parked at a pawn yard")
    tracker.locator("button", has_text="Ask a supervisor").click()
    page.wait_for_selector("p.notice")
    assert "a supervisor approves or declines it" in page.inner_text("p.notice")
    requested = page.locator("ol.timeline li.action", has_text="requested")
    assert requested.count() == 1 and "collector1" in requested.inner_text()
    snap(page, "case-L1-tracker-requested")


def test_a_supervisor_answers_requests_reassigns_a_case_and_approves_a_repossession(
    page_for, console
):
    page = page_for("supervisor1")
    assert page.url.endswith("/console/team")
    asked = {loan: page.locator(f".approval[data-loan={loan}]") for loan in ("L1", "L3")}
    assert "immobilise" in asked["L1"].inner_text() and "collector1" in asked["L1"].inner_text()
    assert "collector2" in asked["L3"].inner_text()
    assert "L4" in page.inner_text(f".approval[data-repossession='{console.seeded.repossession}']")
    snap(page, "team-supervisor1")

    asked["L3"].locator("input[name=why]").fill("the borrower paid by phone")
    asked["L3"].locator("button", has_text="Decline").click()
    page.wait_for_selector(".approval[data-loan=L3]", state="detached")
    page.locator(".approval[data-loan=L1]").locator("text=Approve and send").click()
    page.wait_for_selector(".approval[data-loan=L1]", state="detached")

    case = console.seeded.cases["L3"]
    row = page.locator("#queue tr", has=page.locator(f"a[href='/console/cases/{case}']"))
    assert row.locator("td.assignee").inner_text() == "collector2"
    row.locator("select[name=to]").select_option("collector1")
    row.locator("button", has_text="Reassign").click()
    page.wait_for_function(
        f"document.querySelector(\"#queue tr[data-task='{console.seeded.tasks['L3']}'] "
        "td.assignee\")?.innerText === 'collector1'"
    )

    order = page.locator(f".approval[data-repossession='{console.seeded.repossession}']")
    order.locator("select[name=assignee]").select_option("collector1")
    order.locator("button", has_text="Approve").click()
    page.wait_for_selector("text=Nothing waits for approval.")
    snap(page, "team-after-answers-reassignment-repossession")

    page.goto(f"/console/cases/{case}")
    timeline = page.inner_text("ol.timeline").lower()
    assert "reassigned" in timeline and "declined" in timeline  # both on the case's record
    assert "the borrower paid by phone" in timeline
    page.goto(f"/console/cases/{console.seeded.cases['L1']}")
    assert page.locator("ol.timeline li.action", has_text="sent").count() == 1
    page.goto(f"/console/cases/{console.seeded.cases['L4']}")
    assert page.inner_text("h1 .status") == "repossession"

    page.goto("/console/search?by=phone&q=13800000001")
    assert page.locator("main table tbody tr").count() == 4
    assert "138****0001" in page.inner_text("main table")
    searched = audit_of(console, "supervisor1")
    assert any("phone search" in str(entry) for entry in searched)


def test_a_supervisor_sees_the_numbers_in_clear_audited_and_escalates_a_case(page_for, console):
    engine = make_engine(console.db_url)
    with transaction(session_factory(engine)) as session:  # paid by someone else
        loan = session.scalar(select(Loan).where(Loan.ref == "L1"))
        post_payment(session, loan=loan, external_id="BANK-9001", paid_on=clock.now().date(),
                     amount=10_000, channel="bank_transfer", by="supervisor1", at=clock.now(),
                     payer_account="6222999900001111", payer_name="李四")  # fmt: skip
    engine.dispose()
    page = page_for("supervisor1")
    case = console.seeded.cases["L1"]
    page.goto(f"/console/cases/{case}")
    assert "13800000001" not in page.content() and "6222999900001111" not in page.content()
    assert page.inner_text("td.payer.masked") == "李* · 622299******1111"
    page.click("text=Show the numbers")
    page.wait_for_selector("dd.revealed")
    assert "13800000001" in page.inner_text("main") and "110101199003077578" in page.inner_text(
        "main")
    assert page.inner_text("td.payer.revealed") == "李四 · 6222999900001111"
    payers = [e for e in audit_of(console, "supervisor1")
              if e["action"] == "personal_data_viewed" and e["subject"] == "loan:L1:payments"]
    assert len(payers) == 1 and payers[0]["details"]["why"] == f"case {case}"
    assert page.url.endswith(f"/console/cases/{case}")  # not the POST's URL
    snap(page, "case-L1-revealed-supervisor1")
    viewed = [e for e in audit_of(console, "supervisor1")
              if e["action"] == "personal_data_viewed" and "borrower:" in e["subject"]]  # fmt: skip
    assert len(viewed) == 1 and viewed[0]["details"]["why"] == f"case {case}"
    page.reload()  # a plain view is masked again
    assert "13800000001" not in page.content()

    page.goto(f"/console/cases/{console.seeded.cases['L2']}")  # and escalates another case
    escalate = page.locator("form.escalate")
    escalate.locator("select[name=to]").select_option("escalated")
    escalate.locator("input[name=why]").fill("no contact in ten days")
    escalate.locator("button", has_text="Escalate").click()
    page.wait_for_selector("text=Case escalated.")
    assert page.inner_text("h1 .status") == "escalated"
    assert page.locator("form.escalate option").all_inner_texts() == ["legal"]  # next
    assert "no contact in ten days" in page.inner_text("ol.timeline")


def test_back_after_logout_shows_no_page_and_no_number_in_clear(page_for, console):
    page = page_for("supervisor1")
    page.goto(f"/console/cases/{console.seeded.cases['L1']}")
    page.click("text=Show the numbers")
    page.wait_for_selector("dd.revealed")
    page.click("nav >> text=Alerts")
    page.wait_for_url("**/console/alerts")
    page.click("text=Log out")
    page.wait_for_url("**/console/login")
    # nothing the pages showed is kept in the browser (HTMX keeps pages for Back there)
    kept = page.evaluate("() => JSON.stringify(sessionStorage) + JSON.stringify(localStorage)")
    assert "13800000001" not in kept and "L1" not in kept
    for went_to in ("/console/alerts", f"/console/cases/{console.seeded.cases['L1']}"):
        page.go_back()
        page.wait_for_url(re.compile(r"/console/login\?next="))
        assert page.url.endswith(f"next={went_to}")
        assert "13800000001" not in page.content() and "138****0001" not in page.content()


def test_a_form_posted_after_the_session_expired_asks_to_log_in_and_comes_back(page_for,
                                                                              console):
    page = page_for("collector1")
    case = f"/console/cases/{console.seeded.cases['L2']}"
    page.goto(case)
    page.context.clear_cookies()  # the session's cookie expires with it (Max-Age)
    page.select_option("select[name=outcome]", "no_answer")
    page.click("text=Record the outcome")
    page.wait_for_url(re.compile(r"/console/login\?next="))
    assert page.url.endswith(f"next={case}")  # the page of the form, not the POST's URL
    assert page.locator("input[name=password]").count() == 1
    page.fill("input[name=username]", "collector1")
    page.fill("input[name=password]", console.seeded.password)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{case}")
    assert page.locator(".task").count() == 1  # nothing was recorded


def test_alert_decisions_are_recorded_with_who_and_when(page_for, console):
    page = page_for("collector1")
    page.goto("/console/alerts")
    cards = {kind: page.locator("section.alert", has_text=words)
             for kind, words in (("long_stay", "long stay"), ("power_cut", "power cut"))}
    assert all(card.count() == 1 for card in cards.values())
    evidence = cards["power_cut"].locator("dl.evidence").inner_text()
    assert "the tracker reported a main-power-cut alarm" in evidence
    [fix] = cards["power_cut"].locator("ul.fixes li").all_inner_texts()
    assert fix.startswith("013900001111 ") and "+08:00" in fix  # L1's tracker, local time
    assert '"lat": ' in cards["long_stay"].inner_text()  # a place as JSON, not "{'lat'"
    cards["long_stay"].locator("input[name=why]").fill("calling the borrower")
    cards["long_stay"].locator("button", has_text="Acknowledge").click()
    notice = page.locator("p.decided")
    notice.wait_for()
    assert "acknowledged" in notice.inner_text() and "collector1" in notice.inner_text()
    assert "Acknowledge" not in cards["long_stay"].inner_text()  # acknowledged once
    snap(page, "alerts-acknowledged")
    cards["long_stay"].locator("button", has_text="Resolve").click()
    page.wait_for_selector("p.decided:has-text('resolved')")
    cards["power_cut"].locator("button", has_text="False positive").click()
    page.wait_for_selector("p.decided:has-text('false positive')")
    assert page.locator("section.alert").count() == 0
    snap(page, "alerts-decided")
    engine = make_engine(console.db_url)
    with session_factory(engine)() as session:
        decided = {a.type: (a.status, a.status_by, a.status_at)
                   for a in session.scalars(select(Alert))}  # fmt: skip
    engine.dispose()
    assert {kind: status for kind, (status, _, _) in decided.items()} == {
        "long_stay": "resolved", "power_cut": "false_positive"}
    assert all(by == "collector1" and at is not None for _, by, at in decided.values())


def test_an_administrator_adds_changes_and_disables_a_user(page_for, console, browser):
    page = page_for("admin")
    add = page.locator("#add-user")
    add.locator("input[name=username]").fill("collector3")
    add.locator("input[name=name]").fill("王小明")
    add.locator("select[name=role]").select_option("agent")
    add.locator("select[name=team]").select_option("east")
    add.locator("input[name=password]").fill(console.seeded.password)
    add.locator("button", has_text="Add").click()
    row = page.locator("tr[data-user=collector3]")
    row.wait_for()
    assert row.locator("td.team").inner_text() == "east"
    newcomer = page_for("collector3")  # signs in: an empty queue
    assert "Your queue is empty." in newcomer.inner_text("main")

    row.locator("form.role select[name=role]").select_option("supervisor")
    row.locator("form.role button").click()
    page.wait_for_function("document.querySelector('tr[data-user=collector3] td.role')"
                           "?.innerText === 'supervisor'")
    row.locator("form.active button", has_text="Disable").click()
    page.wait_for_function("document.querySelector('tr[data-user=collector3] td.active')"
                           "?.innerText === 'no'")
    snap(page, "users-admin")
    assert page.locator("tr[data-user=admin] form").count() == 0  # not their own row

    context = browser.new_context(base_url=console.base)
    try:  # a disabled user cannot sign in
        login = context.new_page()
        login.goto("/console/login")
        login.fill("input[name=username]", "collector3")
        login.fill("input[name=password]", console.seeded.password)
        login.click("button[type=submit]")
        login.wait_for_selector("p.error")
    finally:
        context.close()


def test_an_auditor_opens_a_daily_report_and_an_administrator_the_configuration(page_for,
                                                                                 console):
    engine = make_engine(console.db_url)
    written = produce(session_factory(engine), out=console.folder / "lienwatch-reports",
                      dated=True, strategy=configured_strategy("cn"), now=clock.now(),
                      lang="en")  # fmt: skip
    engine.dispose()
    day = written.figures["as_of"]
    page = page_for("auditor1")
    page.click("nav >> text=Reports")
    page.wait_for_url("**/console/reports")
    row = page.locator(f"tr[data-day='{day}']")
    assert row.locator("a", has_text="Figures (JSON)").get_attribute("href") == (
        f"/api/v1/reports/{day}")
    snap(page, "reports-auditor1")
    row.locator("a", has_text="Report").first.click()
    page.wait_for_url(f"**/console/reports/{day}")
    assert page.title() == f"Daily risk warning report · {day}"
    snap(page, "report-auditor1")
    figures = page.request.get(f"/api/v1/reports/{day}")  # the session cookie serves the API
    assert figures.ok and figures.json()["as_of"] == day

    admin = page_for("admin")
    assert admin.locator("nav >> text=Reports").count() == 0
    admin.click("nav >> text=Configuration")
    admin.wait_for_url("**/console/configuration")
    assert admin.inner_text("tr[data-key=time_zone] td.value") == '"Asia/Shanghai"'
    assert admin.inner_text("tr[data-key=gateway\\.partners] td.value") == "{}"
    snap(admin, "configuration-admin")
    refused = admin.goto(f"/console/reports/{day}")
    assert refused is not None and refused.status == 403
    refused = page.goto("/console/configuration")
    assert refused is not None and refused.status == 403


def test_an_analyst_reads_the_alert_rules_with_what_each_version_changed(page_for, console):
    engine = make_engine(console.db_url)
    with transaction(session_factory(engine)) as session:
        publish_alert_rules(session, document={"version": 1, "thresholds": {"long_stay_h": 48}},
                            by="analyst1", at=clock.now())  # fmt: skip
    engine.dispose()
    page = page_for("analyst1")
    page.click("nav >> text=Alert rules")
    page.wait_for_url("**/console/alert-rules")
    assert page.locator("p.in-force").get_attribute("data-version") == "1"
    version = page.locator("section.rule-version[data-version='1']")
    assert "Published by analyst1" in version.inner_text()
    assert version.locator("tr[data-key='thresholds.long_stay_h'] td.value").inner_text() == "48.0"
    configured = page.locator("table.configuration tr[data-key='thresholds.long_stay_h']")
    assert configured.locator("td.value").inner_text() == "72.0"  # the configuration's, below
    snap(page, "alert-rules-analyst1")
    collector = page_for("collector1")
    assert collector.locator("nav >> text=Alert rules").count() == 0
    refused = collector.goto("/console/alert-rules")
    assert refused is not None and refused.status == 403


def audit_of(console, actor: str) -> list[dict]:
    engine = make_engine(console.db_url)
    with transaction(session_factory(engine)) as session:
        entries = AuthService(session).audit_entries(actor=actor)
    engine.dispose()
    return entries


#: Words that are data, not the console's language: the seeded book's names and places.
DATA_WORDS = re.compile(
    r"\b(?:lienwatch|English|collector\d|supervisor\d|analyst\d|auditor\d|admin|east|"
    r"Volkswagen|Lavida|Beijing|London|Europe|Asia|Shanghai|new-car-\d+|[A-Z0-9]{17})\b"
)


def english_words(page) -> set[str]:
    """Words of English on the page, identifiers (``<code>``), notes people wrote and data
    left out."""
    text = page.evaluate(
        "() => { document.querySelectorAll('code, q.note, svg title')"
        ".forEach(e => e.remove());"
        " return document.body.innerText; }"
    )
    return set(re.findall(r"[A-Za-z][A-Za-z'-]{2,}", DATA_WORDS.sub(" ", text)))


def test_the_chinese_console_shows_no_untranslated_english(page_for, console):
    pages = {
        "collector1": ["/console/queue", f"/console/cases/{console.seeded.cases['L1']}",
                       f"/console/cases/{console.seeded.cases['L2']}", "/console/alerts"],
        "supervisor1": ["/console/team", "/console/workforce", "/console/alerts",
                        "/console/search?by=ref&q=L",
                        "/console/users", f"/console/cases/{console.seeded.cases['L3']}",
                        "/console/alerts?decided=1"],
        "auditor1": ["/console/team", "/console/reports", "/console/alert-rules"],
        "admin": ["/console/users", "/console/configuration"],
    }  # fmt: skip
    for user, paths in pages.items():
        page = page_for(user, language="zh")
        for path in paths:
            page.goto(path)
            assert page.locator("html").get_attribute("lang") == "zh-CN"
            name = f"zh-{user}-{path.strip('/').replace('/', '-').replace('?', '-')}"
            snap(page, name)
            words = english_words(page)
            assert words == set(), f"{name}: untranslated English: {sorted(words)}"
    page.goto("/console/login")  # the language switch, back to English for this browser
    snap(page, "zh-login")
    page.click("button[name=language][value=en]")
    page.wait_for_function(  # null-safe: the check may run while the next page loads
        "document.documentElement !== null && document.documentElement.lang === 'en'")
    assert "Log in" in page.inner_text("h1")  # the page it was on, in English again


def test_the_language_switch_comes_back_to_the_page_it_was_on(page_for, console, browser):
    page = page_for("collector1")
    case = f"/console/cases/{console.seeded.cases['L1']}"
    page.goto(case)
    page.click("button[name=language][value=zh]")
    page.wait_for_function(
        "document.documentElement !== null && document.documentElement.lang === 'zh-CN'")
    assert page.url.endswith(case) and "案件 L1" in page.inner_text("h1")
    context = browser.new_context(base_url=console.base)
    try:  # signing in to a case: the switch keeps where the login goes next
        login = context.new_page()
        login.goto(case)
        login.wait_for_url(re.compile(r"/console/login\?next="))
        login.click("button[name=language][value=zh]")
        login.wait_for_function(
            "document.documentElement !== null && document.documentElement.lang === 'zh-CN'")
        login.fill("input[name=username]", "collector1")
        login.fill("input[name=password]", console.seeded.password)
        login.click("button[type=submit]")
        login.wait_for_url(f"**{case}")
        assert "案件 L1" in login.inner_text("h1")
    finally:
        context.close()


def test_a_supervisor_sees_the_forecast_the_plan_per_hour_and_the_league(page_for, console):
    """The workforce page (issue 19): the staffing each pool needs beside its two agents, the
    plan per hour of today (the seeded calls due at 10:00 with both agents on duty), and the
    league of the month; a collector may not open it."""
    page = page_for("supervisor1")
    page.click("nav >> text=Workforce")
    page.wait_for_url("**/console/workforce")
    phone = page.locator("#forecast tr[data-pool='any/phone']")
    assert phone.locator("td.rostered").inner_text() == "2"
    assert int(phone.locator("td.needed").inner_text()) >= 1
    assert "/ 2" in page.inner_text("#hours tr[data-hour='10:00']")  # both agents on duty
    assert "incentives-default@1" in page.inner_text("#league h2")
    snap(page, "workforce-supervisor1")
    chinese = page_for("supervisor1", language="zh")
    chinese.goto("/console/workforce")
    assert chinese.inner_text("h1").startswith("人力与奖惩")
    collector = page_for("collector1")
    response = collector.goto("/console/workforce")
    assert response is not None and response.status == 403


def test_the_queue_fits_a_phone(page_for, console):
    page = page_for("collector1", phone=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    snap(page, "phone-queue-collector1")


def test_a_case_with_its_payments_fits_a_phone(page_for, console):
    engine = make_engine(console.db_url)
    with transaction(session_factory(engine)) as session:  # a payer's name and account
        loan = session.scalar(select(Loan).where(Loan.ref == "L1"))
        post_payment(session, loan=loan, external_id="BANK-9002", paid_on=clock.now().date(),
                     amount=10_000, channel="bank_transfer", by="supervisor1", at=clock.now(),
                     payer_account="6222999900002222", payer_name="王五")  # fmt: skip
    engine.dispose()
    page = page_for("collector1", phone=True)
    page.goto(f"/console/cases/{console.seeded.cases['L1']}")
    assert page.locator("td.payer").count() >= 1  # BANK-9002, who paid it beside it
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    snap(page, "phone-case-L1-collector1")


def test_a_loan_found_on_a_phone_opens_its_case_without_scrolling_sideways(page_for, console):
    page = page_for("collector1", phone=True)
    page.goto("/console/search?by=ref&q=L1")
    link = page.locator("main table a[href^='/console/cases/']").first
    box = link.bounding_box()
    assert box is not None and box["x"] + box["width"] <= page.viewport_size["width"]
    link.click()
    page.wait_for_url(f"**/console/cases/{console.seeded.cases['L1']}")
    snap(page, "phone-search-collector1")


def test_a_supervisor_reassigns_a_case_from_its_page_and_stays_on_it(page_for, console):
    page = page_for("supervisor1")
    case = f"/console/cases/{console.seeded.cases['L3']}"
    page.goto(case)
    to = "collector1" if page.inner_text("dd.assignee") == "collector2" else "collector2"
    reassign = page.locator("form.reassign")
    reassign.locator("select[name=to]").select_option(to)
    reassign.locator("button", has_text="Reassign").click()
    page.wait_for_selector("text=Case reassigned.")
    assert page.url.endswith(f"{case}?done=reassigned")  # still the case, not the dashboard
    assert page.inner_text("dd.assignee") == to
    assert "reassigned" in page.inner_text("ol.timeline").lower()


def test_a_collector_is_offered_no_outcome_form_for_another_collectors_task(page_for, console):
    engine = make_engine(console.db_url)
    with transaction(session_factory(engine)) as session:  # a step of L1 given to collector2
        mine = session.get_one(Task, console.seeded.tasks["L1"])
        other = session.scalar(select(User.id).where(User.username == "collector2"))
        theirs = Task(key="web:other", trigger_id=mine.trigger_id, case_id=mine.case_id,
                      loan_id=mine.loan_id, step=mine.step, channel="call", skill="phone",
                      team="east", due_at=mine.due_at, deadline_at=mine.deadline_at,
                      priority=0, status="queued", assignee_id=other, assigned_at=clock.now())
        session.add(theirs)
        session.flush()
        task = theirs.id
    engine.dispose()
    case = f"/console/cases/{console.seeded.cases['L1']}"
    page = page_for("collector1")
    page.goto(case)
    shown = page.locator(f".task[data-task='{task}']")
    assert "collector2" in shown.inner_text()
    assert shown.locator("form.outcome").count() == 0  # recording it would be refused
    supervisor = page_for("supervisor1")
    supervisor.goto(case)  # who may record it for their agent
    assert supervisor.locator(f".task[data-task='{task}'] form.outcome").count() == 1
