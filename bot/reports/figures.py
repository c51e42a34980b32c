"""The adoption figures (SPEC §10) as plain frozen dataclasses, and their text renderings.

A week is an ISO week, Monday to Sunday, in the practice's time zone. A PIN counts as
registered when its family registered it within 30 days of issue.

Which rates are final: a PIN issued less than 30 days ago has not had its 30 days yet, so the
rate of a week whose last PIN may still be inside its window is a rate *so far* and can only
go up. A week's window has closed once 30 days have passed since the end of the week, that is
from ``registration_window_closes(week_start)`` (Monday + 37 days) on; the query sets
``WeekFigures.window_closed`` accordingly (the current, incomplete week is never closed). Every
week keeps its own rate, marked "so far" where the window is open (hollow, dashed points on the
chart, "*" in the table, ``window_closed`` in the CSV). The report's overall, per-mode and
per-language rates count only window-closed weeks, so recent weeks do not drag them down;
its counts (issued, emailed, printed) count every week, including the current one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from types import MappingProxyType

REGISTRATION_WINDOW = timedelta(days=30)
ALT_TEXT_LIMIT = 1000  # Slack's alt_txt limit for files

_DASH = "\N{EN DASH}"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def registration_window_closes(week_start: date) -> date:
    """The first day on which every PIN issued in the week starting `week_start` has had its
    30 days: the week ends at the next Monday 00:00, plus 30 days."""
    return week_start + timedelta(days=7) + REGISTRATION_WINDOW


def rate(registered: int, issued: int) -> float | None:
    """registered / issued, or None when nothing was issued (no rate, not 0 %)."""
    return registered / issued if issued else None


def day_month(day: date) -> str:
    """'7 Sep': the week label of the chart, the table and the alt text (locale-independent)."""
    return f"{day.day} {_MONTHS[day.month - 1]}"


def percent(value: float | None, *, decimals: int = 0) -> str:
    """'61 %' (rounded half up), or '' for no rate."""
    if value is None:
        return ""
    return f"{_round_half_up(value * 100, decimals):.{decimals}f} %"


@dataclass(frozen=True)
class WeekFigures:
    """One ISO week's PINs. `registered*` count PINs registered within 30 days of issue.
    `by_language` maps a letter language code ("en", "es") to (issued, registered)."""

    week_start: date  # the Monday
    iso_year: int
    iso_week: int
    issued: int
    emailed: int
    printed: int
    registered: int
    registered_emailed: int
    registered_printed: int
    by_language: Mapping[str, tuple[int, int]] = field(hash=False)
    complete: bool  # False for the current week, still under way
    window_closed: bool  # every PIN of the week has had its 30 days (see the module docstring)

    def __post_init__(self) -> None:
        iso = self.week_start.isocalendar()
        if self.week_start.weekday() != 0:
            raise ValueError(f"week_start {self.week_start} is not a Monday")
        if (iso.year, iso.week) != (self.iso_year, self.iso_week):
            raise ValueError(f"week_start {self.week_start} is not in {self.iso_label}")
        counts = (self.issued, self.emailed, self.printed, self.registered)
        if min(*counts, self.registered_emailed, self.registered_printed) < 0:
            raise ValueError(f"{self.iso_label}: negative count")
        if self.emailed + self.printed != self.issued:
            raise ValueError(f"{self.iso_label}: emailed + printed != issued")
        if self.registered_emailed + self.registered_printed != self.registered:
            raise ValueError(f"{self.iso_label}: registered per mode != registered")
        if self.registered_emailed > self.emailed or self.registered_printed > self.printed:
            raise ValueError(f"{self.iso_label}: more registered than issued")
        languages = dict(self.by_language)
        if any(min(pair) < 0 or pair[1] > pair[0] for pair in languages.values()):
            raise ValueError(f"{self.iso_label}: bad per-language counts")
        if (sum(i for i, _ in languages.values()), sum(r for _, r in languages.values())) != (
            self.issued,
            self.registered,
        ):
            raise ValueError(f"{self.iso_label}: per-language counts do not add up")
        if self.window_closed and not self.complete:
            raise ValueError(f"{self.iso_label}: an incomplete week's window cannot be closed")
        object.__setattr__(self, "by_language", MappingProxyType(languages))

    @property
    def iso_label(self) -> str:
        """'2026-W37'."""
        return f"{self.iso_year}-W{self.iso_week:02d}"

    @property
    def week_end(self) -> date:
        """The Sunday."""
        return self.week_start + timedelta(days=6)

    @property
    def rate(self) -> float | None:
        return rate(self.registered, self.issued)

    @property
    def emailed_rate(self) -> float | None:
        return rate(self.registered_emailed, self.emailed)

    @property
    def printed_rate(self) -> float | None:
        return rate(self.registered_printed, self.printed)


@dataclass(frozen=True)
class Totals:
    """Sums of the report's weeks. No rate: see AdoptionReport.rate for why."""

    issued: int
    emailed: int
    printed: int
    registered: int
    registered_emailed: int
    registered_printed: int


