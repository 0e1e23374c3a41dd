"""The routes of reading reports, publishing models and seeing the configuration: the daily
reports written below ``[report] out`` by pages, opened as HTML and as figures; a behaviour
fit an analyst publishes (audited) and reads back in force; the effective configuration an
administrator sees with its secrets redacted."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from lienwatch import clock
from lienwatch.access.credentials import hash_password
from lienwatch.config import Settings
from lienwatch.followup.strategy import configured_strategy
from lienwatch.reports.daily import produce
from lienwatch.services.configuration import REDACTED
from lienwatch.store.db import make_engine, session_factory
from lienwatch.store.tables import User
from lienwatch.web.pages import PAGE_ROWS
from tests.api.support import PASSWORD, TICK_AT, api_client, login, sqlite_book
from tests.conftest import head_sqlite
from tests.services.test_behaviour import THROUGH, _book


def test_reports_are_listed_newest_first_by_pages_and_open_as_html_and_figures(tmp_path):
    url = sqlite_book(tmp_path)
    out = tmp_path / "reports"
    engine = make_engine(url)
    for day in (date(2026, 2, 19), date(2026, 2, 20)):
        produce(session_factory(engine), out=out, dated=True, strategy=configured_strategy("cn"),
                as_of=day, now=TICK_AT, lang="en")  # fmt: skip
    engine.dispose()
    (out / "notes").mkdir()  # not a report's folder: not listed
    settings = Settings(database_url=url, report={"out": out})
    with api_client(url, settings) as client:
        auditor = login(client, "aud")
        first = client.get("/api/v1/reports", params={"limit": 1}, headers=auditor).json()
        assert [r["day"] for r in first["items"]] == ["2026-02-20"]
        written = sorted(p.stem for p in (out / "2026-02-20" / "tables").glob("*.csv"))
        assert first["items"][0]["figures"] and first["items"][0]["tables"] == written
        second = client.get("/api/v1/reports", headers=auditor,
                            params={"limit": 1, "cursor": first["next_cursor"]}).json()
        assert [r["day"] for r in second["items"]] == ["2026-02-19"]
        assert client.get("/api/v1/reports", headers=auditor).json()["next_cursor"] is None
        figures = client.get("/api/v1/reports/2026-02-20", headers=auditor)
        assert figures.json() == json.loads((out / "2026-02-20" / "figures.json").read_text())
        html = client.get("/api/v1/reports/2026-02-19/html", headers=auditor)
        assert html.headers["content-type"].startswith("text/html")
        assert html.text == (out / "2026-02-19" / "report.html").read_text(encoding="utf-8")
        missing = client.get("/api/v1/reports/2026-02-18", headers=auditor)
        assert missing.status_code == 404 and missing.json()["error"]["field"] == "day"
        forged = client.get("/api/v1/reports", params={"cursor": "WyJ4Il0"}, headers=auditor)
        assert forged.status_code == 422
        for user in ("sam", "nia"):  # supervisors and analysts read them too
            assert client.get("/api/v1/reports", headers=login(client, user)).status_code == 200
        for user in ("adm", "ann"):
            refused = client.get("/api/v1/reports/2026-02-20", headers=login(client, user))
            assert refused.status_code == 403


def test_an_analyst_publishes_a_behaviour_fit_audited_and_it_is_in_force_the_next_day(tmp_path):
    url = head_sqlite(tmp_path / "behaviour.sqlite3")
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        _book(session)
        session.add_all(User(username=name, display_name=name, role=role, team=None,
                             skills={"mode": "phone"}, password_hash=hash_password(PASSWORD))
                        for name, role in (("nia", "analyst"), ("aud", "auditor"),
                                           ("adm", "admin"), ("sam", "supervisor")))  # fmt: skip
    engine.dispose()
    with api_client(url) as client, clock.travel(datetime(2026, 12, 1, 1, tzinfo=UTC)):
        analyst, auditor = login(client, "nia"), login(client, "aud")
        supervisor = login(client, "sam")
        assert client.get("/api/v1/models/behaviour", headers=auditor).status_code == 404
        too_early = client.post("/api/v1/models/behaviour/fits", headers=analyst,
                                json={"as_of": "2026-07-31"})  # fmt: skip
        assert too_early.status_code == 422, too_early.text
        for other in (auditor, supervisor):  # only analysts fit and publish
            assert client.post("/api/v1/models/behaviour/fits", headers=other,
                               json={}).status_code == 403  # fmt: skip
        stored = client.post("/api/v1/models/behaviour/fits", headers=analyst,
                             json={"as_of": THROUGH.isoformat()})  # fmt: skip
        assert stored.status_code == 201, stored.text
        fit = stored.json()
        assert fit["figures"]["months"] == ["2026-07", "2026-08", "2026-09"]
        assert (fit["published_by"], fit["published_at"]) == (None, None)
        # stored, not published: nothing is in force
        assert client.get("/api/v1/models/behaviour", headers=auditor).status_code == 404
        listed = client.get("/api/v1/models/behaviour/fits", headers=auditor).json()["items"]
        assert [f["fit"] for f in listed] == [fit["fit"]]
        for other in (auditor, supervisor):
            refused = client.post("/api/v1/models/behaviour", headers=other,
                                  json={"fit": fit["fit"]})  # fmt: skip
            assert refused.status_code == 403
        assert client.get("/api/v1/models/behaviour", headers=auditor).status_code == 404
        missing = client.post("/api/v1/models/behaviour", headers=analyst, json={"fit": 99})
        assert missing.status_code == 404
        published = client.post("/api/v1/models/behaviour", headers=analyst,
                                json={"fit": fit["fit"]})  # fmt: skip
        assert published.status_code == 200, published.text
        assert published.json()["published_by"] == "nia"
        in_force = client.get("/api/v1/models/behaviour", headers=auditor).json()
        assert in_force["fit"] == fit["fit"] and in_force["model"] == fit["model"]
        assert in_force["published_by"] == "nia"
        audit = client.get("/api/v1/audit", params={"action": "model_published"},
                           headers=auditor).json()["items"]  # fmt: skip
        assert [(a["actor"], a["subject"]) for a in audit] == [
            ("nia", f"behaviour_fit:{fit['fit']}")]


def test_an_administrator_sees_the_effective_configuration_with_its_secrets_redacted(tmp_path):
    url = sqlite_book(tmp_path)
    secrets = {"partner": "partner-token-0123456789", "health": "health-token-0123456789",
               "nats": "nats-password-42", "sms": "sms-provider-secret"}  # fmt: skip
    settings = Settings(
        database_url=url, time_zone="Asia/Urumqi",
        gateway={"partners": {"acme": secrets["partner"]}, "health_token": secrets["health"]},
        bus={"nats_url": f"nats://lw:{secrets['nats']}@127.0.0.1:4222"},
        followup={"providers": {"sms": {"provider": "log", "secret": secrets["sms"]}}},
    )  # fmt: skip
    with api_client(url, settings) as client:
        answer = client.get("/api/v1/configuration", headers=login(client, "adm"))
        assert answer.status_code == 200, answer.text
        shown = answer.json()
        assert not [s for s in secrets.values() if s in answer.text]
        assert shown["time_zone"] == "Asia/Urumqi"  # what the process runs with
        assert shown["gateway"]["partners"] == {"acme": REDACTED}
        assert shown["gateway"]["health_token"] == REDACTED
        assert shown["bus"]["nats_url"] == f"nats://lw:{REDACTED}@127.0.0.1:4222"
        assert shown["followup"]["providers"]["sms"] == {"provider": "log", "secret": REDACTED}
        assert shown["auth"]["token_ttl_minutes"] == settings.auth.token_ttl_minutes
        for user in ("sam", "nia", "aud", "ann"):
            refused = client.get("/api/v1/configuration", headers=login(client, user))
            assert refused.status_code == 403


def test_the_consoles_users_page_is_paged_by_username_as_the_apis_list(tmp_path):
    url = sqlite_book(tmp_path)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        session.add_all(User(username=f"temp{n:03}", display_name="", role="auditor", team=None)
                        for n in range(PAGE_ROWS + 10))  # fmt: skip
    engine.dispose()
    with api_client(url) as client:
        signed_in = client.post("/console/login", follow_redirects=False,
                                data={"username": "adm", "password": PASSWORD})  # fmt: skip
        assert signed_in.status_code == 303
        shown, target = [], "/console/users"
        while target:
            page = client.get(target)
            assert page.status_code == 200
            rows = re.findall(r'<tr data-user="([^"]+)"', page.text)
            assert len(rows) <= PAGE_ROWS
            shown += rows
            more = re.search(r'href="(/console/users\?cursor=[^"]+)" rel="next"', page.text)
            target = more.group(1) if more else None
        api = client.get("/api/v1/users", params={"limit": 500}, headers=login(client, "adm"))
        assert shown == [u["username"] for u in api.json()["items"]]  # each once, in order
        assert len(shown) == PAGE_ROWS + 10 + 6
        assert client.get("/console/users", params={"cursor": "bm9wZQ"}).status_code == 400


def test_an_analyst_publishes_alert_rules_others_read_them_and_a_bad_one_stores_nothing(tmp_path):
    url = sqlite_book(tmp_path)
    rules = {"version": 1, "thresholds": {"long_stay_h": 48, "enabled": {"unusual_area": False}}}
    with api_client(url) as client:
        analyst = login(client, "nia")
        for user in ("ann", "sam", "aud", "adm"):  # only analysts publish
            refused = client.post("/api/v1/alert-rules", headers=login(client, user),
                                  json={"document": rules})  # fmt: skip
            assert refused.status_code == 403, (user, refused.text)
            assert refused.json()["error"]["field"] == "role"
        bad = {**rules, "thresholds": {"long_stay_h": -48}}
        answer = client.post("/api/v1/alert-rules", headers=analyst, json={"document": bad})
        assert answer.status_code == 422
        assert answer.json()["error"]["field"] == "document.thresholds.long_stay_h"
        unknown = {**rules, "thresholds": {"enabled": {"teleport": False}}}
        answer = client.post("/api/v1/alert-rules", headers=analyst, json={"document": unknown})
        assert answer.status_code == 422 and "'teleport'" in answer.json()["error"]["message"]
        nothing = client.get("/api/v1/alert-rules", headers=analyst).json()
        assert (nothing["in_force"], nothing["versions"]) == (None, [])  # nothing stored
        assert nothing["configured"]["thresholds"]["long_stay_h"] == 72

        published = client.post("/api/v1/alert-rules", headers=analyst, json={"document": rules})
        assert published.status_code == 201, published.text
        version = published.json()
        assert (version["version"], version["published_by"]) == (1, "nia")
        assert version["values"]["thresholds"]["long_stay_h"] == 48
        assert version["changes"] == [
            {"key": "thresholds.enabled.unusual_area", "before": True, "after": False},
            {"key": "thresholds.long_stay_h", "before": 72.0, "after": 48.0}]
        again = client.post("/api/v1/alert-rules", headers=analyst, json={"document": rules})
        assert again.status_code == 409 and again.json()["error"]["field"] == "document.version"
        for user in ("sam", "nia", "aud", "adm"):
            read = client.get("/api/v1/alert-rules", headers=login(client, user))
            assert read.status_code == 200 and read.json()["in_force"] == 1
            assert [v["version"] for v in read.json()["versions"]] == [1]
        assert client.get("/api/v1/alert-rules", headers=login(client, "ann")).status_code == 403


def test_an_analyst_publishes_the_scorecard_audited_and_it_is_in_force(tmp_path):
    url = sqlite_book(tmp_path)
    with api_client(url) as client:
        analyst, auditor = login(client, "nia"), login(client, "aud")
        shipped = client.get("/api/v1/models/scorecard", headers=auditor).json()
        assert shipped["scorecard"] is None and shipped["document"]["characteristic"]
        for user in ("ann", "sam", "aud", "adm"):  # only analysts publish models
            refused = client.post("/api/v1/models/scorecard", headers=login(client, user),
                                  json={})  # fmt: skip
            assert refused.status_code == 403, (user, refused.text)
        unknown = client.post("/api/v1/models/scorecard", headers=analyst,
                              json={"dataset": "my-book"})  # fmt: skip
        assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "dataset"
        published = client.post("/api/v1/models/scorecard", headers=analyst, json={})
        assert published.status_code == 201, published.text
        card = published.json()
        assert card["scorecard"] >= 1 and card["document"]["rows"] == 1000
        in_force = client.get("/api/v1/models/scorecard", headers=login(client, "sam")).json()
        assert in_force["scorecard"] == card["scorecard"]
        assert in_force["document"]["characteristic"] == card["document"]["characteristic"]
        audit = client.get("/api/v1/audit", params={"action": "model_published"},
                           headers=auditor).json()["items"]  # fmt: skip
        assert [(a["actor"], a["subject"]) for a in audit] == [
            ("nia", f"scorecard:{card['scorecard']}")]
