"""Is the live EHR feed silent? (SPEC §8) With HL7_PORT set and nothing received for
HL7_SILENT_HOURS weekday hours, the digest says so at the top: a silent feed is how stale
data starts. Only Monday-to-Friday hours in the practice's zone count, so a quiet weekend
does not raise the alarm on Monday morning."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, select

from bot.config import FeedSettings
from models import FeedMessage


@dataclass(frozen=True)
class FeedSilence:
    hours: int | None  # weekday hours since the last message; None = none ever arrived
    last_at: datetime | None  # the last message, local time


def weekday_hours_between(start: datetime, end: datetime, tz: ZoneInfo) -> float:
    """Hours of [start, end) that fall on Monday to Friday in `tz`."""
    start, end = start.astimezone(tz), end.astimezone(tz)
    total, day = 0.0, start.date()
    while day <= end.date():
        if day.weekday() < 5:
            day_start = datetime.combine(day, time.min, tz)
            day_end = datetime.combine(day + timedelta(days=1), time.min, tz)
            overlap = min(end, day_end) - max(start, day_start)
            total += max(overlap.total_seconds(), 0) / 3600
        day += timedelta(days=1)
    return total


def feed_silence(
    session: Session, *, feed: FeedSettings, now: datetime, tz: ZoneInfo
) -> FeedSilence | None:
    """The silence to warn about, or None (feed not configured, warning off, or alive)."""
    if not feed.configured or feed.silent_hours <= 0:
        return None
    last = session.exec(select(func.max(FeedMessage.received_at))).one()
    if last is None:
        return FeedSilence(None, None)  # configured, and not one message yet
    hours = weekday_hours_between(last, now, tz)
    if hours < feed.silent_hours:
        return None
    return FeedSilence(int(hours), last.astimezone(tz))
