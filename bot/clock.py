"""The one clock. Every "now" and "today" comes from a Clock in the practice's time zone (the
services carry one; CLI verbs build one from PRACTICE_TIMEZONE): never the server's local date,
which is another day than the practice's for hours around midnight on a UTC server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo

from models import utcnow


@dataclass(frozen=True)
class Clock:
    timezone: tzinfo = UTC
    utc: Callable[[], datetime] = field(default=utcnow)

    def __call__(self) -> datetime:
        """Now, as an aware UTC instant."""
        return self.utc()

    def now_local(self) -> datetime:
        return self.utc().astimezone(self.timezone)

    def today(self) -> date:
        """The practice's date now."""
        return self.now_local().date()
