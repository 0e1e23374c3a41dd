"""Fixtures of the gateway tests: a store of the module's own and a live gateway over it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine

from lienwatch.config import GatewaySettings
from lienwatch.store import migrate
from lienwatch.store.db import make_engine
from tests.conftest import postgres_database
from tests.telematics.support import LiveGateway, live_gateway

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:
    """A migrated database of the module's own (the gateway commits: no shared rollback)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('gw') / 'gateway.sqlite3'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
        return
    name = f"lienwatch_gw_{request.module.__name__.rsplit('.', 1)[-1]}_{os.getpid()}"
    with postgres_database(name) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def live(store_url: str) -> Callable[..., contextlib.AbstractContextManager[LiveGateway]]:
    """``with live(**gateway_settings) as gw:`` a gateway over this module's store."""
    return lambda **overrides: live_gateway(store_url, GatewaySettings(**overrides))
