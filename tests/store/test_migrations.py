"""Migrations build exactly the tables the code declares, on both backends, and run both ways."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, column, inspect, select, table
from sqlalchemy.orm import Session

from lienwatch.config import RepossessionSettings
from lienwatch.services.repossession import RepossessionService
from lienwatch.store import migrate
from lienwatch.store.db import make_engine
from lienwatch.store.partitions import include_object
from lienwatch.store.tables import Base, RepossessionStep
from lienwatch.store.types import UTCDateTime
from tests.conftest import postgres_database
from tests.services.test_repossession import ORDERED_AT, book_delinquent_loan, order, service


def test_migrated_schema_matches_the_tables(db_engine):
    with db_engine.connect() as connection:
        opts = {"compare_type": True, "include_object": include_object}  # partitions aside
        context = MigrationContext.configure(connection, opts=opts)
        assert compare_metadata(context, Base.metadata) == []
    assert migrate.current_revision(db_engine) == migrate.head_revision()


def test_the_head_read_from_the_file_names_is_alembic_s_head():
    """migrate.head_revision() trusts two conventions; Alembic's graph checks both: each
    script is named after its revision, and each revision's number is above the one it
    follows (so the largest is the head)."""
    scripts = ScriptDirectory(str(migrate.MIGRATIONS))
    for script in scripts.walk_revisions():
        assert Path(script.path).name.split("_", 1)[0] == script.revision
        assert script.down_revision is None or script.down_revision < script.revision
    assert migrate.head_revision() == scripts.get_current_head()


def test_downgrade_to_base_and_back(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def own_engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    """An empty database of the test's own on each backend (the shared one stays at head)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'own.sqlite3'}")
        yield engine
        engine.dispose()
        return
    with postgres_database(f"lienwatch_migrate_{os.getpid()}") as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


def repossession_steps(engine: Engine) -> list[tuple]:
    with Session(engine) as session:
        return [
            (s.step, s.assignee_id, s.started_at, s.deadline_at, s.done_at)
            for s in session.scalars(select(RepossessionStep).order_by(RepossessionStep.id))
        ]


def test_0008_moves_an_open_repossessions_deadline_into_its_steps_and_back(own_engine):
    """Upgrading from 0007 rebuilds the steps from the actions: the open step's deadline is
    the old ``next_deadline_at`` exactly; a past step's is the shipped SLA's, moved so that
    the ``late`` its action recorded still holds. Downgrading puts the open deadline back."""
    migrate.upgrade(own_engine)
    recovered_at = ORDERED_AT + timedelta(days=15)  # on time under a 20-day SLA, late under 14
    with Session(own_engine) as session, session.begin():
        loan = book_delinquent_loan(session)
        settings = RepossessionSettings(sla_h={**RepossessionSettings().sla_h, "recover": 480})
        repo = RepossessionService.from_settings(
            session, settings, followup=service(session).followup
        )
        ordered = order(repo, loan.id)
        repo.approve(repossession_id=ordered.id, by="sam", assignee="rex", at=ORDERED_AT)
        repo.record_recovery(
            repossession_id=ordered.id, by="rex", at=recovered_at, recovered_on=date(2026, 6, 5),
            place="Tongzhou", condition="drivable", property_returned=True,
        )  # fmt: skip
    before = repossession_steps(own_engine)
    appraise_by = recovered_at + timedelta(days=3)
    assert [(s[0], s[3]) for s in before] == [
        ("approve", ORDERED_AT + timedelta(days=1)),
        ("recover", ORDERED_AT + timedelta(days=20)),
        ("appraise", appraise_by),
    ]

    migrate.downgrade(own_engine, "0007")
    assert "repossession_steps" not in inspect(own_engine).get_table_names()
    old = table("repossessions", column("next_deadline_at", UTCDateTime()))
    with own_engine.connect() as connection:
        assert connection.execute(select(old.c.next_deadline_at)).scalar_one() == appraise_by

    migrate.upgrade(own_engine)
    after = repossession_steps(own_engine)
    # the shipped 14 days would make the recovery late: its deadline moves to the recovery
    assert after == [before[0], (*before[1][:3], recovered_at, recovered_at), before[2]]


def test_the_teams_users_name_become_teams(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 't.sqlite3'}")
    migrate.upgrade(engine, "0009")
    users = table("users", column("username"), column("display_name"), column("role"),
                  column("team"), column("skills"), column("daily_capacity"), column("active"),
                  column("created_at"))  # fmt: skip
    with engine.begin() as connection:
        connection.execute(users.insert(), [
            {"username": name, "display_name": name, "role": "agent", "team": team,
             "skills": "{}", "daily_capacity": 60, "active": True,
             "created_at": "2026-12-01 00:00:00.000000"}
            for name, team in (("ann", "east"), ("bob", "east"), ("amy", None), ("tom", "west"))
        ])  # fmt: skip
    migrate.upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(select(column("name"), column("display_name"))
                                  .select_from(table("teams")).order_by("name")).all() == [
            ("east", "east"), ("west", "west")]  # fmt: skip
    engine.dispose()


def test_the_coverage_index_names_the_delinquency_kinds():
    from lienwatch.followup.triggers import DELINQUENCY
    from lienwatch.store.tables.followup import DELINQUENCY_KINDS

    assert tuple(sorted(kind.value for kind in DELINQUENCY)) == DELINQUENCY_KINDS


def test_0037_keeps_the_moment_of_payments_posted_live_only(own_engine):
    """A payment stored within two days of its value date was posted live: its receipt is
    its moment. One stored months after (an imported history) gets none: its receipt's hour
    is the import's, not the borrower's."""
    from datetime import UTC, datetime

    from lienwatch.store.repositories import PaymentRepository
    from tests import factories

    migrate.upgrade(own_engine)
    with Session(own_engine) as session, session.begin():
        loan = factories.loan(session, "MIG37")
        payments = PaymentRepository(session)
        for key, day in (("live", date(2026, 3, 2)), ("imported", date(2026, 2, 15))):
            payments.record(loan=loan, external_id=key, paid_on=day, amount=100_00)
    migrate.downgrade(own_engine, "0036")
    received = table("payments", column("external_id"), column("received_at", UTCDateTime()))
    live_at = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)
    with own_engine.begin() as connection:
        for key, moment in (("live", live_at), ("imported", datetime(2026, 6, 1, 18, tzinfo=UTC))):
            connection.execute(received.update().where(received.c.external_id == key)
                               .values(received_at=moment))  # fmt: skip
    migrate.upgrade(own_engine)
    paid = table("payments", column("external_id"), column("paid_at", UTCDateTime()))
    with own_engine.connect() as connection:
        found = dict(connection.execute(select(paid.c.external_id, paid.c.paid_at)).all())
    assert found == {"live": live_at, "imported": None}
