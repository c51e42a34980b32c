"""Owner-aware delivery claims: each claim names the process holding it (a heartbeat renews a
short lease, so a dead process's claim is taken over within seconds and a live one's never),
and pending work gets the longer retry schedule that spans an outage of several hours

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 01:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# bot/delivery/outbox.py: the attempts of the old schedule (6) and of the new one (14).
OLD_ATTEMPTS, NEW_ATTEMPTS = 6, 14


def upgrade() -> None:
    with op.batch_alter_table('outgoingwork', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    # Work still pending when the bot is upgraded gets the new schedule's extra attempts
    # ("Retry upload" may have granted more: add the difference rather than set a number).
    op.execute(
        sa.text(
            "UPDATE outgoingwork SET max_attempts = max_attempts + :extra WHERE status = 'pending'"
        ).bindparams(extra=NEW_ATTEMPTS - OLD_ATTEMPTS)
    )


def downgrade() -> None:
    with op.batch_alter_table('outgoingwork', schema=None) as batch_op:
        batch_op.drop_column('claimed_by')
