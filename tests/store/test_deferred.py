"""Deferred inserts (the ledger's entries) commit and roll back exactly with what they
record, savepoints included, through the same transaction() the CLI and API use."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from lienwatch.store.db import defer_insert, make_engine, savepoint, session_factory, transaction
from lienwatch.store.tables import LedgerEntry


def entry(n: int) -> dict:
    return {"kind": "case_action", "subject": f"L{n}", "body": f'{{"n":{n}}}'}


def subjects(factory) -> list[str]:
    with factory() as session:
        return list(session.scalars(select(LedgerEntry.subject).order_by(LedgerEntry.id)))


def test_deferred_rows_follow_their_transaction_and_savepoints(store_url):
    engine = make_engine(store_url)
    factory = session_factory(engine)
    with transaction(factory) as session:
        defer_insert(session, LedgerEntry, entry(1))  # an act before the savepoint
        with pytest.raises(RuntimeError), savepoint(session):
            defer_insert(session, LedgerEntry, entry(2))  # the failed step's own
            raise RuntimeError
        with savepoint(session):
            defer_insert(session, LedgerEntry, entry(3))
        defer_insert(session, LedgerEntry, entry(4))
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == 2  # 1 and 3
    assert subjects(factory) == ["L1", "L3", "L4"]
    with pytest.raises(RuntimeError), transaction(factory) as session:
        defer_insert(session, LedgerEntry, entry(5))
        session.flush()
        defer_insert(session, LedgerEntry, entry(6))
        raise RuntimeError
    with transaction(factory) as session:
        pass  # a new transaction on a fresh session carries nothing over
    assert subjects(factory) == ["L1", "L3", "L4"]
    engine.dispose()
