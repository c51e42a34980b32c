"""Feed messages keyed by content too (a reused control id with new content is applied), and
patients merged away by an HL7 A40 (kept for their history, hidden from staff)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 01:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPLIED = sa.text("ack_code = 'AA'")
# Only merged charts: a search's "merged_into_id IS NULL" never picks it over the name indexes.
MERGED = sa.text("merged_into_id IS NOT NULL")
KEY = ['sending_application', 'sending_facility', 'control_id']


def upgrade() -> None:
    # Rows logged before have no digest (''): a resend of one of them after the upgrade is
    # applied once more, which an ADT or SIU message tolerates (it sets the same values).
    with op.batch_alter_table('feedmessage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default=''))
        batch_op.create_index('uq_feedmessage_applied_content', [*KEY, 'content_digest'], unique=True, sqlite_where=APPLIED, postgresql_where=APPLIED)
        batch_op.drop_index('uq_feedmessage_applied', sqlite_where=APPLIED, postgresql_where=APPLIED)

    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merged_into_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_patient_merged_into_id', ['merged_into_id'], unique=False, sqlite_where=MERGED, postgresql_where=MERGED)
        batch_op.create_foreign_key('fk_patient_merged_into_id_patient', 'patient', ['merged_into_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_constraint('fk_patient_merged_into_id_patient', type_='foreignkey')
        batch_op.drop_index('ix_patient_merged_into_id', sqlite_where=MERGED, postgresql_where=MERGED)
        batch_op.drop_column('merged_into_id')

    # Two applied messages may now share a control id, which the older key cannot hold: only
    # the first applied row of each control id stays in the log.
    op.execute(
        "DELETE FROM feedmessage WHERE ack_code = 'AA' AND id NOT IN ("
        "SELECT MIN(id) FROM feedmessage WHERE ack_code = 'AA' "
        "GROUP BY sending_application, sending_facility, control_id)"
    )
    with op.batch_alter_table('feedmessage', schema=None) as batch_op:
        batch_op.create_index('uq_feedmessage_applied', KEY, unique=True, sqlite_where=APPLIED, postgresql_where=APPLIED)
        batch_op.drop_index('uq_feedmessage_applied_content', sqlite_where=APPLIED, postgresql_where=APPLIED)
        batch_op.drop_column('content_digest')
