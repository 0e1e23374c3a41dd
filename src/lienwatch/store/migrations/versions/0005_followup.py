"""follow-up engine: triggers, agent tasks, promises, contact attempts; case strategy and arm

Revision ID: 0005
Revises: 0004 (device auth codes)
Create Date: 2026-11-28 19:29:31
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import lienwatch.store.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("borrowers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=200), nullable=True))

    op.create_table(
        "triggers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("loan_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("source_key", sa.String(length=160), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("ladder", sa.String(length=80), nullable=False),
        sa.Column("anchor_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("opened_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("step", sa.SmallInteger(), nullable=False),
        sa.Column("next_due_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "first_deadline_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "first_action_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("warned_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("breached_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("breach_team", sa.String(length=80), nullable=True),
        sa.Column("resolved_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=80), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_triggers_alert_id_alerts")
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_triggers_case_id_cases")),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_triggers_loan_id_loans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triggers")),
        sa.UniqueConstraint("source_key", name=op.f("uq_triggers_source_key")),
    )
    with op.batch_alter_table("triggers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_triggers_alert_id"), ["alert_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_triggers_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_triggers_loan_id"), ["loan_id"], unique=False)
        batch_op.create_index(
            "ix_triggers_open_deadline",
            ["deadline_at"],
            unique=False,
            sqlite_where=sa.text("resolved_at IS NULL"),
            postgresql_where=sa.text("resolved_at IS NULL"),
        )

    op.create_table(
        "contact_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("loan_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recipient", sa.String(length=20), nullable=False),
        sa.Column("agency", sa.String(length=80), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("rule", sa.String(length=48), nullable=False),
        sa.Column(
            "next_allowed_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("conversation", sa.Boolean(), nullable=False),
        sa.Column("consented", sa.Boolean(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["action_id"], ["actions.id"], name=op.f("fk_contact_attempts_action_id_actions")
        ),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_contact_attempts_loan_id_loans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_attempts")),
    )
    with op.batch_alter_table("contact_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contact_attempts_loan_id"), ["loan_id"], unique=False)

    op.create_table(
        "promises",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("loan_id", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("made_on", sa.Date(), nullable=False),
        sa.Column("promised_on", sa.Date(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("decided_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["action_id"], ["actions.id"], name=op.f("fk_promises_action_id_actions")
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_promises_case_id_cases")),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_promises_loan_id_loans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promises")),
    )
    with op.batch_alter_table("promises", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_promises_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_promises_loan_id"), ["loan_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_promises_status"), ["status"], unique=False)

    op.create_table(
        "tasks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column(
            "trigger_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("loan_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.SmallInteger(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("skill", sa.String(length=8), nullable=False),
        sa.Column("team", sa.String(length=80), nullable=True),
        sa.Column("due_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("priority", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("assigned_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["users.id"], name=op.f("fk_tasks_assignee_id_users")
        ),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_tasks_case_id_cases")),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_tasks_loan_id_loans")),
        sa.ForeignKeyConstraint(
            ["trigger_id"], ["triggers.id"], name=op.f("fk_tasks_trigger_id_triggers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        sa.UniqueConstraint("key", name=op.f("uq_tasks_key")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasks_assignee_id"), ["assignee_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_status"), ["status"], unique=False)

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("strategy", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("arm", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("stratum", sa.String(length=8), nullable=True))
        batch_op.add_column(
            sa.Column("status_at", lienwatch.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("hold", sa.String(length=16), nullable=True))
        batch_op.create_index(batch_op.f("ix_cases_stratum"), ["stratum"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_stratum"))
        batch_op.drop_column("hold")
        batch_op.drop_column("status_at")
        batch_op.drop_column("stratum")
        batch_op.drop_column("arm")
        batch_op.drop_column("strategy")

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_status"))
        batch_op.drop_index(batch_op.f("ix_tasks_case_id"))
        batch_op.drop_index(batch_op.f("ix_tasks_assignee_id"))

    op.drop_table("tasks")
    with op.batch_alter_table("promises", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_promises_status"))
        batch_op.drop_index(batch_op.f("ix_promises_loan_id"))
        batch_op.drop_index(batch_op.f("ix_promises_case_id"))

    op.drop_table("promises")
    with op.batch_alter_table("contact_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_attempts_loan_id"))

    op.drop_table("contact_attempts")
    with op.batch_alter_table("triggers", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_triggers_open_deadline",
            sqlite_where=sa.text("resolved_at IS NULL"),
            postgresql_where=sa.text("resolved_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_triggers_loan_id"))
        batch_op.drop_index(batch_op.f("ix_triggers_case_id"))
        batch_op.drop_index(batch_op.f("ix_triggers_alert_id"))

    op.drop_table("triggers")
    with op.batch_alter_table("borrowers", schema=None) as batch_op:
        batch_op.drop_column("email")
