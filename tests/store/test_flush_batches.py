"""A flush of many new actions, triggers and tasks sends one INSERT per table on each backend
(their unique keys are the insert sentinels), and every new row gets its own id."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event, select

from lienwatch.store.tables import Action, Case, Task, Trigger
from tests import factories

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_new_actions_triggers_and_tasks_go_in_with_one_insert_per_table(db_session):
    loan = factories.loan(db_session)
    case = Case(loan_id=loan.id)
    db_session.add(case)
    db_session.flush()
    triggers = [Trigger(case_id=case.id, loan_id=loan.id, kind="missed_installment",
                        source_key=f"missed:{n}", ladder="x", anchor_at=AT, opened_at=AT,
                        next_due_at=AT, deadline_at=AT, first_deadline_at=AT)
                for n in range(30)]  # fmt: skip
    actions = [Action(case_id=case.id, kind="note", performed_at=AT, idempotency_key=f"note:{n}")
               for n in range(30)]  # fmt: skip
    db_session.add_all([*triggers, *actions])
    inserts = _inserts(db_session, db_session.flush)
    assert inserts == {"triggers": 1, "actions": 1}
    tasks = [Task(key=f"task:{n}", trigger_id=trigger.id, case_id=case.id, loan_id=loan.id,
                  step=0, channel="call", skill="phone", due_at=AT, deadline_at=AT)
             for n, trigger in enumerate(triggers)]  # fmt: skip
    db_session.add_all(tasks)
    assert _inserts(db_session, db_session.flush) == {"tasks": 1}
    for model, key, rows in ((Trigger, Trigger.source_key, triggers),
                             (Action, Action.idempotency_key, actions), (Task, Task.key, tasks)):
        # each object got the id of its own row: the store's keys by id are the objects'
        stored = dict(db_session.execute(select(model.id, key)).all())
        assert stored == {row.id: getattr(row, key.key) for row in rows}


def _inserts(session, flush) -> dict[str, int]:
    """The INSERT statements ``flush`` sends, by table."""
    counted: dict[str, int] = {}
    engine = session.get_bind().engine

    def count(_conn, _cursor, statement, _params, _context, _executemany) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO"):
            table = statement.split()[2]
            counted[table] = counted.get(table, 0) + 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        flush()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return counted
