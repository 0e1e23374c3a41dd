"""Several scheduler workers on one PostgreSQL database never execute a step twice."""

from __future__ import annotations

import os
from datetime import date

import pytest
from sqlalchemy import func, select

from lienwatch.services.servicing import run_nightly
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Action
from tests import factories
from tests.conftest import postgres_database
from tests.services.test_followup_engine import CATALOGUE, MORNING, service


@pytest.mark.postgres
def test_a_second_worker_skips_the_tick_the_first_one_holds():
    with postgres_database(f"lienwatch_workers_{os.getpid()}") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        factory = session_factory(engine)
        with transaction(factory) as session:
            factories.loan(session)
            for day in (date(2026, 2, 15), date(2026, 2, 16)):
                run_nightly(session, CATALOGUE, as_of=day)

        first, second = factory(), factory()
        try:
            with first.begin():
                worker_a, gateway_a = service(first)
                report_a = worker_a.tick(at=MORNING)
                # While the first worker's tick is uncommitted, the second one skips at once.
                with second.begin():
                    worker_b, gateway_b = service(second)
                    report_b = worker_b.tick(at=MORNING)
            assert report_a.skipped == 0 and report_a.executed > 0
            assert report_b.skipped == 1 and report_b.executed == 0 and not report_b.raised
            # Once the first committed, the step it ran is no longer due for anyone.
            with second.begin():
                again = service(second)[0].tick(at=MORNING)
            assert again.skipped == 0 and again.executed == 0 and not again.raised
            assert len(gateway_a.sent) == 1 and not gateway_b.sent
        finally:
            first.close()
            second.close()
        with transaction(factory) as session:
            sms = session.scalar(select(func.count()).where(Action.kind == "sms"))
        assert sms == 1
        engine.dispose()
