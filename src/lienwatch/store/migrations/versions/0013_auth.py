"""auth: bearer tokens stored hashed, the audit log, failed logins on users, the index of an
agent's queue (issue 14)

Revision ID: 0013
Revises: 0012 (teams)
Create Date: 2026-12-06 16:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import lienwatch.store.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BIG_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, lienwatch.store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("users") as users:
        users.add_column(
            sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0")
        )
        users.add_column(_time("last_failed_login_at", nullable=True))
    op.create_table(
        "auth_tokens",
        sa.Column("id", BIG_KEY, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        _time("created_at"),
        _time("expires_at"),
        _time("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_auth_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_tokens")),
        sa.UniqueConstraint("digest", name=op.f("uq_auth_tokens_digest")),
    )
    op.create_index(op.f("ix_auth_tokens_user_id"), "auth_tokens", ["user_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", BIG_KEY, nullable=False),
        _time("at"),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index(op.f("ix_audit_log_actor"), "audit_log", ["actor"])
    op.create_index(op.f("ix_audit_log_action"), "audit_log", ["action"])
    queued = sa.text("status = 'queued'")
    op.create_index("ix_tasks_queue", "tasks", ["assignee_id", "priority"],
                    sqlite_where=queued, postgresql_where=queued)  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_tasks_queue", table_name="tasks")
    op.drop_table("audit_log")
    op.drop_table("auth_tokens")
    # Not by a batch copy: on SQLite that drops and recreates `users`, which the rows of
    # other tables reference (SQLite drops a column in place since 3.35).
    op.execute("ALTER TABLE users DROP COLUMN last_failed_login_at")
    op.execute("ALTER TABLE users DROP COLUMN failed_logins")
