"""Signing in to the API: login, lockout, tokens and their scopes, console sessions with CSRF,
the audit log the auditor reads."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from lienwatch import clock
from lienwatch.access.credentials import csrf_token
from lienwatch.api.auth import CSRF_HEADER, SESSION_COOKIE, start_session
from lienwatch.config import Settings
from lienwatch.services.auth import AuthService
from lienwatch.store.db import make_engine, session_factory, transaction
from tests.api.support import PASSWORD, api_client, login, sqlite_book
from tests.conftest import TEST_NOW

LOGIN = "/api/v1/auth/login"


@pytest.fixture(scope="module")
def book_url(tmp_path_factory) -> str:
    return sqlite_book(tmp_path_factory.mktemp("auth"))


@pytest.fixture
def client(book_url):
    settings = Settings(database_url=book_url, auth={"max_failed_logins": 3})
    with api_client(book_url, settings) as client:
        yield client


def audit(client, **query) -> list[dict]:
    response = client.get("/api/v1/audit", params=query, headers=login(client, "aud"))
    assert response.status_code == 200
    return response.json()["items"]


def test_login_answers_a_bearer_token_and_writes_the_audit_log(client):
    response = client.post(LOGIN, json={"username": "sam", "password": PASSWORD})
    body = response.json()
    assert response.status_code == 200 and body["token_type"] == "bearer"
    # TEST_NOW + 12 h, the clock running from TEST_NOW (a login on a loaded machine takes a
    # second or more of argon2)
    lifetime = datetime.fromisoformat(body["expires_at"]) - TEST_NOW
    assert timedelta(hours=12) <= lifetime < timedelta(hours=12, minutes=1)
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json() == {"username": "sam", "role": "supervisor", "team": "east",
                         "scopes": ["read", "write"], "token_kind": "login"}  # fmt: skip
    [entry] = audit(client, actor="sam", action="login")[-1:]
    assert entry["client"] == "testclient" and entry["at"].startswith("2026-12-01T02:00")


def test_a_wrong_password_is_401_in_one_body_and_repeated_failures_lock(client):
    wrong = {"username": "bob", "password": "not the password"}
    for _ in range(3):
        response = client.post(LOGIN, json=wrong)
        assert response.status_code == 401
        assert response.json() == {"error": {"code": "unauthenticated", "field": "password",
                                             "message": "password: wrong username or password"}}
    locked = client.post(LOGIN, json={"username": "bob", "password": PASSWORD})
    assert locked.status_code == 401
    assert locked.json()["error"]["message"].startswith(
        "username: account locked until 2026-12-01T02:15"
    )
    failures = audit(client, actor="bob", action="login_failed")
    assert [e["details"]["reason"] for e in failures] == ["locked"] + ["wrong username or "
                                                                       "password"] * 3
    with clock.travel(clock.now() + timedelta(minutes=16)):  # the lock runs out
        assert client.post(LOGIN, json={"username": "bob", "password": PASSWORD}).is_success


def test_the_console_says_why_a_login_is_refused_in_the_users_language_and_time(client):
    chinese = {"Accept": "text/html", "Accept-Language": "zh-CN,zh;q=0.9"}
    wrong = {"username": "ann", "password": "not the password"}
    for _ in range(3):
        page = client.post("/console/login", headers=chinese, data=wrong)
        assert page.status_code == 401
        assert "登录失败： 用户名或密码错误" in " ".join(page.text.split())
    page = client.post("/console/login", headers=chinese,
                       data={"username": "ann", "password": PASSWORD})  # fmt: skip
    assert page.status_code == 401
    assert "账号已锁定，至 <time" in page.text
    assert "2026-12-01 10:15 +08:00" in page.text  # in the business zone, Shanghai
    assert "locked until" not in page.text and "wrong username" not in page.text
    with clock.travel(clock.now() + timedelta(minutes=16)):  # the lock runs out
        assert client.post(LOGIN, json={"username": "ann", "password": PASSWORD}).is_success


def test_an_unknown_user_gets_the_same_answer_and_is_audited(client):
    response = client.post(LOGIN, json={"username": "nobody", "password": PASSWORD})
    assert response.json()["error"]["message"] == "password: wrong username or password"
    assert audit(client, actor="nobody")[0]["action"] == "login_failed"


def test_tokens_expire_are_revoked_by_logout_and_die_with_a_disabled_user(client):
    headers = login(client, "nia")
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    gone = client.get("/api/v1/auth/me", headers=headers)
    assert gone.status_code == 401 and gone.headers["www-authenticate"] == "Bearer"
    headers = login(client, "nia")
    with clock.travel(clock.now() + timedelta(hours=12)):
        assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    missing = client.get("/api/v1/auth/me")
    assert missing.status_code == 401 and missing.json()["error"]["field"] == "token"


def test_an_api_token_does_what_its_scopes_allow(client, book_url):
    engine = make_engine(book_url)
    with transaction(session_factory(engine)) as session:
        issued = AuthService(session).issue_api_token(
            username="sam", name="crm", scopes=["read"], by="adm", at=clock.now()
        )
    engine.dispose()
    headers = {"Authorization": f"Bearer {issued.token}"}
    assert client.get("/api/v1/users", headers=headers).status_code == 200
    refused = client.post("/api/v1/auth/logout", headers=headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "token: this token has no write scope"


def test_a_console_session_is_a_cookie_whose_changes_need_the_csrf_token(client, book_url):
    engine = make_engine(book_url)
    issued = start_session(session_factory(engine), Settings().auth, username="ann",
                           password=PASSWORD, client="127.0.0.1")  # fmt: skip
    engine.dispose()
    client.cookies.set(SESSION_COOKIE, issued.token)
    try:
        assert client.get("/api/v1/auth/me").json()["token_kind"] == "session"
        refused = client.post("/api/v1/auth/logout")
        assert refused.status_code == 403 and refused.json()["error"]["field"] == "csrf_token"
        form = client.post("/api/v1/auth/logout", data={"csrf_token": csrf_token(issued.token)})
        assert form.status_code == 204
    finally:
        client.cookies.clear()


def test_the_cookie_is_http_only_and_same_site(book_url):
    from fastapi import Response

    from lienwatch.api.auth import set_session_cookie
    from lienwatch.services.auth import Issued, TokenKind

    response = Response()
    issued = Issued("lw_secret", TokenKind.SESSION, frozenset(), clock.now())
    set_session_cookie(response, issued, Settings().auth)
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert CSRF_HEADER == "X-CSRF-Token"


def test_docs_are_served_without_a_cdn(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and "/api/v1/docs/assets/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    assert client.get("/api/v1/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/api/v1/docs/assets/index.html").status_code == 404
    assert client.get("/api/v1/openapi.json").json()["info"]["title"] == "lienwatch"
