"""Who did what, when. Ids and outcomes only: never a PIN."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from models._base import utcnow


class AuditEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=32)  # Slack user id, "cli" or "system"
    action: str = Field(max_length=50, index=True)
    family_id: int | None = Field(default=None, index=True)
    patient_id: int | None = None
    details: str = Field(default="{}")  # JSON
