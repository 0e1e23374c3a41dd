"""``lienwatch positions purge``: positions older than the cut go, in short batches, on both
backends; the purge is in the ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from lienwatch.cli import app
from lienwatch.services.positions import purge_positions_batch
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.repositories import PositionRepository
from lienwatch.store.tables import LedgerEntry, Position
from tests import factories

NOW = datetime(2026, 9, 1, 4, 0, tzinfo=UTC)
CUT = NOW - timedelta(days=180)  # 2026-03-05T04:00Z


def _stored_times(factory) -> list[datetime]:
    with factory() as session:
        times = session.scalars(select(Position.fix_time).order_by(Position.fix_time)).all()
    return [moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment for moment in times]


@pytest.fixture
def positions(store_url):
    """Two trackers with fixes from 400 days before NOW to now: 5 older than the cut (one a
    second before it), 3 not (one exactly at it)."""
    factory = session_factory(make_engine(store_url))
    times = [NOW - timedelta(days=days) for days in (400, 300, 200, 181)]
    times += [CUT - timedelta(seconds=1), CUT, NOW - timedelta(days=1), NOW]
    with transaction(factory) as session:
        devices = [
            factories.device(session, ident) for ident in ("860000000000001", "014840114749")
        ]
        rows = [
            {"device_id": devices[n % 2].id, "fix_time": moment, "received_at": moment,
             "lat": 23.1, "lon": 113.3}
            for n, moment in enumerate(times)
        ]  # fmt: skip
        assert PositionRepository(session).add_many(rows) == 8
    yield store_url, factory, times
    factory.kw["bind"].dispose()


def test_batches_delete_only_what_is_older_than_the_cut(positions):
    _url, factory, times = positions
    batches = []
    while True:
        with transaction(factory) as session:
            batches.append(purge_positions_batch(session, before=CUT, limit=2))
        if batches[-1] == 0:
            break
    assert batches == [2, 2, 1, 0]
    assert _stored_times(factory) == times[5:]


def test_the_purge_command_deletes_old_positions_and_records_it(positions, monkeypatch, tmp_path):
    url, factory, times = positions
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIENWATCH_DATABASE_URL", url)
    runner = CliRunner()
    args = ["positions", "purge", "--older-than", "180d", "--at", NOW.isoformat(), "--by", "ops"]
    first = runner.invoke(app, [*args, "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == {
        "before": CUT.isoformat(), "deleted": 5, "partitions_dropped": []
    }
    assert _stored_times(factory) == times[5:]
    again = runner.invoke(app, args)  # nothing has aged past the cut since
    assert again.exit_code == 0, again.output
    assert again.output.strip() == f"deleted 0 positions fixed before {CUT.isoformat()}"
    with factory() as session:
        bodies = session.scalars(
            select(LedgerEntry.body).where(LedgerEntry.kind == "positions_purged")
            .order_by(LedgerEntry.id)
        ).all()  # fmt: skip
        assert session.scalar(select(func.count()).select_from(Position)) == 3
    entries = [json.loads(body) for body in bodies]
    assert [(e["by"], e["data"]) for e in entries] == [
        ("ops", {"before": CUT.isoformat(), "deleted": 5}),
        ("ops", {"before": CUT.isoformat(), "deleted": 0}),
    ]


@pytest.mark.parametrize("age", ["180", "0d", "6m", "-3d"])
def test_a_bad_age_is_refused_naming_the_option(age, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["positions", "purge", "--older-than", age])
    assert result.exit_code == 2
    assert "--older-than" in result.output
    assert "is not an age in days such as 180d" in result.output
