"""guardian_language (SPEC §4, §9): read from codes and names as EHRs write them, stored as
ISO 639-1 on the guardian, on SQLite and PostgreSQL; the feed's NK1-20 takes the same path."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from sqlmodel import select

from bot.db import Database
from bot.feed.records import AdtPatient
from bot.feed.records import Guardian as Nk1
from bot.importing.families import FamiliesImporter
from bot.importing.fields import Fields
from bot.importing.importer import import_families
from bot.languages import UnknownLanguage, english_name, native_name, read_language
from models import Guardian

GOOD = Path(__file__).parents[2] / "data" / "families_good.csv"  # 6 rows, guardians on 2..7


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("es", "es"),
        ("ES", "es"),
        ("spa", "es"),
        ("SPA", "es"),
        ("Spanish", "es"),
        ("spanish", "es"),
        ("Español", "es"),
        ("español", "es"),
        ("ESPANOL", "es"),
        ("es-MX", "es"),
        ("Mexican Spanish", "es"),
        ("Spanish; Castilian", "es"),  # the ISO 639-2 list's own name
        ("vie", "vi"),
        ("Tiếng Việt", "vi"),
        ("chi", "zh"),  # ISO 639-2/B
        ("zho", "zh"),  # ISO 639-2/T
        ("Chinese - Mandarin", "zh"),
        ("ger", "de"),
        ("deu", "de"),
        ("fre", "fr"),
        ("Français", "fr"),
        ("Haitian Creole", "ht"),
        ("Kreyòl Ayisyen", "ht"),
        ("Tagalog", "tl"),
        ("fil", "tl"),
        ("ara", "ar"),
        ("Русский", "ru"),
        ("한국어", "ko"),
        ("Somali", "so"),
        ("per", "fa"),
        ("Farsi", "fa"),
        ("Hmong", "hmn"),  # no ISO 639-1 code: the 639-2 code, as BCP 47 writes it
        ("eng", "en"),
        ("English", "en"),
    ],
)
def test_codes_and_names_read_as_iso_639_1(value: str, code: str) -> None:
    assert read_language(value) == code


@pytest.mark.parametrize("value", ["", "   ", "UNK", "und", "Unknown", "Declined", "Other"])
def test_values_that_say_not_known_are_no_language(value: str) -> None:
    assert read_language(value) is None


@pytest.mark.parametrize("value", ["xx", "qqq", "Elvish", "Spanglishh", "e s", "../en"])
def test_anything_else_is_refused(value: str) -> None:
    with pytest.raises(UnknownLanguage):
        read_language(value)


def test_names_for_people() -> None:
    assert (english_name("es"), native_name("es")) == ("Spanish", "Español")
    assert (english_name("vi"), native_name("vi")) == ("Vietnamese", "Tiếng Việt")
    assert native_name("zz") == english_name("zz") == "zz"


def _with_languages(*values: str) -> io.StringIO:
    header, *rows = GOOD.read_text(encoding="utf-8").strip().split("\n")
    assert len(values) == len(rows)
    lines = [f"{header},guardian_language"]
    lines += [f"{row},{value}" for row, value in zip(rows, values, strict=True)]
    return io.StringIO("\n".join(lines) + "\n")


def _languages(database: Database) -> dict[str, str | None]:
    with database.read_session() as session:
        return {g.first_name: g.language for g in session.exec(select(Guardian)).all()}


def test_csv_column_is_stored_on_the_guardian(database: Database) -> None:
    # Marla (lines 2, 4), Dirk (3, 5), Opal (6), Hank (7).
    report = import_families(database, _with_languages("Español", "UNK", "spa", "", "SPANISH", ""))
    assert report.ok and report.written, report.problems
    assert _languages(database) == {"Marla": "es", "Dirk": None, "Opal": "es", "Hank": None}


def test_bad_values_are_listed_by_line_and_nothing_is_written(database: Database) -> None:
    report = import_families(database, _with_languages("es", "Klingonese", "es", "", "xx", ""))
    assert not report.written
    assert [line for line, _ in report.problems] == [3, 6]
    assert "guardian_language 'Klingonese' is not a language" in report.problems[0][1]
    assert _languages(database) == {}


def test_a_file_without_the_column_or_an_empty_value_keeps_a_known_language(
    database: Database,
) -> None:
    assert import_families(database, _with_languages("es", "", "es", "", "vi", "")).written
    assert import_families(database, GOOD).counts["guardians"]["updated"] == 0  # as before
    assert _languages(database)["Marla"] == "es"
    again = import_families(database, _with_languages("", "", "", "", "", ""))
    assert again.counts["guardians"]["updated"] == 0
    assert _languages(database) == {"Marla": "es", "Dirk": None, "Opal": "vi", "Hank": None}
    changed = import_families(database, _with_languages("en", "", "en", "", "vi", ""))
    assert changed.counts["guardians"]["updated"] == 1
    assert _languages(database)["Marla"] == "en"


def _feed_row(language: str) -> dict[str, str]:
    patient = AdtPatient(
        "A900", "P9001", "Lucia", "", "Feedwell", date(2019, 5, 1), "F", "",
        (Nk1("Rosa", "Feedwell", "Mother", "555-010-0190", "rosa@example.com", language),),
    )  # fmt: skip
    (row,) = patient.to_family_rows()
    return row


@pytest.mark.parametrize(("nk1_20", "stored"), [("spa", "es"), ("es", "es"), ("", None)])
def test_the_feeds_nk1_20_takes_the_csv_path(nk1_20: str, stored: str | None) -> None:
    fields = Fields(_feed_row(nk1_20), date(2026, 12, 1))
    row = FamiliesImporter().parse(fields)
    assert fields.problems == []
    assert row.language == stored


def test_an_unknown_nk1_20_is_a_problem_like_a_csv_value() -> None:
    fields = Fields(_feed_row("zzz"), date(2026, 12, 1))
    FamiliesImporter().parse(fields)
    assert fields.problems == [
        "guardian_language 'zzz' is not a language pinbot knows; use an ISO 639 code "
        "(es, spa) or the language's name (Spanish, Español)"
    ]


def test_the_demo_has_a_spanish_preferring_family_and_says_so(database: Database) -> None:
    from bot.importing.demo import demo_hints, load_demo

    assert load_demo(database).ok
    with database.read_session() as session:
        spanish = session.exec(select(Guardian).where(Guardian.language == "es")).all()
    assert sorted(g.first_name for g in spanish) == ["Rocío", "Tomás"]  # "Spanish" and "spa"
    surname = spanish[0].last_name
    (hint,) = [line for line in demo_hints() if "prefer Spanish" in line]
    assert hint.strip().startswith(f"/family {surname} ")
