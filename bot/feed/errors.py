"""Why a feed message cannot be applied. A `FeedFieldError` is answered AE (well formed, but a
required field is missing or malformed); a `FeedRejected` is answered AR (not HL7, or a type,
version or character set pinbot does not take). Reasons are plain sentences about the field,
never the field's value: they go into the ACK and the log."""

from __future__ import annotations

import re
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.feed.records import Header

_FIELD = re.compile(r"^([A-Z][A-Z0-9]{2})-(\d+)(?:\.(\d+))?$")


class ErrorCode(IntEnum):
    """HL7 table 0357 (message error condition codes), as ERR-3 and ERR-1.4 carry them."""

    SEGMENT_SEQUENCE = 100
    REQUIRED_FIELD_MISSING = 101
    DATA_TYPE = 102
    TABLE_VALUE_NOT_FOUND = 103
    UNSUPPORTED_MESSAGE_TYPE = 200
    UNSUPPORTED_EVENT = 201
    UNSUPPORTED_PROCESSING_ID = 202
    UNSUPPORTED_VERSION = 203
    UNKNOWN_KEY = 204
    INTERNAL_ERROR = 207

    @property
    def text(self) -> str:
        return _CODE_TEXT[self]


_CODE_TEXT = {
    ErrorCode.SEGMENT_SEQUENCE: "Segment sequence error",
    ErrorCode.REQUIRED_FIELD_MISSING: "Required field missing",
    ErrorCode.DATA_TYPE: "Data type error",
    ErrorCode.TABLE_VALUE_NOT_FOUND: "Table value not found",
    ErrorCode.UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    ErrorCode.UNSUPPORTED_EVENT: "Unsupported event code",
    ErrorCode.UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    ErrorCode.UNSUPPORTED_VERSION: "Unsupported version id",
    ErrorCode.UNKNOWN_KEY: "Unknown key identifier",
    ErrorCode.INTERNAL_ERROR: "Application internal error",
}


class FeedError(Exception):
    """Base of the feed's expected problems. `header` is the message's MSH when it could be
    read (the ACK needs it), else None. `field` ("PID-7", "PID-3.1") names the field the
    problem is about, when there is one; `sequence` says which segment of that id (the second
    NK1 is 2)."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, reason: str, *, field: str | None = None, sequence: int = 1) -> None:
        if field is not None and _FIELD.match(field) is None:
            raise ValueError(f"not a field name like PID-7: {field!r}")
        super().__init__(reason)
        self.reason = reason
        self.field = field
        self.sequence = sequence
        self.header: Header | None = None

    def location(self) -> tuple[str, int, int, int | None] | None:
        """(segment id, segment sequence, field position, component or None), for ERR-2."""
        match = _FIELD.match(self.field or "")
        if match is None:
            return None
        return match[1], self.sequence, int(match[2]), int(match[3]) if match[3] else None

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason


class FeedFieldError(FeedError):
    """A well-formed message whose required field is missing or malformed: ACK AE."""

    field: str

    def __init__(
        self,
        field: str,
        reason: str,
        *,
        missing: bool = False,
        sequence: int = 1,
        code: ErrorCode | None = None,
    ) -> None:
        super().__init__(reason, field=field, sequence=sequence)
        self.code = code or (ErrorCode.REQUIRED_FIELD_MISSING if missing else ErrorCode.DATA_TYPE)


class FeedRejected(FeedError):
    """Not HL7, or a message type, version or character set pinbot does not take: ACK AR."""

    def __init__(
        self,
        reason: str,
        *,
        code: ErrorCode = ErrorCode.UNSUPPORTED_MESSAGE_TYPE,
        field: str | None = None,
    ) -> None:
        super().__init__(reason, field=field)
        self.code = code


class FeedWarning(FeedError):
    """A detail left out while the rest of the message was applied (a guardian's malformed
    phone or email, SPEC §8): the ACK is AA with an ERR segment of severity W naming it."""

    def __init__(self, field: str, reason: str, *, sequence: int = 1) -> None:
        super().__init__(reason, field=field, sequence=sequence)
        self.code = ErrorCode.DATA_TYPE
