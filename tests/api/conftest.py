"""A live ingest API over real HTTP on loopback (uvicorn on the gateway's loop, httpx client),
and the whole application over the book of tests/api/support.py."""

from __future__ import annotations

import contextlib
import hashlib
import os

import httpx
import pytest

from lienwatch.config import GatewaySettings
from lienwatch.runtime import ingest_app, serving_http
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Device
from tests.api.support import api_client, build_book, sqlite_book
from tests.conftest import postgres_database
from tests.telematics.support import live_gateway

TOKEN = "partner-token-0123456789"
DIGEST_PARTNER_TOKEN = "partner-configured-by-digest-0123"  # configured as its SHA-256
PHONE = "15900001111"
TABLET = "15900002222"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """(httpx client, engine) for an ingest API over a SQLite store of the module's own."""
    url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'api.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with transaction(session_factory(engine)) as session:
        session.add_all([Device(ident=PHONE, protocol="osmand", kind="wireless"),
                         Device(ident=TABLET, protocol="osmand", kind="wireless"),
                         Device(ident="013900000001", protocol="jt808", kind="wired")])  # fmt: skip
    digest = hashlib.sha256(DIGEST_PARTNER_TOKEN.encode()).hexdigest()
    settings = GatewaySettings(partners={"acme": TOKEN, "zeta": f"sha256:{digest}"},
                               late_after_s=3600)  # fmt: skip
    with live_gateway(url, settings) as gateway:
        stack = contextlib.AsyncExitStack()
        app = ingest_app(gateway.ingest, settings)
        port = gateway.call(stack.enter_async_context(serving_http(app, "127.0.0.1", 0)))
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client, engine
        gateway.call(stack.aclose())
    engine.dispose()


@pytest.fixture
def book(request, tmp_path):
    """(client, database URL) of the API over the book of tests/api/support.py (ann's L1 in
    team east, bob's L2 in team west, sam supervising east), on SQLite unless the test asks
    for PostgreSQL (``support.BOTH``)."""
    with contextlib.ExitStack() as stack:
        if getattr(request, "param", "sqlite") == "sqlite":
            url = sqlite_book(tmp_path)
        else:
            name = f"lienwatch_api_{os.getpid()}"
            url = stack.enter_context(postgres_database(name, migrated=True))
            build_book(url)
        with api_client(url) as client:
            yield client, url
