"""The adoption figures from the database (SPEC §10): one aggregate query over the PINs issued
in the report's weeks, grouped in SQL by week, delivery mode, letter language and whether the
PIN was registered within 30 days of issue.

Weeks are ISO weeks in the practice's time zone: each runs from a local Monday 00:00 to the
next, so a DST week is 167 or 169 hours long and a PIN issued at 23:30 on a Sunday belongs to
the week it was issued in by the front desk's calendar. A PIN counts as registered within 30
days when its status is "registered" and `status_changed_at - issued_at <= 30 days`; a revoked
or expired PIN (or a still active one) counts as issued and not registered. A batch issued
before letter languages existed (IssueBatch.language NULL) had English letters: "en".

The query filters on Pin.issued_at (indexed) and returns at most weeks x 2 modes x languages x 2
rows, whatever the number of PINs. Counts only: nothing here reads a name, chart id or DOB.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, cast, func, literal, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from bot.clock import local_midnight
from bot.reports.figures import (
    REGISTRATION_WINDOW,
    AdoptionReport,
    WeekFigures,
    registration_window_closes,
)
from models import Delivery, IssueBatch, Pin, PinStatus

DEFAULT_WEEKS = 12
LEGACY_LANGUAGE = "en"  # batches from before languages existed were printed in English
_SQLITE_SLACK_DAYS = 1e-9  # julianday() is a double: about 0.1 ms of rounding at the boundary


def week_start(day: date) -> date:
    """The Monday of `day`'s ISO week."""
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class _Cell:
    issued: int = 0
    registered: int = 0


def _registered_in_window(session: Session) -> ColumnElement[bool]:
    """status registered, within 30 days of issue, in the session's SQL dialect."""
    changed, issued = col(Pin.status_changed_at), col(Pin.issued_at)
    if session.get_bind().dialect.name == "sqlite":
        days = func.julianday(changed) - func.julianday(issued)
        within = days <= REGISTRATION_WINDOW.days + _SQLITE_SLACK_DAYS
    else:
        within = (changed - issued) <= REGISTRATION_WINDOW
    return and_(col(Pin.status) == PinStatus.REGISTERED, changed.is_not(None), within)


def _week_index(starts: list[datetime]) -> ColumnElement[Any]:
    """Which of the report's weeks a PIN's issued_at falls into (0 = the first)."""
    issued = col(Pin.issued_at)
    whens = [
        (and_(issued >= start, issued < end), literal(i))
        for i, (start, end) in enumerate(pairwise(starts))
    ]
    return case(*whens, else_=literal(-1))


def build_report(
    session: Session,
    *,
    now: datetime,
    tz: ZoneInfo,
    practice_name: str,
    weeks: int = DEFAULT_WEEKS,
    current_week: bool = True,
) -> AdoptionReport:
    """The last `weeks` full ISO weeks before `now` (in `tz`), and the week under way when
    `current_week` (the CLI and the Home tab; the Monday post shows full weeks only)."""
    if weeks < 1:
        raise ValueError("an adoption report needs at least one week")
    local_now = now.astimezone(tz)
    today = local_now.date()
    this_monday = week_start(today)
    mondays = [this_monday - timedelta(weeks=weeks - i) for i in range(weeks)]
    if current_week:
        mondays.append(this_monday)
    # Boundaries: each week's local Monday midnight, and the end of the last week.
    starts = [local_midnight(m, tz) for m in mondays]
    starts.append(local_midnight(mondays[-1] + timedelta(days=7), tz))
    counts = _count(session, starts)
    figures = tuple(
        _week(i, monday, counts, today=today, complete=monday != this_monday)
        for i, monday in enumerate(mondays)
    )
    return AdoptionReport(practice_name=practice_name, weeks=figures, generated_at=local_now)


@dataclass(frozen=True)
class RatedTotals:
    """The registration rate of the last full weeks whose 30 days are over: what the Home
    tab shows (the same figure as AdoptionReport.rate, with one cheaper query)."""

    issued: int
    registered: int
    first_day: date | None  # the weeks' span, None when no week's 30 days are over
    last_day: date | None

    @property
    def rate(self) -> float | None:
        return self.registered / self.issued if self.issued else None


def rated_totals(
    session: Session, *, now: datetime, tz: ZoneInfo, weeks: int = DEFAULT_WEEKS
) -> RatedTotals:
    """Issued and registered-within-30-days PINs of the window-closed weeks among the last
    `weeks` full weeks: one range count, no grouping, no join."""
    today = now.astimezone(tz).date()
    this_monday = week_start(today)
    mondays = [this_monday - timedelta(weeks=weeks - i) for i in range(weeks)]
    closed = [m for m in mondays if today >= registration_window_closes(m)]
    if not closed:
        return RatedTotals(0, 0, None, None)
    start, end = local_midnight(closed[0], tz), local_midnight(closed[-1] + timedelta(7), tz)
    registered = func.sum(cast(case((_registered_in_window(session), 1), else_=0), Integer))
    issued_count, registered_count = session.execute(
        select(func.count(), registered)
        .select_from(Pin)
        .where(
            col(Pin.issued_at) >= start,
            col(Pin.issued_at) < end,
            col(Pin.delivery).in_([Delivery.EMAILED, Delivery.PRINTED]),
        )
    ).one()
    return RatedTotals(
        int(issued_count), int(registered_count or 0), closed[0], closed[-1] + timedelta(6)
    )


_Key = tuple[int, str, str]  # week index, delivery, language


def _count(session: Session, starts: list[datetime]) -> dict[_Key, _Cell]:
    week = _week_index(starts).label("week")
    language = func.coalesce(col(IssueBatch.language), LEGACY_LANGUAGE).label("language")
    registered = func.sum(cast(case((_registered_in_window(session), 1), else_=0), Integer))
    statement = (
        select(week, col(Pin.delivery), language, func.count(), registered)
        .select_from(Pin)
        .join(IssueBatch, col(Pin.batch_id) == col(IssueBatch.id))
        .where(
            col(Pin.issued_at) >= starts[0],
            col(Pin.issued_at) < starts[-1],
            col(Pin.delivery).in_([Delivery.EMAILED, Delivery.PRINTED]),
        )
        .group_by(week, col(Pin.delivery), language)
    )
    cells: dict[_Key, _Cell] = {}
    for index, delivery, lang, issued, reg in session.execute(statement).all():
        cells[(int(index), str(delivery), str(lang))] = _Cell(int(issued), int(reg or 0))
    return cells


def _week(
    index: int, monday: date, counts: dict[_Key, _Cell], *, today: date, complete: bool
) -> WeekFigures:
    per_mode: dict[str, _Cell] = defaultdict(_Cell)
    per_language: dict[str, tuple[int, int]] = {}
    for (week, delivery, language), cell in counts.items():
        if week != index:
            continue
        mode = per_mode[delivery]
        per_mode[delivery] = _Cell(mode.issued + cell.issued, mode.registered + cell.registered)
        issued, registered = per_language.get(language, (0, 0))
        per_language[language] = (issued + cell.issued, registered + cell.registered)
    emailed, printed = per_mode[Delivery.EMAILED], per_mode[Delivery.PRINTED]
    iso = monday.isocalendar()
    return WeekFigures(
        week_start=monday,
        iso_year=iso.year,
        iso_week=iso.week,
        issued=emailed.issued + printed.issued,
        emailed=emailed.issued,
        printed=printed.issued,
        registered=emailed.registered + printed.registered,
        registered_emailed=emailed.registered,
        registered_printed=printed.registered,
        by_language=per_language,
        complete=complete,
        window_closed=complete and today >= registration_window_closes(monday),
    )
