"""The adoption query against a real database (SQLite and PostgreSQL): a hand-counted history
of PINs across weeks and a DST change gives exactly the hand-computed figures."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from sqlalchemy import event
from sqlmodel import select

from bot.db import Database
from bot.importing.importer import import_registrations
from bot.reports.adoption import build_report, rated_totals
from bot.reports.figures import AdoptionReport, alt_text, to_csv, to_table
from models import IssueBatch, Pin
from tests.core.reports.history import EMPTY, EXPECTED, FIRST_MONDAY, NOW, TZ, local, seed_history
from tests.support.factories import make_family, make_patient

PRACTICE = "Maple Grove Pediatrics (test)"


def report(database: Database, **kwargs: object) -> AdoptionReport:
    with database.read_session() as session:
        return build_report(session, now=NOW, tz=TZ, practice_name=PRACTICE, **kwargs)  # type: ignore[arg-type]


def test_the_history_gives_the_hand_computed_figures(database: Database) -> None:
    seed_history(database)
    result = report(database)

    assert [w.week_start for w in result.weeks] == [
        FIRST_MONDAY + timedelta(weeks=i) for i in range(13)
    ]
    for i, week in enumerate(result.weeks):
        emailed, printed, reg_e, reg_p, languages = EXPECTED.get(i, EMPTY)
        got = (week.emailed, week.printed, week.registered_emailed, week.registered_printed)
        assert got == (emailed, printed, reg_e, reg_p), week.iso_label
        assert dict(week.by_language) == languages, week.iso_label
    assert [w.complete for w in result.weeks] == [True] * 12 + [False]
    # Windows close 37 days after a Monday: the week of 26 Oct closes on 2 Dec, today.
    assert [w.window_closed for w in result.weeks] == [True] * 8 + [False] * 5
    totals = result.totals
    assert (totals.issued, totals.emailed, totals.printed, totals.registered) == (10, 5, 5, 5)
    # The rates count the window-closed weeks only: 3 of 6, emailed 2 of 3, printed 1 of 3.
    assert result.rate == 0.5
    assert result.emailed_rate == 2 / 3
    assert result.printed_rate == 1 / 3
    assert result.languages == ("en", "es", "es+en")
    assert result.language_rate("es") == 0.5  # 1 of 2 in the week of 7 Sep
    assert result.generated_at.utcoffset() == timedelta(hours=-5)


def test_full_weeks_only_and_fewer_weeks(database: Database) -> None:
    seed_history(database)

    full = report(database, current_week=False)
    assert len(full.weeks) == 12 and full.weeks[-1].week_start == date(2026, 11, 23)
    assert all(w.complete for w in full.weeks)
    assert full.totals.issued == 9

    four = report(database, weeks=4)
    assert [w.week_start for w in four.weeks] == [
        date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16), date(2026, 11, 23),
        date(2026, 11, 30),
    ]  # fmt: skip
    assert [w.issued for w in four.weeks] == [2, 0, 0, 1, 1]
    assert four.rate is None  # none of these weeks has had its 30 days
    with pytest.raises(ValueError, match="at least one week"):
        report(database, weeks=0)


def test_an_empty_database_reports_zero_weeks(database: Database) -> None:
    result = report(database)
    assert len(result.weeks) == 13 and result.totals.issued == 0 and result.rate is None


def test_one_grouped_query_whatever_the_number_of_pins(database: Database) -> None:
    seed_history(database)
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(database._read_engine, "before_cursor_execute", seen)
    try:
        report(database)
    finally:
        event.remove(database._read_engine, "before_cursor_execute", seen)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1
    assert "GROUP BY" in selects[0].upper()


def test_no_phi_in_the_report_its_alt_text_csv_or_table(database: Database) -> None:
    phi = seed_history(database)
    result = report(database)
    outputs = [alt_text(result), to_csv(result), to_table(result), repr(result)]
    for words in phi:
        for output in outputs:
            assert words.lower() not in output.lower(), words


def test_imported_registrations_count_at_the_familys_time_not_the_imports(
    database: Database,
) -> None:
    """A PIN issued 8 Sep and registered 20 Sep (New York time), imported months later, is
    registered within 30 days: the window is measured to registered_at."""
    with database.transaction() as session:
        family = make_family(session, "A7100")
        child = make_patient(session, family, "Wilhelmina", date(2020, 3, 3), chart="MRN71001")
        batch = IssueBatch(family_id=family.id or 0, idempotency_key="reg:1",
                           issued_by="U0STAFF01", mode="print_only")  # fmt: skip
        session.add(batch)
        session.flush()
        session.add(Pin(patient_id=child.id or 0, batch_id=batch.id or 0, pin_hash="scrypt$r",
                        delivery="printed", issued_by="U0STAFF01",
                        issued_at=local(2026, 9, 8)))  # fmt: skip
    csv_text = "patient_id,registered_at\nMRN71001,2026-09-20T09:00\n"
    imported = import_registrations(database, io.StringIO(csv_text), timezone=TZ)
    assert imported.counts["registrations"]["registered"] == 1

    with database.read_session() as session:
        pin = session.exec(select(Pin)).one()
    assert pin.status_changed_at == local(2026, 9, 20, 9)
    first = report(database).weeks[0]
    assert (first.issued, first.registered) == (1, 1)


def test_the_home_tabs_rated_totals_equal_the_reports_rate(database: Database) -> None:
    seed_history(database)
    for now in (NOW, NOW - timedelta(days=9), NOW + timedelta(days=30)):
        with database.read_session() as session:
            full = build_report(session, now=now, tz=TZ, practice_name=PRACTICE,
                                current_week=False)  # fmt: skip
            rated = rated_totals(session, now=now, tz=TZ)
        assert rated.rate == full.rate
        assert rated.issued == sum(w.issued for w in full.rated_weeks)
        weeks = full.rated_weeks
        assert (rated.first_day, rated.last_day) == (
            (weeks[0].week_start, weeks[-1].week_end) if weeks else (None, None)
        )
    with database.read_session() as session:
        assert rated_totals(session, now=NOW, tz=TZ).rate == 0.5  # 3 of 6, by hand
