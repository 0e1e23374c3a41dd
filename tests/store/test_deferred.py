"""Deferred inserts (the ledger's entries) commit and roll back exactly with what they
record, savepoints included, through the same transaction() the CLI and API use."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, func, insert, select

from lienwatch.store.db import (
    among,
    defer_insert,
    make_engine,
    savepoint,
    session_factory,
    transaction,
    write_deferred,
)
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


def test_among_selects_the_rows_of_an_in_list_with_one_statement_on_postgresql(db_session):
    """``among`` (``= ANY(:array)`` on PostgreSQL, IN lists elsewhere) selects the same rows
    as a plain IN: none for no values, duplicates and absent values ignored, and more
    values than one SQLite IN list takes (chunks) still one condition on PostgreSQL."""
    for n in range(12):
        defer_insert(db_session, LedgerEntry, entry(n))
    write_deferred(db_session)
    ids = list(db_session.scalars(select(LedgerEntry.id).order_by(LedgerEntry.id)))
    wanted = [ids[1], ids[5], ids[5], ids[11], -7, *range(10**6, 10**6 + 6000)]
    conditions = among(db_session, LedgerEntry.id, wanted)
    postgres = db_session.get_bind().dialect.name == "postgresql"
    assert len(conditions) == (1 if postgres else 2)  # 6,005 values: two IN lists of 5,000
    found = sorted(
        i for c in conditions for i in db_session.scalars(select(LedgerEntry.id).where(c))
    )
    plain = sorted(db_session.scalars(select(LedgerEntry.id).where(LedgerEntry.id.in_(wanted))))
    assert found == plain == [ids[1], ids[5], ids[11]]
    subjects = among(db_session, LedgerEntry.subject, ["L3", "L4", "nobody"])
    assert sorted(s for c in subjects for s in db_session.scalars(
        select(LedgerEntry.subject).where(c))) == ["L3", "L4"]  # fmt: skip
    assert among(db_session, LedgerEntry.id, []) == []


def test_a_deferred_statement_refers_to_rows_deferred_before_it(store_url):
    """A row deferred through an INSERT statement of its own goes in after the rows
    deferred before it into other tables, so its values may read them (a contact attempt
    linked to its action by the action's key)."""
    engine = make_engine(store_url)
    factory = session_factory(engine)
    pointing = insert(LedgerEntry.__table__).values(
        subject=select(LedgerEntry.subject).where(LedgerEntry.body == bindparam("of"))
        .scalar_subquery()
    )  # fmt: skip
    with transaction(factory) as session:
        defer_insert(session, LedgerEntry, entry(1))
        defer_insert(session, pointing, {"kind": "case_action", "body": "{}", "of": '{"n":1}'})
    assert subjects(factory) == ["L1", "L1"]
    engine.dispose()
