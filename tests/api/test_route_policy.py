"""The route x role matrix: every route of the application (the API, ingest, health, the
docs, and whatever the console adds) has a rule in the route policy, carries the policy's
dependency, and answers each role as its rule says: allowed, forbidden (403), or filtered
to the role's own rows (another's row is not found)."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.routing import Route

from lienwatch import clock
from lienwatch.access.policy import POLICY, Access, Scope
from lienwatch.services.auth import AuthService
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Case, Loan, Task, Vehicle
from tests.api.support import USERS, api_client, serve_application, sqlite_book

PARAM = re.compile(r"\{(\w+)\}")


@pytest.fixture(scope="module")
def book_url(tmp_path_factory) -> str:
    return sqlite_book(tmp_path_factory.mktemp("policy"))


@pytest.fixture(scope="module")
def rows(book_url) -> dict[str, dict[str, str]]:
    """Path parameters of a row of ann's (team east) and of one of bob's (team west)."""
    engine = make_engine(book_url)
    found = {}
    with Session(engine) as session:
        for owner, ref in (("ann", "L1"), ("bob", "L2")):
            loan = session.scalar(select(Loan).where(Loan.ref == ref))
            found[owner] = {
                "case_id": str(session.scalar(select(Case.id).where(Case.loan_id == loan.id))),
                "task_id": str(session.scalar(select(Task.id).where(Task.loan_id == loan.id))),
                "ref": ref,
                "vin": session.get_one(Vehicle, loan.vehicle_id).vin,
                "alert_id": "999999", "repossession_id": "999999", "username": "nobody",
                "leaf_index": "999999", "request_id": "999999", "token_id": "999999",
                "external_id": "no-such-payment", "day": "2026-02-20",
                "name": "swagger-ui.css",
            }  # fmt: skip
    engine.dispose()
    return found


@pytest.fixture(scope="module")
def tokens(book_url) -> dict[str, str]:
    """A bearer token of every user (issued directly: a login per request would cost an
    argon2 hash each)."""
    engine = make_engine(book_url)
    with transaction(session_factory(engine)) as session:
        issued = {name: AuthService(session).login(username=name, password="correct horse "
                                                   "battery", at=clock.now()).token
                  for name in USERS}  # fmt: skip
    engine.dispose()
    return issued


def operations(app) -> list[tuple[str, str, Route]]:
    """(method, path, route) of every route, those of included routers too."""
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        # FastAPI's routes, or a plain one with a path and methods (the OpenAPI schema's); a
        # mount would hide routes from this enumeration
        assert isinstance(route, APIRoute | Route), f"{context.path}: {type(route).__name__}"
        found += [(method, context.path, route) for method in context.methods - {"HEAD"}]
    return sorted(found, key=lambda op: (op[1], op[0]))


def test_every_route_has_a_rule_and_every_rule_a_route(book_url):
    app = serve_application(book_url)
    served = {(method, path) for method, path, _ in operations(app)}
    assert sorted(served - set(POLICY)) == []  # a new route needs a rule
    assert sorted(set(POLICY) - served) == []  # a rule of no route is stale


def _dependencies(dependant) -> set[str]:
    names = set()
    for sub in dependant.dependencies:
        names.add(getattr(sub.call, "__name__", ""))
        names |= _dependencies(sub)
    return names


def test_every_user_route_carries_the_policy_dependency(book_url):
    for method, path, route in operations(serve_application(book_url)):
        if POLICY[(method, path)].access is Access.USER:
            assert isinstance(route, APIRoute), f"{method} {path}"
            assert "authorize" in _dependencies(route.dependant), f"{method} {path}"


QUERY = {"/api/v1/vehicles/{vin}/positions": {"since": "2026-02-01T00:00:00Z",
                                              "until": "2026-02-20T00:00:00Z"},
         "/api/v1/kpis": {"since": "2026-02-01T00:00:00Z"},
         "/api/v1/ledger/entries": {"subject": "L1"},
         "/api/v1/search/loans": {"q": "L"}}  # fmt: skip


def test_each_role_is_allowed_forbidden_or_filtered_as_its_rule_says(book_url, rows, tokens):
    seen = []
    with api_client(book_url) as client:
        for method, path, _ in operations(client.app):
            rule = POLICY[(method, path)]
            if rule.access is not Access.USER:
                continue
            for user, (role, _team) in USERS.items():
                if path == "/api/v1/auth/logout":  # it ends the token: a fresh one each time
                    token = _fresh_token(book_url, user)
                else:
                    token = tokens[user]
                scope = rule.scope_of(role)
                mine = rows["bob" if user == "bob" else "ann"]
                answer = client.request(method, fill(path, mine),
                                        params=QUERY.get(path),
                                        headers={"Authorization": f"Bearer {token}"},
                                        json={} if method == "POST" else None)  # fmt: skip
                where = f"{user} ({role}) {method} {path}: {answer.status_code} {answer.text}"
                assert answer.status_code < 500, where
                if scope is None:
                    assert answer.status_code == 403, where
                    assert answer.json()["error"]["code"] == "forbidden", where
                    continue
                assert answer.status_code not in (401, 403), where
                seen.append((user, method, path))
                if scope in (Scope.OWN, Scope.TEAM) and method == "GET" and "{" in path:
                    other = rows["ann" if user == "bob" else "bob"]
                    outside = client.get(fill(path, other),
                                         params=QUERY.get(path),
                                         headers={"Authorization": f"Bearer {token}"})
                    assert outside.status_code == 404, f"{where}; another's row: {outside.text}"
    assert len(seen) > 60


def fill(path: str, values: dict[str, str]) -> str:
    return PARAM.sub(lambda m: values[m.group(1)], path)


def _fresh_token(url: str, user: str) -> str:
    engine = make_engine(url)
    with transaction(session_factory(engine)) as session:
        token = AuthService(session).login(username=user, password="correct horse battery",
                                           at=clock.now()).token  # fmt: skip
    engine.dispose()
    return token


def test_lists_are_filtered_to_the_roles_rows(book_url, tokens):
    def refs(user: str, path: str, key: str = "loan") -> set[str]:
        answer = client.get(path, headers={"Authorization": f"Bearer {tokens[user]}"})
        assert answer.status_code == 200, answer.text
        return {item[key] for item in answer.json()["items"]}

    with api_client(book_url) as client:
        assert refs("ann", "/api/v1/loans", "ref") == {"L1"}
        assert refs("bob", "/api/v1/loans", "ref") == {"L2"}
        assert refs("sam", "/api/v1/loans", "ref") == {"L1"}  # team east
        assert refs("nia", "/api/v1/loans", "ref") == {"L1", "L2"}
        assert refs("aud", "/api/v1/loans", "ref") == {"L1", "L2"}
        assert refs("ann", "/api/v1/queue") == {"L1"}
        assert refs("sam", "/api/v1/queue/team") == {"L1"}
        assert refs("nia", "/api/v1/queue/team") == {"L1", "L2"}
        assert refs("sam", "/api/v1/users", "username") == {"ann", "sam"}
        assert len(refs("adm", "/api/v1/users", "username")) == len(USERS)
