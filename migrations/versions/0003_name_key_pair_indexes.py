"""Name keys: each of first_key and last_key leads a two-column index, so "first last" is one
index seek per pair of candidate keys instead of a walk through the commoner half

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 11:18:15.667259
"""
from collections.abc import Sequence

from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ('patient', 'guardian')


def upgrade() -> None:
    # New indexes before the old ones go: a bot still running on this database keeps an index
    # for its name searches throughout (the leading columns serve what the old ones did).
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(f'ix_{table}_last_first', ['last_key', 'first_key'], unique=False)
            batch_op.create_index(f'ix_{table}_first_last', ['first_key', 'last_key'], unique=False)
            batch_op.drop_index(f'ix_{table}_last_key')
            batch_op.drop_index(f'ix_{table}_first_key')


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(f'ix_{table}_last_key', ['last_key'], unique=False)
            batch_op.create_index(f'ix_{table}_first_key', ['first_key'], unique=False)
            batch_op.drop_index(f'ix_{table}_first_last')
            batch_op.drop_index(f'ix_{table}_last_first')
