"""Requests to replace a newborn's placeholder name, decided by a supervisor in Slack."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from models._base import NameFixStatus, utcnow


class NameFix(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    family_id: int = Field(foreign_key="family.id", index=True)
    proposed_first: str = Field(max_length=100)
    proposed_middle: str = Field(default="", max_length=100)
    proposed_last: str = Field(max_length=100)
    # birth_certificate | parent_in_person | hospital_record
    confirmed_by: str = Field(max_length=30)
    note: str = Field(default="", max_length=500)
    requested_by: str = Field(max_length=32)
    requested_at: datetime = Field(default_factory=utcnow)
    status: str = Field(default=NameFixStatus.PENDING, max_length=12, index=True)
    decided_by: str | None = Field(default=None, max_length=32)
    decided_at: datetime | None = None
    decision_note: str = Field(default="", max_length=500)
    channel_id: str | None = Field(default=None, max_length=32)
    thread_ts: str | None = Field(default=None, max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    last_nudged_on: str | None = Field(default=None, max_length=10)