@dataclass(frozen=True)
class AdoptionReport:
    """Consecutive-or-not weeks in ascending order; at most the last one incomplete, and the
    window-closed weeks first (the windows close in week order)."""

    practice_name: str
    weeks: tuple[WeekFigures, ...]
    generated_at: datetime  # the services' clock, in the practice's time zone

    def __post_init__(self) -> None:
        if not self.weeks:
            raise ValueError("an adoption report needs at least one week")
        starts = [week.week_start for week in self.weeks]
        if any(a >= b for a, b in pairwise(starts)):
            raise ValueError("weeks must be in ascending order, each once")
        if any(not week.complete for week in self.weeks[:-1]):
            raise ValueError("only the last week may be incomplete")
        closed = [week.window_closed for week in self.weeks]
        if any(later and not earlier for earlier, later in pairwise(closed)):
            raise ValueError("a week's window closed before an earlier week's")

    @property
    def totals(self) -> Totals:
        return Totals(
            issued=sum(w.issued for w in self.weeks),
            emailed=sum(w.emailed for w in self.weeks),
            printed=sum(w.printed for w in self.weeks),
            registered=sum(w.registered for w in self.weeks),
            registered_emailed=sum(w.registered_emailed for w in self.weeks),
            registered_printed=sum(w.registered_printed for w in self.weeks),
        )

    @property
    def rated_weeks(self) -> tuple[WeekFigures, ...]:
        """The weeks whose 30-day window has closed: the basis of the report's rates."""
        return tuple(week for week in self.weeks if week.window_closed)

    @property
    def rate(self) -> float | None:
        """Registered within 30 days over issued, in the window-closed weeks only."""
        weeks = self.rated_weeks
        return rate(sum(w.registered for w in weeks), sum(w.issued for w in weeks))

    @property
    def emailed_rate(self) -> float | None:
        weeks = self.rated_weeks
        return rate(sum(w.registered_emailed for w in weeks), sum(w.emailed for w in weeks))

    @property
    def printed_rate(self) -> float | None:
        weeks = self.rated_weeks
        return rate(sum(w.registered_printed for w in weeks), sum(w.printed for w in weeks))

    @property
    def languages(self) -> tuple[str, ...]:
        """Letter languages with at least one PIN issued, most PINs first (then by code)."""
        issued = {lang: self.language_issued(lang) for w in self.weeks for lang in w.by_language}
        present = [lang for lang, count in issued.items() if count]
        return tuple(sorted(present, key=lambda lang: (-issued[lang], lang)))

    def language_issued(self, language: str) -> int:
        """PINs issued with letters in `language`, every week."""
        return sum(w.by_language.get(language, (0, 0))[0] for w in self.weeks)

    def language_rate(self, language: str) -> float | None:
        """The 30-day rate of `language`'s PINs, in the window-closed weeks only."""
        pairs = [w.by_language.get(language, (0, 0)) for w in self.rated_weeks]
        return rate(sum(r for _, r in pairs), sum(i for i, _ in pairs))

    @property
    def busiest_week(self) -> WeekFigures | None:
        """The week with the most PINs (the latest of equals), or None when none were issued."""
        week = max(self.weeks, key=lambda w: (w.issued, w.week_start))
        return week if week.issued else None

    @property
    def last_day(self) -> date:
        """The last day the figures cover: the last week's Sunday, or today if it is under way."""
        last = self.weeks[-1]
        return last.week_end if last.complete else min(last.week_end, self.generated_at.date())

    @property
    def date_range(self) -> str:
        """'7 Sep - 29 Nov 2026', or '28 Dec 2026 - 22 Mar 2027' across years (en dashes)."""
        return span(self.weeks[0].week_start, self.last_day)

    @property
    def rated_range(self) -> str | None:
        """The span of the window-closed weeks, or None when there are none."""
        weeks = self.rated_weeks
        return span(weeks[0].week_start, weeks[-1].week_end) if weeks else None


