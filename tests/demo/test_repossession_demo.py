"""The demo's repossession stage on a small SQLite book: every eligible loan goes all the way."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from lienwatch.demo.repossession import simulate_repossessions
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.servicing import run_nightly
from lienwatch.store.tables import Loan, Payment
from tests import factories
from tests.store.test_repossession import service


def test_every_eligible_loan_is_disposed_of_and_the_totals_add_up(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'd.sqlite3'}")
    migrate.upgrade(engine)
    factory = session_factory(engine)
    with transaction(factory) as session:
        factories.loan(session, ref="L1")
        factories.loan(session, ref="L2", principal=2_000_000)
        for day in (date(2026, 2, 15), date(2026, 2, 16)):
            run_nightly(session, ProductCatalogue(), as_of=day)
        service(session).followup.tick(now=datetime(2026, 2, 17, 0, 30, tzinfo=UTC))
        run_nightly(session, ProductCatalogue(), as_of=date(2026, 5, 20))
    result = simulate_repossessions(factory, as_of=date(2026, 5, 20), seed=3)
    assert result["repossessed"] == 2
    assert result["settled"] + result["written_off"] == 2
    assert result["proceeds"] == result["costs_recovered"] + result["to_loan"] + result["surplus"]
    with transaction(factory) as session:
        statuses = set(session.scalars(select(Loan.status)))
        paid = sum(session.scalars(select(Payment.amount)))
    assert statuses <= {"settled", "written-off"}
    assert paid == result["to_loan"] > 0
    assert 0 < result["recovery_rate"] <= 1
    engine.dispose()
