"""The live EHR feed's message log, appointment ids and status, guardian and letter languages

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 06:53:49.658913
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('feedmessage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sending_application', sqlmodel.sql.sqltypes.AutoString(length=180), nullable=False),
    sa.Column('sending_facility', sqlmodel.sql.sqltypes.AutoString(length=180), nullable=False),
    sa.Column('control_id', sqlmodel.sql.sqltypes.AutoString(length=199), nullable=False),
    sa.Column('message_type', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('ack_code', sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
    sa.Column('error_field', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('feedmessage', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedmessage_ack_code'), ['ack_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedmessage_message_type'), ['message_type'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedmessage_received_at'), ['received_at'], unique=False)
        batch_op.create_index('uq_feedmessage_applied', ['sending_application', 'sending_facility', 'control_id'], unique=True, sqlite_where=sa.text("ack_code = 'AA'"), postgresql_where=sa.text("ack_code = 'AA'"))

    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ehr_appointment_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False, server_default='booked'))
        batch_op.create_index(batch_op.f('ix_appointment_status'), ['status'], unique=False)
        batch_op.create_unique_constraint('uq_appointment_ehr_id', ['ehr_appointment_id'])

    with op.batch_alter_table('guardian', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))

    with op.batch_alter_table('issuebatch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.create_index(batch_op.f('ix_issuebatch_language'), ['language'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('issuebatch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_issuebatch_language'))
        batch_op.drop_column('language')

    with op.batch_alter_table('guardian', schema=None) as batch_op:
        batch_op.drop_column('language')

    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.drop_constraint('uq_appointment_ehr_id', type_='unique')
        batch_op.drop_index(batch_op.f('ix_appointment_status'))
        batch_op.drop_column('status')
        batch_op.drop_column('ehr_appointment_id')

    with op.batch_alter_table('feedmessage', schema=None) as batch_op:
        batch_op.drop_index('uq_feedmessage_applied', sqlite_where=sa.text("ack_code = 'AA'"), postgresql_where=sa.text("ack_code = 'AA'"))
        batch_op.drop_index(batch_op.f('ix_feedmessage_received_at'))
        batch_op.drop_index(batch_op.f('ix_feedmessage_message_type'))
        batch_op.drop_index(batch_op.f('ix_feedmessage_ack_code'))

    op.drop_table('feedmessage')
