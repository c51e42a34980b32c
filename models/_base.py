"""Column conventions shared by every table: timezone-aware UTC timestamps (SQLModel's
UTCDateTime, the same on SQLite and PostgreSQL) and string status values (no database enum
types to migrate)."""

from datetime import UTC, datetime
from enum import StrEnum


def utcnow() -> datetime:
    return datetime.now(UTC)


class PinStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    REGISTERED = "registered"
    EXPIRED = "expired"
    # 5 wrong dates of birth through the portal API (SPEC §11): unusable, issue a new one.
    LOCKED = "locked"


class Delivery(StrEnum):
    EMAILED = "emailed"
    PRINTED = "printed"


class NameFixStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    CONFIRMED = "confirmed"  # supervisor confirmed the flagged name is the real one
    REJECTED = "rejected"
    CLOSED = "closed"  # closed by an import that brought a real name


class AppointmentStatus(StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"  # cancelled or deleted in the EHR (SIU S15, S17)
    NO_SHOW = "no-show"  # SIU S26


class WorkStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"  # given up after the last attempt


class WorkKind(StrEnum):
    WELCOME_EMAIL = "welcome_email"
    LETTERS_UPLOAD = "letters_upload"
    SLACK_MESSAGE = "slack_message"
    LETTERS_DELETE = "letters_delete"
    REPORT_UPLOAD = "report_upload"  # the weekly adoption chart (SPEC §10)
