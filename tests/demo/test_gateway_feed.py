"""The demo hook: a sample of simulated trackers through the real gateway into the store."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import delete, func, select

from lienwatch.demo.gateway_feed import feed_sample_through_gateway
from lienwatch.demo.load import StagedFixes, load_book
from lienwatch.sim import SimConfig, generate, write_portfolio
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.tables import Position


def test_feed_stores_what_was_missing_and_acknowledges_everything(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    portfolio = generate(SimConfig(loans=30, days=14, seed=3, as_of=date(2026, 11, 1)))
    factory = session_factory(engine)
    files = write_portfolio(portfolio, tmp_path, positions=False)
    with transaction(factory) as session:
        load_book(session, files, at=datetime(2026, 11, 1, tzinfo=UTC))
        staged = StagedFixes(session, portfolio.positions, tmp_path)
    assert staged.adopt(engine) == len(portfolio.positions)
    assert not (tmp_path / "positions-staging.sqlite3").exists()
    with transaction(factory) as session:
        session.execute(delete(Position).where(Position.id % 2 == 0))  # half of them lost
    before = count_positions(factory)

    stats = feed_sample_through_gateway(
        portfolio.positions, portfolio.devices, url, per_protocol=5, fixes_per_device=60
    )

    assert stats.devices == {"jt808": 5, "gt06": 5}
    assert stats.sent == stats.acked > 0 and stats.device_errors == stats.rejected == 0
    assert stats.stored > 0 and stats.duplicates > 0
    assert stats.stored + stats.duplicates == stats.sent == stats.archived  # history is late
    assert count_positions(factory) == before + stats.stored
    engine.dispose()


def count_positions(factory) -> int:
    with transaction(factory) as session:
        return session.scalar(select(func.count()).select_from(Position))
