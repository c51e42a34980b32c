"""Hand-built adoption figures for the reports tests (no database: the figures are plain data)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from bot.reports.figures import AdoptionReport, WeekFigures, registration_window_closes

PRACTICE = "Sunny Pediatrics"


def week(
    start: date,
    *,
    emailed: int,
    printed: int,
    registered_emailed: int,
    registered_printed: int,
    today: date,
    spanish: tuple[int, int] = (0, 0),
) -> WeekFigures:
    """A week as the query would build it on `today`; `spanish` is (issued, registered) of the
    week's PINs with Spanish letters, the rest are English."""
    iso = start.isocalendar()
    issued = emailed + printed
    registered = registered_emailed + registered_printed
    languages = {"en": (issued - spanish[0], registered - spanish[1])}
    if spanish[0]:
        languages["es"] = spanish
    return WeekFigures(
        week_start=start,
        iso_year=iso.year,
        iso_week=iso.week,
        issued=issued,
        emailed=emailed,
        printed=printed,
        registered=registered,
        registered_emailed=registered_emailed,
        registered_printed=registered_printed,
        by_language=languages if issued else {},
        complete=today > start + timedelta(days=6),
        window_closed=today >= registration_window_closes(start),
    )


# (emailed, printed, registered emailed, registered printed, Spanish issued, Spanish registered)
THIRTEEN_WEEKS = (
    (20, 11, 15, 5, 6, 3),
    (18, 10, 13, 4, 5, 2),
    (22, 13, 16, 6, 7, 4),
    (19, 9, 14, 4, 4, 2),
    (24, 14, 17, 7, 8, 4),
    (21, 12, 15, 5, 6, 3),
    (26, 15, 19, 7, 9, 5),
    (23, 11, 16, 5, 5, 3),
    (25, 16, 16, 6, 8, 3),
    (27, 14, 15, 4, 7, 2),
    (24, 13, 10, 3, 6, 1),
    (33, 19, 8, 2, 10, 1),
    (9, 5, 1, 0, 2, 0),
)


def thirteen_weeks(practice: str = PRACTICE) -> AdoptionReport:
    """7 Sep - 30 Nov 2026 seen on Wednesday 2 Dec: 12 full weeks and this week so far; the
    first 8 weeks' 30 days are over (up to the week of 26 Oct), the last 5 are so far."""
    today = date(2026, 12, 2)
    first = date(2026, 9, 7)
    weeks = tuple(
        week(
            first + timedelta(weeks=i),
            emailed=e,
            printed=p,
            registered_emailed=re,
            registered_printed=rp,
            today=today,
            spanish=(si, sr),
        )
        for i, (e, p, re, rp, si, sr) in enumerate(THIRTEEN_WEEKS)
    )
    return AdoptionReport(
        practice_name=practice,
        weeks=weeks,
        generated_at=datetime(2026, 12, 2, 14, 0, tzinfo=UTC),
    )
