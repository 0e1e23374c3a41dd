"""schemathesis against the OpenAPI schema: every operation, as each role, with a bounded
number of generated requests: never a 5xx, every answer's status, content type and body as
the schema says."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lienwatch import clock
from lienwatch.access.policy import POLICY
from lienwatch.services.auth import AuthService
from lienwatch.store.db import make_engine, session_factory, transaction
from tests.api.support import PASSWORD, USERS, serve_application, sqlite_book

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]  # fmt: skip


@pytest.fixture(scope="module")
def book_url(tmp_path_factory) -> str:
    return sqlite_book(tmp_path_factory.mktemp("schemathesis"))


@pytest.fixture(scope="module")
def tokens(book_url) -> dict[str, str]:
    engine = make_engine(book_url)
    with transaction(session_factory(engine)) as session:
        issued = {name: AuthService(session).login(username=name, password=PASSWORD,
                                                   at=clock.now()).token
                  for name in USERS}  # fmt: skip
    engine.dispose()
    return issued


@pytest.fixture(scope="module")
def api_schema(book_url):
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", serve_application(book_url))


#: Generated requests per operation (each sent as every role): the whole run stays well
#: under 40 s on a loaded 2-core machine.
EXAMPLES = 4


def test_no_5xx_and_answers_as_the_schema_says(api_schema, tokens):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    documented = {(op.method.upper(), op.path) for op in operations}
    assert documented == {(method, path) for method, path in POLICY  # every operation
                          if path != "/api/v1/openapi.json" and "/docs" not in path
                          and path.startswith("/api/")}  # the console's pages are no API
    for operation in operations:
        if operation.path == "/api/v1/auth/logout":  # it would end the tokens the run uses
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate])
        def answers_as_documented(case) -> None:
            for user in USERS:
                case.call_and_validate(headers={"Authorization": f"Bearer {tokens[user]}"},
                                       checks=CHECKS)  # fmt: skip

        answers_as_documented()
