"""The adoption figures' invariants and their words: alt text, CSV and table, by hand."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime

import pytest

from bot.reports.figures import (
    ALT_TEXT_LIMIT,
    AdoptionReport,
    WeekFigures,
    alt_text,
    percent,
    registration_window_closes,
    to_csv,
    to_table,
)
from tests.core.reports.samples import PRACTICE, thirteen_weeks, week

TODAY = date(2026, 12, 2)  # a Wednesday


def small_report() -> AdoptionReport:
    """Four weeks seen on 2 Dec 2026: 19 Oct and 26 Oct have had their 30 days
    (their windows close on 25 Nov and 2 Dec), 2 Nov has not, 9 Nov issued nothing."""
    weeks = (
        week(date(2026, 10, 19), emailed=6, printed=4, registered_emailed=3,
             registered_printed=1, spanish=(2, 0), today=TODAY),
        week(date(2026, 10, 26), emailed=8, printed=2, registered_emailed=6,
             registered_printed=0, today=TODAY),
        week(date(2026, 11, 2), emailed=5, printed=3, registered_emailed=2,
             registered_printed=1, spanish=(3, 1), today=TODAY),
        week(date(2026, 11, 9), emailed=0, printed=0, registered_emailed=0,
             registered_printed=0, today=TODAY),
    )  # fmt: skip
    return AdoptionReport(
        practice_name=PRACTICE, weeks=weeks, generated_at=datetime(2026, 12, 2, 9, tzinfo=UTC)
    )


def test_window_closes_thirty_days_after_the_weeks_end() -> None:
    assert registration_window_closes(date(2026, 10, 26)) == date(2026, 12, 2)
    weeks = small_report().weeks
    assert [w.window_closed for w in weeks] == [True, True, False, False]
    assert all(w.complete for w in weeks)


def test_rates_by_hand() -> None:
    report = small_report()
    first, _, so_far, empty = report.weeks
    assert (first.rate, first.emailed_rate, first.printed_rate) == (0.4, 0.5, 0.25)
    assert so_far.rate == 3 / 8
    assert empty.rate is None and empty.emailed_rate is None
    totals = report.totals
    assert (totals.issued, totals.emailed, totals.printed, totals.registered) == (28, 19, 9, 13)
    # Only the two window-closed weeks count: 10 of 20, emailed 9 of 14, printed 1 of 6.
    assert report.rate == 0.5
    assert report.emailed_rate == 9 / 14
    assert report.printed_rate == 1 / 6
    assert report.languages == ("en", "es")
    assert (report.language_issued("en"), report.language_issued("es")) == (23, 5)
    assert report.language_rate("en") == 10 / 18
    assert report.language_rate("es") == 0.0
    assert report.language_rate("fr") is None
    assert report.busiest_week == report.weeks[1]  # the later of two tens
    assert report.date_range == "19 Oct \N{EN DASH} 15 Nov 2026"
    assert report.rated_range == "19 Oct \N{EN DASH} 1 Nov 2026"


def test_alt_text_states_the_figures() -> None:
    dash = "\N{EN DASH}"
    assert alt_text(small_report()) == (
        f"PINs issued per week at Sunny Pediatrics, 19 Oct {dash} 15 Nov 2026: 28 in all "
        "(19 emailed, 9 printed); 50 % registered within 30 days (emailed 64 %, printed 17 %; "
        f"weeks of 19 Oct {dash} 1 Nov 2026). By letter language: en 23 (56 % registered), "
        "es 5 (0 % registered). Busiest week: 26 Oct, 10 PINs. Per week: 19 Oct 10 (40 %), "
        "26 Oct 10 (60 %), 2 Nov 8 (38 % so far), 9 Nov 0. Rates marked 'so far' are for "
        "weeks whose 30 days are not over."
    )


def test_csv_states_the_figures() -> None:
    assert to_csv(small_report()) == (
        "week,week_start,issued,emailed,printed,registered,rate,complete,window_closed\r\n"
        "2026-W43,2026-10-19,10,6,4,4,40.0,true,true\r\n"
        "2026-W44,2026-10-26,10,8,2,6,60.0,true,true\r\n"
        "2026-W45,2026-11-02,8,5,3,3,37.5,true,false\r\n"
        "2026-W46,2026-11-09,0,0,0,0,,true,false\r\n"
    )


def test_table_has_the_rows_the_totals_and_the_footnotes() -> None:
    table = to_table(small_report())
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines() if line.strip()}
    assert rows["2026-W43"] == ["19", "Oct", "10", "6", "4", "4", "40.0", "%"]
    assert rows["2026-W45"] == ["2", "Nov", "8", "5", "3", "3", "37.5", "%*"]
    assert rows["2026-W46"] == ["9", "Nov", "0", "0", "0", "0"]
    assert rows["Total"] == ["28", "19", "9", "13", "50.0", "%**"]
    assert "* so far" in table
    assert "** counts every week" in table
    widths = {len(line) for line in table.splitlines()[2:] if line.startswith("2026-W")}
    assert max(widths) - min(widths) <= 1  # fixed width, plus the "*" mark


def test_thirteen_weeks_under_way() -> None:
    report = thirteen_weeks()
    assert not report.weeks[-1].complete
    assert report.date_range == "7 Sep \N{EN DASH} 2 Dec 2026"  # up to today, not Sunday
    assert "2026-W49 is under way" in to_table(report)
    assert to_csv(report).splitlines()[-1].endswith(",false,false")
    assert len(alt_text(report)) <= ALT_TEXT_LIMIT


def test_percent_rounds_half_up() -> None:
    assert percent(0.375) == "38 %"
    assert percent(0.725, decimals=1) == "72.5 %"
    assert percent(0.0) == "0 %"
    assert percent(None) == ""


def test_all_zero_weeks() -> None:
    weeks = tuple(
        week(date(2026, 9, 7 + 7 * i), emailed=0, printed=0, registered_emailed=0,
             registered_printed=0, today=TODAY)
        for i in range(3)
    )  # fmt: skip
    report = AdoptionReport(practice_name=PRACTICE, weeks=weeks, generated_at=datetime.now(UTC))
    assert report.rate is None and report.busiest_week is None and report.languages == ()
    assert alt_text(report).startswith(
        f"PINs issued per week at {PRACTICE}, 7 Sep \N{EN DASH} 27 Sep 2026: 0 in all "
        "(0 emailed, 0 printed). Per week: 7 Sep 0"
    )
    assert to_csv(report).count(",,true,true") == 3
    assert "Total" in to_table(report)


def test_no_window_closed_yet() -> None:
    only = week(date(2026, 11, 23), emailed=3, printed=1, registered_emailed=1,
                registered_printed=0, today=TODAY)  # fmt: skip
    report = AdoptionReport(practice_name=PRACTICE, weeks=(only,), generated_at=datetime.now(UTC))
    assert report.rate is None and report.rated_range is None
    text = alt_text(report)
    assert "none of them has had its 30 days yet" in text
    assert "Busiest" not in text  # one week: nothing to compare
    assert "no week yet" in to_table(report)


def test_dates_across_a_new_year() -> None:
    weeks = tuple(
        week(start, emailed=1, printed=1, registered_emailed=1, registered_printed=0,
             today=date(2027, 3, 1))
        for start in (date(2026, 12, 28), date(2027, 1, 4))
    )  # fmt: skip
    report = AdoptionReport(practice_name=PRACTICE, weeks=weeks, generated_at=datetime.now(UTC))
    assert [w.iso_label for w in weeks] == ["2026-W53", "2027-W01"]
    assert report.date_range == "28 Dec 2026 \N{EN DASH} 10 Jan 2027"


def test_long_practice_name_keeps_alt_text_within_slacks_limit() -> None:
    report = thirteen_weeks("Sunny Pediatrics and Adolescent Medicine of the Valley " * 20)
    text = alt_text(report)
    assert len(text) <= ALT_TEXT_LIMIT
    assert text.endswith("\N{HORIZONTAL ELLIPSIS}")


def test_the_csv_parses_back() -> None:
    rows = list(csv.DictReader(to_csv(thirteen_weeks()).splitlines()))
    assert len(rows) == 13
    assert sum(int(row["issued"]) for row in rows) == thirteen_weeks().totals.issued


def figures(**changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "week_start": date(2026, 11, 2), "iso_year": 2026, "iso_week": 45, "issued": 3,
        "emailed": 2, "printed": 1, "registered": 1, "registered_emailed": 1,
        "registered_printed": 0, "by_language": {"en": (3, 1)}, "complete": True,
        "window_closed": False,
    }  # fmt: skip
    fields.update(changes)
    return fields


@pytest.mark.parametrize(
    "changes",
    [
        {"week_start": date(2026, 11, 3)},  # a Tuesday
        {"iso_week": 46},
        {"emailed": 3},  # emailed + printed != issued
        {"registered_emailed": 0},  # per mode != registered
        {"printed": 0, "emailed": 3, "registered_printed": 1, "registered_emailed": 0},
        {"by_language": {"en": (2, 1)}},
        {"by_language": {"en": (3, 1), "es": (1, 2)}},
        {"complete": False, "window_closed": True},
        {"issued": -1},
    ],
)
def test_inconsistent_figures_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        WeekFigures(**figures(**changes))  # type: ignore[arg-type]


def test_by_language_cannot_change_afterwards() -> None:
    languages = {"en": (3, 1)}
    figures_ = WeekFigures(**figures(by_language=languages))  # type: ignore[arg-type]
    languages["es"] = (1, 1)
    assert dict(figures_.by_language) == {"en": (3, 1)}
    with pytest.raises(TypeError):
        figures_.by_language["es"] = (1, 1)  # type: ignore[index]


def test_report_order_is_checked() -> None:
    weeks = small_report().weeks
    now = datetime.now(UTC)
    with pytest.raises(ValueError):
        AdoptionReport(practice_name=PRACTICE, weeks=(), generated_at=now)
    with pytest.raises(ValueError):
        AdoptionReport(practice_name=PRACTICE, weeks=(weeks[1], weeks[0]), generated_at=now)
    with pytest.raises(ValueError):  # a closed window after an open one
        AdoptionReport(practice_name=PRACTICE, weeks=(weeks[2], weeks[1]), generated_at=now)
