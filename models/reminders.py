"""Claims that make each scheduled run happen once per local day across replicas."""

from datetime import datetime

from sqlmodel import Field, SQLModel, UniqueConstraint

from models._base import utcnow


class ReminderRun(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("kind", "local_date", name="uq_reminder_run_day"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30)
    local_date: str = Field(max_length=10)  # YYYY-MM-DD in PRACTICE_TIMEZONE
    claimed_by: str = Field(max_length=100)
    claimed_at: datetime = Field(default_factory=utcnow)
    claimed_until: datetime | None = None
    posted_at: datetime | None = None
    entries: int = 0
