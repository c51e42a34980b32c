"""The live EHR feed's message log: what arrived and how it was answered, never its text."""

from datetime import datetime

from sqlalchemy import text
from sqlmodel import Field, Index, SQLModel

from models._base import utcnow


class FeedMessage(SQLModel, table=True):
    __table_args__ = (
        # A message the EHR resends (same MSH-3 + MSH-4 + MSH-10, same content but MSH-7) is
        # applied once: the database refuses a second applied row, also when two copies race
        # on two connections. Another message under a reused control id has another digest.
        Index(
            "uq_feedmessage_applied_content",
            "sending_application",
            "sending_facility",
            "control_id",
            "content_digest",
            unique=True,
            sqlite_where=text("ack_code = 'AA'"),
            postgresql_where=text("ack_code = 'AA'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    sending_application: str = Field(default="", max_length=180)
    sending_facility: str = Field(default="", max_length=180)
    control_id: str = Field(default="", max_length=199)
    # sha256 (hex) of the message's segments with MSH-7 blanked; never the text ("" before
    # this column existed, and for text whose MSH could not be read).
    content_digest: str = Field(default="", max_length=64)
    message_type: str = Field(default="", max_length=20, index=True)  # e.g. "ADT^A04"
    ack_code: str = Field(max_length=2, index=True)  # AA, AE or AR
    error_field: str | None = Field(default=None, max_length=20)  # e.g. "PID-7", never a value
    received_at: datetime = Field(default_factory=utcnow, index=True)
