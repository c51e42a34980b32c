"""The portal API's clients (API keys, stored as a keyed hash only) and its guessing
counters, kept in the database so every replica enforces the same limits (SPEC §11)."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from models._base import utcnow


class PortalClient(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    # HMAC-SHA256 of the key under the secret's API_KEY_LOOKUP key; the key itself is shown
    # once, at creation, and never kept.
    key_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class PortalThrottle(SQLModel, table=True):
    """One guessing counter: a source ("ip:203.0.113.7", or "key:3" when the portal sends no
    client_ip) or an API client ("client:3")."""

    subject: str = Field(primary_key=True, max_length=80)
    failures: int = 0
    window_started_at: datetime = Field(default_factory=utcnow)
    blocked_until: datetime | None = None
    # Blocks in a row without a success: each lasts twice the one before, up to an hour.
    strikes: int = 0
    # When the staff channel was last told about this subject (clients only).
    told_at: datetime | None = None
