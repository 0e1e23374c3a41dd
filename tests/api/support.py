"""A small book behind the whole ``lienwatch serve`` application, for the API's tests: two
teams, a user of every role, a case assigned to each agent."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lienwatch.access.credentials import hash_password
from lienwatch.bus import InProcessBus
from lienwatch.config import FollowupSettings, Settings
from lienwatch.runtime import Ingest, serve_app
from lienwatch.services.followup import FollowupService
from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import make_engine, session_factory
from lienwatch.store.repositories import TeamRepository
from lienwatch.store.tables import Case, Loan, Task, User
from lienwatch.store.telematics import StoreDeviceDirectory, StoreFixWriter
from lienwatch.telematics.registry import DeviceRegistry
from tests import factories
from tests.conftest import head_sqlite

PASSWORD = "correct horse battery"
#: username -> (role, team)
USERS = {
    "ann": ("agent", "east"),
    "bob": ("agent", "west"),
    "sam": ("supervisor", "east"),
    "nia": ("analyst", None),
    "aud": ("auditor", None),
    "adm": ("admin", None),
}
#: loan -> the agent its case is assigned to
OWNERS = {"L1": "ann", "L2": "bob"}
TICK_AT = datetime.fromisoformat("2026-02-21T08:30:00+08:00")


def build_book(url: str) -> None:
    """Loans L1 (ann's case, team east) and L2 (bob's, team west), past their first due
    date with their follow-up ticked twice (each has a call queued for its agent), and the
    users of :data:`USERS`, all with :data:`PASSWORD`."""
    engine = make_engine(url)
    digest = hash_password(PASSWORD)
    with Session(engine) as session, session.begin():
        TeamRepository(session).ensure("east", "west")
        for ref in OWNERS:
            factories.loan(session, ref)
        session.add_all(
            User(username=name, display_name=name.title(), role=role, team=team,
                 skills={"mode": "phone"}, password_hash=digest)
            for name, (role, team) in USERS.items()
        )  # fmt: skip
        for day in range(15, 22):
            run_nightly(session, ProductCatalogue(), as_of=date(2026, 2, day))
        service = FollowupService.from_settings(session, FollowupSettings(),
                                                time_zone="Asia/Shanghai")  # fmt: skip
        for days in range(4, -1, -1):  # SMS, automated calls, then an agent's call
            service.tick(at=TICK_AT - timedelta(days=days))
        for ref, owner in OWNERS.items():
            user_id = session.scalar(select(User.id).where(User.username == owner))
            loan_id = session.scalar(select(Loan.id).where(Loan.ref == ref))
            session.execute(update(Case).where(Case.loan_id == loan_id)
                            .values(assignee_id=user_id))  # fmt: skip
            session.execute(update(Task).where(Task.loan_id == loan_id)
                            .values(assignee_id=user_id, assigned_at=TICK_AT))  # fmt: skip
    engine.dispose()


@cache
def _template() -> Path:
    """The book of :func:`build_book` on SQLite, built once per test process."""
    folder = Path(tempfile.mkdtemp(prefix="lienwatch-api-book-"))
    url = head_sqlite(folder / "book.sqlite3")
    build_book(url)
    return folder / "book.sqlite3"


def sqlite_book(folder: Path) -> str:
    """The URL of a copy of the book in ``folder`` (a copy is milliseconds, a build seconds)."""
    shutil.copyfile(_template(), folder / "book.sqlite3")
    return f"sqlite:///{folder / 'book.sqlite3'}"


def serve_application(url: str, settings: Settings | None = None) -> FastAPI:
    """The application ``lienwatch serve`` runs over the database at ``url`` (no gateway, no
    scheduler)."""
    settings = settings or Settings(database_url=url)
    engine = make_engine(url)
    factory = session_factory(engine)
    writer = StoreFixWriter(factory)
    registry = DeviceRegistry(StoreDeviceDirectory(factory), unknown_devices="reject")
    ingest = Ingest(engine, factory, registry,
                    InProcessBus(writer), writer)  # fmt: skip
    return serve_app(ingest, settings, gateway=None, scheduler=None)


@contextmanager
def api_client(url: str, settings: Settings | None = None) -> Iterator[TestClient]:
    with TestClient(serve_application(url, settings), base_url="http://127.0.0.1") as client:
        yield client


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    """The ``Authorization`` header of a fresh login of ``username``."""
    response = client.post("/api/v1/auth/login", json={"username": username,
                                                       "password": password})  # fmt: skip
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


#: Run a test taking the ``book`` fixture on SQLite and on PostgreSQL.
BOTH = pytest.mark.parametrize(
    "book", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
