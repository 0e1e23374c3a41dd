"""teams: the teams users belong to, so that `lienwatch user add --team` refuses a typo

Every team a user already names is created (its display name is its name).

Revision ID: 0012
Revises: 0011 (device fitted on)
Create Date: 2026-12-06 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("name", name=op.f("uq_teams_name")),
    )
    users = sa.table("users", sa.column("team", sa.String))
    teams = sa.table("teams", sa.column("name", sa.String), sa.column("display_name", sa.String))
    connection = op.get_bind()
    named = connection.scalars(
        sa.select(users.c.team).where(users.c.team.is_not(None)).distinct()
    ).all()
    if named:
        connection.execute(teams.insert(), [{"name": n, "display_name": n} for n in sorted(named)])


def downgrade() -> None:
    op.drop_table("teams")
