"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 17:26:00.593711
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('auditevent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('family_id', sa.Integer(), nullable=True),
    sa.Column('patient_id', sa.Integer(), nullable=True),
    sa.Column('details', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('auditevent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_auditevent_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_auditevent_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_auditevent_family_id'), ['family_id'], unique=False)

    op.create_table('family',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_number', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_number')
    )
    op.create_table('reminderrun',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('local_date', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('claimed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('claimed_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('posted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('entries', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'local_date', name='uq_reminder_run_day')
    )
    op.create_table('familythread',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('family_id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('thread_ts', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('posted_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('posted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['family_id'], ['family.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel_id', 'thread_ts', name='uq_family_thread')
    )
    with op.batch_alter_table('familythread', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_familythread_family_id'), ['family_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_familythread_posted_at'), ['posted_at'], unique=False)

    op.create_table('guardian',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('family_id', sa.Integer(), nullable=False),
    sa.Column('match_key', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('first_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('last_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('relationship', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('phone_digits', sqlmodel.sql.sqltypes.AutoString(length=15), nullable=True),
    sa.Column('has_portal_account', sa.Boolean(), nullable=False),
    sa.Column('first_key', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('last_key', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['family_id'], ['family.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('family_id', 'match_key', name='uq_guardian_family_key')
    )
    with op.batch_alter_table('guardian', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_guardian_family_id'), ['family_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_guardian_first_key'), ['first_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_guardian_last_key'), ['last_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_guardian_match_key'), ['match_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_guardian_phone_digits'), ['phone_digits'], unique=False)

    op.create_table('patient',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('family_id', sa.Integer(), nullable=False),
    sa.Column('chart_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('first_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('middle_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('last_name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('dob', sa.Date(), nullable=False),
    sa.Column('sex', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('name_type', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('name_verified', sa.Boolean(), nullable=False),
    sa.Column('first_key', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('last_key', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['family_id'], ['family.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('chart_id')
    )
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patient_dob'), ['dob'], unique=False)
        batch_op.create_index(batch_op.f('ix_patient_family_id'), ['family_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_patient_first_key'), ['first_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_patient_last_key'), ['last_key'], unique=False)

    op.create_table('appointment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(), nullable=False),
    sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('patient_id', 'starts_at', name='uq_appointment_slot')
    )
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appointment_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_appointment_starts_at'), ['starts_at'], unique=False)

    op.create_table('issuebatch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('family_id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('issued_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('recipient_guardian_id', sa.Integer(), nullable=True),
    sa.Column('emailed_patient_id', sa.Integer(), nullable=True),
    sa.Column('mode', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('channel_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('thread_ts', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['emailed_patient_id'], ['patient.id'], ),
    sa.ForeignKeyConstraint(['family_id'], ['family.id'], ),
    sa.ForeignKeyConstraint(['recipient_guardian_id'], ['guardian.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key')
    )
    with op.batch_alter_table('issuebatch', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_issuebatch_family_id'), ['family_id'], unique=False)

    op.create_table('namefix',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('family_id', sa.Integer(), nullable=False),
    sa.Column('proposed_first', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('proposed_middle', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('proposed_last', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('confirmed_by', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('requested_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('requested_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('decided_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('decision_note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('channel_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('thread_ts', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('message_ts', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('last_nudged_on', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.ForeignKeyConstraint(['family_id'], ['family.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('namefix', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_namefix_family_id'), ['family_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_namefix_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_namefix_status'), ['status'], unique=False)

    op.create_table('letterfile',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('file_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('channel_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('thread_ts', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('uploaded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('deleted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['issuebatch.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('file_id')
    )
    with op.batch_alter_table('letterfile', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_letterfile_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_letterfile_uploaded_at'), ['uploaded_at'], unique=False)

    op.create_table('outgoingwork',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('dedupe_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('family_id', sa.Integer(), nullable=True),
    sa.Column('payload', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('result', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('claimed_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('done_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['issuebatch.id'], ),
    sa.ForeignKeyConstraint(['family_id'], ['family.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedupe_key')
    )
    with op.batch_alter_table('outgoingwork', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outgoingwork_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outgoingwork_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outgoingwork_status'), ['status'], unique=False)

    op.create_table('pin',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('pin_hash', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('recipient_guardian_id', sa.Integer(), nullable=True),
    sa.Column('delivery', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('issued_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('issued_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('status_changed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['issuebatch.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.ForeignKeyConstraint(['recipient_guardian_id'], ['guardian.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('pin', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pin_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pin_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_pin_issued_at'), ['issued_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_pin_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pin_status'), ['status'], unique=False)
        batch_op.create_index('uq_pin_one_active', ['patient_id'], unique=True, sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))



def downgrade() -> None:
    with op.batch_alter_table('pin', schema=None) as batch_op:
        batch_op.drop_index('uq_pin_one_active', sqlite_where=sa.text("status = 'active'"), postgresql_where=sa.text("status = 'active'"))
        batch_op.drop_index(batch_op.f('ix_pin_status'))
        batch_op.drop_index(batch_op.f('ix_pin_patient_id'))
        batch_op.drop_index(batch_op.f('ix_pin_issued_at'))
        batch_op.drop_index(batch_op.f('ix_pin_expires_at'))
        batch_op.drop_index(batch_op.f('ix_pin_batch_id'))

    op.drop_table('pin')
    with op.batch_alter_table('outgoingwork', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outgoingwork_status'))
        batch_op.drop_index(batch_op.f('ix_outgoingwork_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_outgoingwork_batch_id'))

    op.drop_table('outgoingwork')
    with op.batch_alter_table('letterfile', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_letterfile_uploaded_at'))
        batch_op.drop_index(batch_op.f('ix_letterfile_batch_id'))

    op.drop_table('letterfile')
    with op.batch_alter_table('namefix', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_namefix_status'))
        batch_op.drop_index(batch_op.f('ix_namefix_patient_id'))
        batch_op.drop_index(batch_op.f('ix_namefix_family_id'))

    op.drop_table('namefix')
    with op.batch_alter_table('issuebatch', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_issuebatch_family_id'))

    op.drop_table('issuebatch')
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appointment_starts_at'))
        batch_op.drop_index(batch_op.f('ix_appointment_patient_id'))

    op.drop_table('appointment')
    with op.batch_alter_table('patient', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patient_last_key'))
        batch_op.drop_index(batch_op.f('ix_patient_first_key'))
        batch_op.drop_index(batch_op.f('ix_patient_family_id'))
        batch_op.drop_index(batch_op.f('ix_patient_dob'))

    op.drop_table('patient')
    with op.batch_alter_table('guardian', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_guardian_phone_digits'))
        batch_op.drop_index(batch_op.f('ix_guardian_match_key'))
        batch_op.drop_index(batch_op.f('ix_guardian_last_key'))
        batch_op.drop_index(batch_op.f('ix_guardian_first_key'))
        batch_op.drop_index(batch_op.f('ix_guardian_family_id'))

    op.drop_table('guardian')
    with op.batch_alter_table('familythread', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_familythread_posted_at'))
        batch_op.drop_index(batch_op.f('ix_familythread_family_id'))

    op.drop_table('familythread')
    op.drop_table('reminderrun')
    op.drop_table('family')
    with op.batch_alter_table('auditevent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auditevent_family_id'))
        batch_op.drop_index(batch_op.f('ix_auditevent_at'))
        batch_op.drop_index(batch_op.f('ix_auditevent_action'))

    op.drop_table('auditevent')
