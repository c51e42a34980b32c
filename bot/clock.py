"""The one clock. Every "now" and "today" comes from a Clock in the practice's time zone (the
services carry one; CLI verbs build one from PRACTICE_TIMEZONE): never the server's local date,
which is another day than the practice's for hours around midnight on a UTC server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

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


def local_date(moment: datetime, zone: tzinfo) -> date:
    """The practice's date at a stored (UTC) instant: what a person reads as "issued on"."""
    return moment.astimezone(zone).date()


def local_midnight(day: date, zone: tzinfo) -> datetime:
    """The UTC instant the local `day` begins, DST included: day boundaries in the practice's
    zone ("7 or more days ago" is by the local calendar, so a DST week of 167 hours hides
    nothing; a PIN expires at the local midnight after its printed day)."""
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def last_valid_day(expires_at: datetime, zone: tzinfo) -> date:
    """The expiry date to print for a PIN that expires at the local midnight after it: the
    last local day the PIN works (for a PIN from before that rule, the day it stops during)."""
    return local_date(expires_at - timedelta(microseconds=1), zone)
