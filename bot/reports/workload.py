"""The Home tab's figures (SPEC §10): today's workload as counts, never a name — Slack allows
PHI in messages and files, and a Home tab is neither.

The counts mean what the digest's sections mean (bot/reminders/digest.py), so the Home tab
and the morning digest never disagree: PINs expiring within 7 days are counted there and not
also among the PINs unregistered for 7+ days. One set of queries serves every staff member
opening the tab for up to CACHE_SECONDS (`WorkloadCache`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import and_, func, not_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from bot.clock import local_midnight
from bot.config import Settings
from bot.families.record import NOT_MERGED
from bot.reminders.digest import PIN_DAYS
from bot.reminders.worklists import appointments_without_access
from bot.reports.adoption import DEFAULT_WEEKS, rated_totals
from bot.reports.figures import span
from models import FeedMessage, NameFix, NameFixStatus, Patient, Pin, PinStatus

CACHE_SECONDS = 60


@dataclass(frozen=True)
class Workload:
    measured_at: datetime  # in the practice's time zone
    pending_name_fixes: int
    no_portal_today: int  # today's appointments whose child has no active or registered PIN
    unregistered_pins: int  # active PINs issued 7+ days ago (not expiring within 7 days)
    expiring_pins: int  # active PINs expiring within 7 days
    registration_rate: float | None  # the last 12 full weeks whose 30 days are over
    rated_pins: int  # the PINs that rate is of
    rated_range: str | None  # "7 Sep – 26 Oct 2026"
    feed_configured: bool
    feed_last_message: datetime | None  # in the practice's time zone; None: never


def measure_workload(session: Session, *, now: datetime, settings: Settings) -> Workload:
    tz = settings.timezone
    local = now.astimezone(tz)
    today = local.date()
    active = col(Pin.status) == PinStatus.ACTIVE
    expires = col(Pin.expires_at)
    expiring = and_(
        expires.is_not(None),
        expires > now,
        expires <= local_midnight(today + timedelta(days=PIN_DAYS + 1), tz),
    )
    old = col(Pin.issued_at) < local_midnight(today - timedelta(days=PIN_DAYS - 1), tz)

    def count(table: type[NameFix | Pin], *conditions: ColumnElement[bool]) -> int:
        """Rows of charts staff still see, as the digest lists them: a chart merged away (a
        name fix asked from a card posted before the merge) is not a child of its own."""
        statement = (
            select(func.count())
            .select_from(table)
            .join(Patient, col(Patient.id) == col(table.patient_id))
            .where(NOT_MERGED, *conditions)
        )
        return int(session.execute(statement).scalar_one())

    start = datetime.combine(today, time.min)
    rated = rated_totals(session, now=now, tz=tz, weeks=DEFAULT_WEEKS)
    last_message = None
    if settings.feed.configured:
        received = session.execute(select(func.max(col(FeedMessage.received_at)))).scalar_one()
        last_message = _aware(received).astimezone(tz) if received else None
    return Workload(
        measured_at=local,
        pending_name_fixes=count(NameFix, col(NameFix.status) == NameFixStatus.PENDING),
        no_portal_today=len(appointments_without_access(session, start, start + timedelta(days=1))),
        unregistered_pins=count(Pin, active, old, not_(expiring)),
        expiring_pins=count(Pin, active, expiring),
        registration_rate=rated.rate,
        rated_pins=rated.issued,
        rated_range=(
            span(rated.first_day, rated.last_day) if rated.first_day and rated.last_day else None
        ),
        feed_configured=settings.feed.configured,
        feed_last_message=last_message,
    )


def _aware(value: datetime) -> datetime:
    """max() comes back as the column's raw value on SQLite (naive UTC, or even text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class WorkloadCache:
    """The last Workload for up to `seconds` of the services' clock. Loads are single-flight:
    staff opening the tab together wait for one set of queries instead of each running it."""

    def __init__(self, seconds: float = CACHE_SECONDS) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._value: Workload | None = None
        self._loaded_at: datetime | None = None

    def get(self, now: datetime, load: Callable[[], Workload]) -> Workload:
        with self._lock:
            fresh = (
                self._value is not None
                and self._loaded_at is not None
                and self._loaded_at <= now < self._loaded_at + timedelta(seconds=self.seconds)
            )
            if not fresh:
                self._value, self._loaded_at = load(), now
            assert self._value is not None
            return self._value
