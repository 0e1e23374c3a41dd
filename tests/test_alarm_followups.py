"""The live monitor's follow-ups of tracker alarms (``jobs.alarm_followups``) racing another
writer on PostgreSQL: only the trigger the other writer raised is left out of a batch."""

from __future__ import annotations

import os
import threading
import time

import pytest
from sqlalchemy import select

from lienwatch import clock
from lienwatch.config import Settings
from lienwatch.jobs import alarm_followups
from lienwatch.services.followup import FollowupService
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Alert, Trigger
from tests import factories
from tests.conftest import postgres_database


@pytest.mark.postgres
def test_a_batch_racing_a_tick_raises_every_trigger_but_the_ticks():
    # the name is the process's own: the any-day run has two suites on one server at once
    with postgres_database(f"lienwatch_alarm_race_{os.getpid()}", migrated=True) as url:
        engine = make_engine(url)
        factory = session_factory(engine)
        settings = Settings()
        keys = [f"RACE-{n}:power_cut" for n in range(3)]

        def alerts(*refs: str) -> None:
            with transaction(factory) as session:
                for ref in refs:
                    loan = factories.loan(session, ref)
                    session.add(Alert(type="power_cut", severity="critical",
                                      key=f"{ref}:power_cut", vehicle_id=loan.vehicle_id,
                                      loan_id=loan.id, started_at=clock.now()))  # fmt: skip

        alerts("RACE-0")

        def service(session):
            return FollowupService.from_settings(session, settings.followup,
                                                 time_zone=settings.time_zone,
                                                 catalogue=ProductCatalogue())  # fmt: skip

        raise_now = alarm_followups(factory, settings)
        assert raise_now([keys[0]]) == 0  # before the engine's first tick: the tick adopts it
        with transaction(factory) as session:
            service(session).tick(at=clock.now())  # adopts RACE-0
        alerts("RACE-1", "RACE-2")
        # "the tick" raises RACE-1's trigger and holds its transaction open meanwhile
        other = factory()
        assert len(service(other).raise_for_alerts([keys[1]], at=clock.now())) == 1
        other.flush()
        raised: list[int] = []
        batch = threading.Thread(target=lambda: raised.append(raise_now(keys[1:])))
        batch.start()
        time.sleep(1.0)  # the batch waits on RACE-1's source key
        other.commit()
        other.close()
        batch.join(30)
        assert raised == [1]  # RACE-2's, raised alone after the batch was refused
        with factory() as session:
            sources = sorted(session.scalars(select(Trigger.source_key)))
        assert len(sources) == 3 and len(set(sources)) == 3
        engine.dispose()
