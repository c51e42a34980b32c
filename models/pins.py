"""PINs and the family issuances (batches) that create them. Only hashes are stored."""

from datetime import datetime

from sqlalchemy import text
from sqlmodel import Field, Index, SQLModel

from models._base import PinStatus, utcnow


class IssueBatch(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    family_id: int = Field(foreign_key="family.id", index=True)
    # One key per user action (the dialog's view id): a re-delivered submit finds this row.
    idempotency_key: str = Field(max_length=200, unique=True)
    issued_by: str = Field(max_length=32)
    recipient_guardian_id: int | None = Field(default=None, foreign_key="guardian.id")
    emailed_patient_id: int | None = Field(default=None, foreign_key="patient.id")
    # welcome = one welcome email; add_child = guardian has an account; print_only = no email.
    mode: str = Field(max_length=20)
    # Letter and email language: an ISO 639-1 code, or "es+en" for each letter in the family's
    # language and then in English. None for batches issued before languages existed.
    language: str | None = Field(default=None, max_length=16, index=True)
    channel_id: str | None = Field(default=None, max_length=32)
    thread_ts: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


class Pin(SQLModel, table=True):
    __table_args__ = (
        # One active PIN per child, enforced by the database itself.
        Index(
            "uq_pin_one_active",
            "patient_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    batch_id: int = Field(foreign_key="issuebatch.id", index=True)
    pin_hash: str = Field(max_length=200)
    recipient_guardian_id: int | None = Field(default=None, foreign_key="guardian.id")
    delivery: str = Field(max_length=10)
    issued_by: str = Field(max_length=32)
    issued_at: datetime = Field(default_factory=utcnow, index=True)
    expires_at: datetime | None = Field(default=None, index=True)
    status: str = Field(default=PinStatus.ACTIVE, max_length=12, index=True)
    status_changed_at: datetime | None = None
    # HMAC-SHA256 of the normalized PIN under the secret's PIN_LOOKUP key (SPEC §11): finding
    # a typed PIN is one index seek, and a copy of the database alone cannot test guesses.
    # None for PINs issued before the portal API (bot/portal/pins.py says how those work).
    lookup: str | None = Field(default=None, max_length=64, index=True)
    # The portal's account id, set when the portal redeemed this PIN (pinbot portal API).
    portal_account_id: str | None = Field(default=None, max_length=200)
    # Wrong dates of birth typed with this PIN through the portal API; 5 lock it.
    wrong_dob_count: int = Field(default=0)