def alt_text(report: AdoptionReport) -> str:
    """The chart's figures in words for a screen reader, within Slack's 1000 characters.
    Counts and rates only: the practice name is the one name in it."""
    totals = report.totals
    lead = (
        f"PINs issued per week at {report.practice_name}, {report.date_range}: "
        f"{totals.issued} in all ({totals.emailed} emailed, {totals.printed} printed)"
    )
    if report.rate is not None:
        modes = ", ".join(
            f"{mode} {percent(value)}"
            for mode, value in (("emailed", report.emailed_rate), ("printed", report.printed_rate))
            if value is not None
        )
        lead += f"; {percent(report.rate)} registered within 30 days ({modes}"
        lead += f"; weeks of {report.rated_range})." if _has_open_weeks(report) else ")."
    elif totals.issued:
        lead += "; none of them has had its 30 days yet, so no registration rate."
    else:
        lead += "."
    sentences = [lead]
    languages = report.languages
    if len(languages) > 1:
        parts = []
        for lang in languages:
            part = f"{lang} {report.language_issued(lang)}"
            lang_rate = report.language_rate(lang)
            parts.append(part if lang_rate is None else f"{part} ({percent(lang_rate)} registered)")
        sentences.append("By letter language: " + ", ".join(parts) + ".")
    busiest = report.busiest_week
    if busiest is not None and len(report.weeks) > 1:
        sentences.append(f"Busiest week: {day_month(busiest.week_start)}, {busiest.issued} PINs.")
    weekly = "Per week: " + ", ".join(_week_words(week) for week in report.weeks) + "."
    if _has_open_weeks(report):
        weekly += " Rates marked 'so far' are for weeks whose 30 days are not over."
    text = " ".join(sentences)
    if len(text) + 1 + len(weekly) <= ALT_TEXT_LIMIT:
        text += " " + weekly
    return text if len(text) <= ALT_TEXT_LIMIT else text[: ALT_TEXT_LIMIT - 1] + "…"


def to_csv(report: AdoptionReport) -> str:
    """One row per week (RFC 4180, CRLF). `rate` is percent with one decimal, empty for no PINs;
    `window_closed` says whether that rate is final (see the module docstring)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "week",
            "week_start",
            "issued",
            "emailed",
            "printed",
            "registered",
            "rate",
            "complete",
            "window_closed",
        ]
    )
    for week in report.weeks:
        writer.writerow(
            [
                week.iso_label,
                week.week_start.isoformat(),
                week.issued,
                week.emailed,
                week.printed,
                week.registered,
                "" if week.rate is None else f"{_round_half_up(week.rate * 100, 1):.1f}",
                str(week.complete).lower(),
                str(week.window_closed).lower(),
            ]
        )
    return out.getvalue()


def to_table(report: AdoptionReport) -> str:
    """A fixed-width table for the terminal: weeks as rows, a totals line, footnotes."""
    header = f"{'Week':<9}{'Starts':<8}{'Issued':>8}{'Emailed':>9}{'Printed':>9}"
    header += f"{'Registered':>12}{'Rate':>10}"
    lines = [f"PIN adoption at {report.practice_name}, {report.date_range}", "", header]
    for week in report.weeks:
        mark = "" if week.window_closed or week.rate is None else "*"
        lines.append(
            _row(week.iso_label, day_month(week.week_start), week, percent(week.rate, decimals=1))
            + mark
        )
    totals = report.totals
    lines.append("-" * len(header))
    total_rate = percent(report.rate, decimals=1) or "-"
    lines.append(_row("Total", "", totals, total_rate) + ("**" if _has_open_weeks(report) else ""))
    if _has_open_weeks(report):
        lines.append("")
        lines.append("* so far: some of the week's PINs have not had their 30 days yet.")
        basis = f"the weeks of {report.rated_range}" if report.rated_range else "no week yet"
        lines.append(f"** counts every week; the rate only weeks whose 30 days are over: {basis}.")
    if not report.weeks[-1].complete:
        lines.append(f"{report.weeks[-1].iso_label} is under way: its counts are so far.")
    return "\n".join(lines) + "\n"


def _row(label: str, starts: str, figures: WeekFigures | Totals, rate_text: str) -> str:
    return (
        f"{label:<9}{starts:<8}{figures.issued:>8}{figures.emailed:>9}{figures.printed:>9}"
        f"{figures.registered:>12}{rate_text:>10}"
    )


def _week_words(week: WeekFigures) -> str:
    words = f"{day_month(week.week_start)} {week.issued}"
    if week.rate is not None:
        so_far = "" if week.window_closed else " so far"
        words += f" ({percent(week.rate)}{so_far})"
    return words


def _has_open_weeks(report: AdoptionReport) -> bool:
    return any(not week.window_closed for week in report.weeks)


def span(first: date, last: date) -> str:
    """'7 Sep – 29 Nov 2026', or '28 Dec 2026 – 22 Mar 2027' across years (en dashes)."""
    if first.year == last.year:
        return f"{day_month(first)} {_DASH} {day_month(last)} {last.year}"
    return f"{day_month(first)} {first.year} {_DASH} {day_month(last)} {last.year}"


def _round_half_up(value: float, decimals: int) -> float:
    scale = 10.0**decimals
    return int(value * scale + 0.5 + 1e-9) / scale  # 1e-9: 0.725 * 100 is 72.49999…
