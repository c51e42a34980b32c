"""Outgoing work (emails, Slack uploads and posts) written in the same transaction as the
records it announces and delivered after commit, with retries."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from models._base import WorkStatus, utcnow


class OutgoingWork(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30)
    # Unique per logical delivery, so the same work can never be queued twice.
    dedupe_key: str = Field(max_length=200, unique=True)
    batch_id: int | None = Field(default=None, foreign_key="issuebatch.id", index=True)
    family_id: int | None = Field(default=None, foreign_key="family.id")
    # JSON. PINs in it are sealed (AES-GCM, bot/delivery/sealing.py) until delivered or
    # given up; then the ciphertext is erased.
    payload: str = Field(default="{}")
    result: str = Field(default="{}")
    status: str = Field(default=WorkStatus.PENDING, max_length=10, index=True)
    attempts: int = 0
    # bot/delivery/outbox.py DEFAULT_MAX_ATTEMPTS: the retry schedule spans about 13 hours.
    max_attempts: int = 14
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    # The process holding the claim keeps renewing it (a heartbeat) until it records what
    # happened; a dead process's claim lapses within seconds and another takes the work over.
    claimed_until: datetime | None = None
    claimed_by: str | None = Field(default=None, max_length=64)
    last_error: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow)
    done_at: datetime | None = None


class LetterFile(SQLModel, table=True):
    """A PIN-letter PDF uploaded to Slack, deleted after PIN_LETTER_TTL_HOURS."""

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="issuebatch.id", index=True)
    file_id: str = Field(max_length=32, unique=True)
    channel_id: str = Field(max_length=32)
    thread_ts: str | None = Field(default=None, max_length=32)
    uploaded_at: datetime = Field(default_factory=utcnow, index=True)
    deleted_at: datetime | None = None
