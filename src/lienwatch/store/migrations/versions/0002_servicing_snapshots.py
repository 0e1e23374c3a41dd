"""servicing snapshots, bucket history, event outbox

Revision ID: 0002
Revises: 0001 (initial schema)
Create Date: 2026-11-28 19:11:32.292874
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import lienwatch.store.types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bucket_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('loan_id', sa.Integer(), nullable=False),
    sa.Column('changed_on', sa.Date(), nullable=False),
    sa.Column('from_bucket', sa.String(length=8), nullable=True),
    sa.Column('to_bucket', sa.String(length=8), nullable=False),
    sa.Column('dpd', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_bucket_history_loan_id_loans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bucket_history')),
    sa.UniqueConstraint('loan_id', 'changed_on', name=op.f('uq_bucket_history_loan_id_changed_on'))
    )
    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=160), nullable=False),
    sa.Column('loan_id', sa.Integer(), nullable=True),
    sa.Column('occurred_at', lienwatch.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('consumed_at', lienwatch.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', lienwatch.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_events_loan_id_loans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events')),
    sa.UniqueConstraint('key', name=op.f('uq_events_key'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_loan_id'), ['loan_id'], unique=False)

    op.create_table('loan_snapshots',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('loan_id', sa.Integer(), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('dpd', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('outstanding_principal', sa.BigInteger(), nullable=False),
    sa.Column('overdue_principal', sa.BigInteger(), nullable=False),
    sa.Column('overdue_interest', sa.BigInteger(), nullable=False),
    sa.Column('penalty_accrued', sa.BigInteger(), nullable=False),
    sa.Column('fees_due', sa.BigInteger(), nullable=False),
    sa.Column('payoff', sa.BigInteger(), nullable=False),
    sa.Column('credit', sa.BigInteger(), nullable=False),
    sa.Column('next_due_on', sa.Date(), nullable=True),
    sa.Column('collateral_value', sa.BigInteger(), nullable=False),
    sa.Column('ead', sa.BigInteger(), nullable=False),
    sa.Column('recoverable', sa.BigInteger(), nullable=False),
    sa.Column('unsecured', sa.BigInteger(), nullable=False),
    sa.Column('ltv_bps', sa.Integer(), nullable=False),
    sa.Column('over_ltv_cap', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], name=op.f('fk_loan_snapshots_loan_id_loans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_loan_snapshots')),
    sa.UniqueConstraint('loan_id', 'as_of', name=op.f('uq_loan_snapshots_loan_id_as_of'))
    )
    with op.batch_alter_table('loan_snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loan_snapshots_as_of'), ['as_of'], unique=False)

    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fee_financed', sa.Boolean(), nullable=False, server_default=sa.false()))



def downgrade() -> None:
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_column('fee_financed')

    with op.batch_alter_table('loan_snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loan_snapshots_as_of'))

    op.drop_table('loan_snapshots')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_loan_id'))
        batch_op.drop_index(batch_op.f('ix_events_kind'))

    op.drop_table('events')
    op.drop_table('bucket_history')
