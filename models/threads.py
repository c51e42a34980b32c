"""Family cards posted in Slack. A card's message is the family's thread in that channel:
PIN summaries, letters and name fixes for the family are posted under it."""

from datetime import datetime

from sqlmodel import Field, SQLModel, UniqueConstraint

from models._base import utcnow


class FamilyThread(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("channel_id", "thread_ts", name="uq_family_thread"),)

    id: int | None = Field(default=None, primary_key=True)
    family_id: int = Field(foreign_key="family.id", index=True)
    channel_id: str = Field(max_length=32)
    thread_ts: str = Field(max_length=32)
    posted_by: str = Field(max_length=32)
    posted_at: datetime = Field(default_factory=utcnow, index=True)
