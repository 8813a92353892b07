"""harvest_state.window_done: a harvest window that was started but not finished

Why: a nightly killed before its first page was committed left no resumption token, so
nothing told the next run (with another date window) that the old window was still owed.
Existing rows are finished windows (or hold a token, which also means "owed").

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 05:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('harvest_state') as batch:
        batch.add_column(sa.Column('window_done', sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('harvest_state') as batch:
        batch.drop_column('window_done')
