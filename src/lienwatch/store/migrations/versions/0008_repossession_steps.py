"""repossession_steps: each step a repossession waits for, under its SLA, for the watchdog

One row per step (approve, recover, appraise, sell, post, write_off, return_surplus) with its
assignee, when its SLA clock started, its deadline, when it was done, and the watchdog's
escalation and breach. It replaces ``repossessions.next_deadline_at`` (the open step's
deadline), so the deadline has one home.

Backfill, from each repossession's ``repossession`` actions on its case: every step taken so
far (started when the step before it was taken, done when it was) and the step it waits for now
(its deadline is the old ``next_deadline_at``, exactly). The deadlines of steps already taken
were never stored: they are rebuilt from the SLAs shipped with 0007, moved just enough that the
``late`` flag recorded on the step's action still holds (the flag is the record).
Downgrade puts the open step's deadline back into ``repossessions.next_deadline_at``.

Revision ID: 0008
Revises: 0007 (repossession)
Create Date: 2026-12-02 10:05:00
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

import lienwatch.store.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Frozen here as 0007 shipped them: a migration must not change with later code.
SHIPPED_SLA_H = {
    "approve": 24, "recover": 14 * 24, "appraise": 3 * 24, "sell": 30 * 24, "post": 48,
    "write_off": 30 * 24, "return_surplus": 7 * 24,
}  # fmt: skip
WAITS_FOR = {
    "ordered": "approve", "approved": "recover", "recovered": "appraise", "appraised": "sell",
    "sold": "post", "deficiency": "write_off", "surplus_due": "return_surplus",
}  # fmt: skip
SUPERVISOR_STEPS = ("approve", "write_off")  # held by nobody: any supervisor takes them
UTC_TIME = lienwatch.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    steps = op.create_table(
        "repossession_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repossession_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("started_at", UTC_TIME, nullable=False),
        sa.Column("deadline_at", UTC_TIME, nullable=False),
        sa.Column("done_at", UTC_TIME, nullable=True),
        sa.Column("warned_at", UTC_TIME, nullable=True),
        sa.Column("breached_at", UTC_TIME, nullable=True),
        sa.Column("breach_team", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["users.id"], name=op.f("fk_repossession_steps_assignee_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["repossession_id"],
            ["repossessions.id"],
            name=op.f("fk_repossession_steps_repossession_id_repossessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repossession_steps")),
        sa.UniqueConstraint(
            "repossession_id", "step", name=op.f("uq_repossession_steps_repossession_id_step")
        ),
    )
    with op.batch_alter_table("repossession_steps", schema=None) as batch_op:
        batch_op.create_index(
            "ix_repossession_steps_open_deadline",
            ["deadline_at"],
            unique=False,
            sqlite_where=sa.text("done_at IS NULL"),
            postgresql_where=sa.text("done_at IS NULL"),
        )
    rows = _backfill(op.get_bind())
    if rows:
        op.bulk_insert(steps, rows)
    # In place (SQLite 3.35+ drops a column itself): copying the table, as batch mode would,
    # means dropping it under its costs and steps, which the foreign keys refuse.
    with op.batch_alter_table("repossessions", schema=None, recreate="never") as batch_op:
        batch_op.drop_index(batch_op.f("ix_repossessions_next_deadline_at"))
        batch_op.drop_column("next_deadline_at")


def _backfill(bind: sa.Connection) -> list[dict[str, Any]]:
    """The step rows of every repossession, rebuilt from its actions."""
    repos = sa.table(
        "repossessions", sa.column("id"), sa.column("case_id"), sa.column("status"),
        sa.column("assignee_id"), sa.column("ordered_at", UTC_TIME),
        sa.column("next_deadline_at", UTC_TIME),
    )  # fmt: skip
    actions = sa.table(
        "actions", sa.column("id"), sa.column("case_id"), sa.column("kind"),
        sa.column("outcome"), sa.column("performed_at", UTC_TIME),
        sa.column("details", sa.JSON()),
    )  # fmt: skip
    taken: dict[int, list[Any]] = defaultdict(list)
    for action in bind.execute(
        sa.select(actions.c.case_id, actions.c.outcome, actions.c.performed_at,
                  actions.c.details)
        .where(actions.c.kind == "repossession", actions.c.outcome.in_(list(SHIPPED_SLA_H)))
        .order_by(actions.c.performed_at, actions.c.id)
    ):  # fmt: skip
        taken[action.case_id].append(action)
    rows = []
    for repo in bind.execute(sa.select(repos).order_by(repos.c.id)):
        clock = repo.ordered_at
        for action in taken[repo.case_id]:
            deadline = _past_deadline(action.outcome, clock, action.performed_at,
                                      bool((action.details or {}).get("late")))  # fmt: skip
            rows.append(_row(repo, action.outcome, clock, deadline, action.performed_at))
            clock = action.performed_at
        waiting = WAITS_FOR.get(repo.status)
        if waiting is not None:
            deadline = repo.next_deadline_at or clock + timedelta(hours=SHIPPED_SLA_H[waiting])
            rows.append(_row(repo, waiting, clock, deadline, None))
    return rows


def _past_deadline(step: str, started: datetime, done: datetime, late: bool) -> datetime:
    """The shipped SLA's deadline, moved just enough that ``late`` holds."""
    deadline = started + timedelta(hours=SHIPPED_SLA_H[step])
    if late and deadline >= done:
        return done - timedelta(seconds=1)
    if not late and deadline < done:
        return done
    return deadline


def _row(
    repo: Any, step: str, started: datetime, deadline: datetime, done: datetime | None
) -> dict[str, Any]:
    return {
        "repossession_id": repo.id,
        "step": step,
        "assignee_id": None if step in SUPERVISOR_STEPS else repo.assignee_id,
        "started_at": started,
        "deadline_at": deadline,
        "done_at": done,
    }


def downgrade() -> None:
    with op.batch_alter_table("repossessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_deadline_at", UTC_TIME, nullable=True))
        batch_op.create_index(
            batch_op.f("ix_repossessions_next_deadline_at"), ["next_deadline_at"], unique=False
        )
    op.execute(
        "UPDATE repossessions SET next_deadline_at = (SELECT s.deadline_at FROM "
        "repossession_steps s WHERE s.repossession_id = repossessions.id AND s.done_at IS NULL)"
    )
    with op.batch_alter_table("repossession_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_repossession_steps_open_deadline")
    op.drop_table("repossession_steps")
