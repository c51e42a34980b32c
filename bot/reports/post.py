"""The weekly adoption post's content (SPEC §10): the message beside the chart, and the report
as JSON so that the outbox can render the chart when it delivers (a retry renders the same
figures again; nothing but counts is stored).

The message is plain text built from numbers and fixed words (no names, no mrkdwn to escape):
Slack shows it as the upload's initial comment.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from bot.reports.figures import AdoptionReport, WeekFigures, percent


def summary_text(report: AdoptionReport) -> str:
    """Totals, and the 30-day registration rate overall and per delivery mode (and per letter
    language when there is more than one), counts only."""
    totals = report.totals
    lines = [
        f"Weekly PIN adoption report, {report.date_range}: {totals.issued} PIN"
        f"{'' if totals.issued == 1 else 's'} issued ({totals.emailed} emailed, "
        f"{totals.printed} printed)."
    ]
    if report.rate is None:
        lines.append("No week has had its 30 days yet, so there is no registration rate.")
    else:
        rated = list(report.rated_weeks)
        issued = sum(w.issued for w in rated)
        registered = sum(w.registered for w in rated)
        lines.append(
            f"Registered within 30 days: {percent(report.rate)} ({registered} of {issued}, "
            f"weeks of {report.rated_range})."
        )
        modes = [
            _mode_line("Emailed", report.emailed_rate, rated, "emailed"),
            _mode_line("Printed", report.printed_rate, rated, "printed"),
        ]
        lines += [line for line in modes if line]
        languages = report.languages
        if len(languages) > 1:
            parts = []
            for lang in languages:
                lang_rate = report.language_rate(lang)
                parts.append(f"{lang} {percent(lang_rate) if lang_rate is not None else '-'}")
            lines.append("By letter language: " + ", ".join(parts) + ".")
    if any(not w.window_closed for w in report.weeks):
        lines.append("Later weeks' rates in the chart are so far: their 30 days are not over.")
    return "\n".join(lines)


def _mode_line(label: str, value: float | None, rated: list[WeekFigures], mode: str) -> str:
    if value is None:
        return ""
    issued = sum(getattr(w, mode) for w in rated)
    registered = sum(getattr(w, f"registered_{mode}") for w in rated)
    return f"{label}: {percent(value)} ({registered} of {issued})."


def report_to_json(report: AdoptionReport) -> dict[str, Any]:
    return {
        "practice_name": report.practice_name,
        "generated_at": report.generated_at.isoformat(),
        "weeks": [
            {
                "week_start": w.week_start.isoformat(),
                "iso_year": w.iso_year,
                "iso_week": w.iso_week,
                "issued": w.issued,
                "emailed": w.emailed,
                "printed": w.printed,
                "registered": w.registered,
                "registered_emailed": w.registered_emailed,
                "registered_printed": w.registered_printed,
                "by_language": {k: list(v) for k, v in w.by_language.items()},
                "complete": w.complete,
                "window_closed": w.window_closed,
            }
            for w in report.weeks
        ],
    }


def report_from_json(data: dict[str, Any]) -> AdoptionReport:
    """The report `report_to_json` stored; the dataclasses validate it again."""
    weeks = tuple(
        WeekFigures(
            **{
                **w,
                "week_start": date.fromisoformat(w["week_start"]),
                "by_language": {k: (int(v[0]), int(v[1])) for k, v in w["by_language"].items()},
            }
        )
        for w in data["weeks"]
    )
    return AdoptionReport(
        practice_name=data["practice_name"],
        weeks=weeks,
        generated_at=datetime.fromisoformat(data["generated_at"]),
    )
