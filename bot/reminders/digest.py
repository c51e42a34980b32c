"""The daily digest's content (SPEC §5 "Reminders"): what the front desk should look at today,
as plain data. handlers/digest.py renders it as Block Kit; sweep.py posts it once a day.

Times: Pin and NameFix timestamps are UTC instants; appointments are local wall-clock times
(as the EHR exports them). Day boundaries are local midnights in PRACTICE_TIMEZONE, so a DST
week (a 167- or 169-hour "7 days") counts calendar days, not hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.clock import last_valid_day, local_midnight
from bot.config import FeedSettings
from bot.reminders import worklists
from bot.reminders.feed_watch import FeedSilence, feed_silence

FIX_NUDGE_AFTER = timedelta(hours=24)
PIN_DAYS = 7  # "issued 7 or more days ago", "expire within 7 days"
UPCOMING_BUSINESS_DAYS = 2


class Section(StrEnum):
    """Digest sections, in the order they are posted."""

    UNOFFICIAL_NAMES = "unofficial_names"
    PENDING_NAME_FIXES = "pending_name_fixes"
    UNREGISTERED_PINS = "unregistered_pins"
    EXPIRING_PINS = "expiring_pins"
    NO_PORTAL_TODAY = "no_portal_today"


@dataclass(frozen=True)
class DigestEntry:
    child: str
    family_id: int
    account_number: str
    needed: str  # plain text: the renderer escapes it


@dataclass(frozen=True)
class DigestSection:
    section: Section
    entries: tuple[DigestEntry, ...]


@dataclass(frozen=True)
class Digest:
    local_date: date
    sections: tuple[DigestSection, ...]  # Section order, empty sections left out
    feed_silence: FeedSilence | None = None  # said at the top when the EHR feed went quiet

    @property
    def worth_posting(self) -> bool:
        return bool(self.total or self.feed_silence)

    @property
    def total(self) -> int:
        return sum(len(s.entries) for s in self.sections)

    def entries(self, section: Section) -> tuple[DigestEntry, ...]:
        return next((s.entries for s in self.sections if s.section == section), ())


# -- calendar ---------------------------------------------------------------------------------


def is_business_day(day: date) -> bool:
    return day.weekday() < 5


def next_business_days(day: date, count: int) -> list[date]:
    days: list[date] = []
    current = day
    while len(days) < count:
        current += timedelta(days=1)
        if is_business_day(current):
            days.append(current)
    return days


def day_label(value: datetime | date) -> str:
    return f"{value:%a %m/%d}"


def clock_label(value: datetime) -> str:
    return f"{value:%I:%M %p}".lstrip("0")


# -- the digest -------------------------------------------------------------------------------


def as_local(value: datetime | None, tz: ZoneInfo) -> datetime:
    """A stored UTC instant in the practice's zone (None only where the query excludes it)."""
    return (value or datetime.now(UTC)).astimezone(tz)


def build_digest(
    session: Session, *, now: datetime, tz: ZoneInfo, feed: FeedSettings | None = None
) -> Digest:
    today = now.astimezone(tz).date()
    # Expiring PINs are listed once, in their own (more urgent) section, not also as old ones.
    expiring = worklists.active_pins_expiring_between(
        session, now, local_midnight(today + timedelta(days=PIN_DAYS + 1), tz)
    )
    old = [
        p
        for p in worklists.active_pins_issued_before(
            session, local_midnight(today - timedelta(days=PIN_DAYS - 1), tz)
        )
        if p.pin_id not in {e.pin_id for e in expiring}
    ]
    sections = (
        (Section.UNOFFICIAL_NAMES, _unofficial_names(session, today)),
        (Section.PENDING_NAME_FIXES, _pending_fixes(session, now, tz)),
        (Section.UNREGISTERED_PINS, [_unregistered(p, tz) for p in old]),
        (Section.EXPIRING_PINS, [_expiring(p, tz) for p in expiring]),
        (Section.NO_PORTAL_TODAY, _no_portal_today(session, today)),
    )
    return Digest(
        today,
        tuple(DigestSection(kind, tuple(entries)) for kind, entries in sections if entries),
        feed_silence(session, feed=feed, now=now, tz=tz) if feed else None,
    )


def _unofficial_names(session: Session, today: date) -> list[DigestEntry]:
    # From tomorrow through the end of the second business day: on Friday that is Saturday to
    # Tuesday, so a weekend visit is not missed. Appointments are stored in local time.
    last = next_business_days(today, UPCOMING_BUSINESS_DAYS)[-1]
    start = datetime.combine(today + timedelta(days=1), time.min)
    end = datetime.combine(last + timedelta(days=1), time.min)
    waiting = worklists.pending_fix_patients(session)
    entries = []
    for item in worklists.unofficial_names_between(session, start, end):
        todo = (
            "a name fix is waiting for a supervisor"
            if item.patient_id in waiting
            else "request a name fix before the visit"
        )
        when = f"{day_label(item.starts_at)} {clock_label(item.starts_at)}"
        entries.append(
            DigestEntry(
                item.child_name,
                item.family_id,
                item.account_number,
                f"visit {when}; unofficial name ({item.needs}): {todo}",
            )
        )
    return entries


def _pending_fixes(session: Session, now: datetime, tz: ZoneInfo) -> list[DigestEntry]:
    fixes = worklists.pending_name_fixes(session, older_than=now - FIX_NUDGE_AFTER)
    accounts = worklists.account_numbers(session, [f.family_id for f in fixes])
    entries = []
    for fix in fixes:
        since = as_local(fix.requested_at, tz)
        entries.append(
            DigestEntry(
                fix.child_name,
                fix.family_id,
                accounts.get(fix.family_id, ""),
                f"name fix to “{fix.proposed_name}” waiting since {day_label(since)} "
                f"{clock_label(since)}: a supervisor should approve or reject it",
            )
        )
    return entries


def _unregistered(item: worklists.PinItem, tz: ZoneInfo) -> DigestEntry:
    issued = day_label(as_local(item.issued_at, tz))
    return DigestEntry(
        item.child_name,
        item.family_id,
        item.account_number,
        f"PIN issued {issued}, not registered yet: remind the family to sign up "
        "(re-issue if the letter is lost)",
    )


def _expiring(item: worklists.PinItem, tz: ZoneInfo) -> DigestEntry:
    # The printed expiry date: the last local day the PIN works.
    expires = day_label(last_valid_day(item.expires_at, tz)) if item.expires_at else "—"
    return DigestEntry(
        item.child_name,
        item.family_id,
        item.account_number,
        f"PIN expires {expires}, not registered yet: remind the family to sign up before then",
    )


def _no_portal_today(session: Session, today: date) -> list[DigestEntry]:
    start = datetime.combine(today, time.min)
    entries = []
    for item in worklists.appointments_without_access(session, start, start + timedelta(days=1)):
        todo = (
            f"unofficial name ({item.needs}), fix the name before issuing PINs"
            if item.needs
            else "issue PINs at check-in"
        )
        entries.append(
            DigestEntry(
                item.child_name,
                item.family_id,
                item.account_number,
                f"visit today {clock_label(item.starts_at)}, no portal access: {todo}",
            )
        )
    return entries
