"""Family and patient search (/family, /pin) on SQLite and PostgreSQL. Synthetic people only."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event
from sqlmodel import Session, func, select

from bot.db import Database
from bot.errors import InvalidQuery
from bot.lookup import finding
from bot.lookup import name_keys as name_keys_module
from bot.lookup.name_keys import KeySet, letters
from bot.lookup.search import (
    FamilyHit,
    QueryKind,
    find_families,
    is_single_match,
    label_families,
    parse_query,
    search_families,
    search_patients,
    warm_up,
)
from bot.text import fold, normalized_email, phone_digits
from models import AuditEvent, Family, Guardian, Patient

Child = tuple[str, str, date, str]  # first, last, dob, chart id
Adult = tuple[str, str, str | None, str | None]  # first, last, email, phone

FAMILIES: list[tuple[str, list[Child], list[Adult]]] = [
    (
        "A1001",
        [
            ("Ava", "Smith", date(2019, 3, 2), "MRN1001"),
            ("Ben", "Smith", date(2021, 7, 14), "MRN1002"),
        ],
        [("Jane", "Smith", "Jane.Smith@Example.com", "(555) 010-1234")],
    ),
    (
        "A1002",
        [("Eva", "Smith", date(2018, 1, 1), "MRN2001")],
        [("Tom", "Smith", None, "555-010-9999")],
    ),
    (
        "A1003",
        [("Liam", "Johnson", date(2017, 5, 5), "MRN3001")],
        [("Maria", "Johnson", "maria.j@example.com", None)],
    ),
    ("A1004", [("Noah", "Smyth", date(2016, 2, 2), "MRN4001")], [("Kate", "Brown", None, None)]),
    (
        "A1005",
        [("Olivia", "Martinez-Lopez", date(2020, 10, 10), "MRN5001")],
        [("Rosa", "Martinez", "rosa@example.com", "555 010 5555")],
    ),
    ("A1006", [("Mia", "Smith", date(2015, 6, 6), "MRN6001")], [("Paul", "Smith", None, None)]),
]


def add_family(
    session: Session, account: str, children: list[Child], guardians: list[Adult]
) -> int:
    """Insert the way the importer does: key columns filled with bot.text functions."""
    family = Family(account_number=account)
    session.add(family)
    session.flush()
    assert family.id is not None
    for first, last, dob, chart in children:
        session.add(
            Patient(
                family_id=family.id,
                chart_id=chart,
                first_name=first,
                last_name=last,
                dob=dob,
                first_key=fold(first),
                last_key=fold(last),
            )
        )
    for first, last, email, phone in guardians:
        session.add(
            Guardian(
                family_id=family.id,
                first_name=first,
                last_name=last,
                email=email,
                phone=phone,
                match_key=normalized_email(email) or f"name:{fold(first)} {fold(last)}",
                phone_digits=phone_digits(phone),
                first_key=fold(first),
                last_key=fold(last),
            )
        )
    return family.id


@pytest.fixture
def practice(database: Database) -> Iterator[Database]:
    with database.transaction() as session:
        for account, children, guardians in FAMILIES:
            add_family(session, account, children, guardians)
    yield database


def find(database: Database, text: str, **kwargs: int) -> list[FamilyHit]:
    with database.read_session() as session:
        hits = search_families(session, text, **kwargs)
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True), "best first"
    return hits


def accounts(hits: list[FamilyHit]) -> list[str]:
    return [hit.account_number for hit in hits]


# --- each kind of query ----------------------------------------------------------------------


def test_surname_exact(practice: Database) -> None:
    hits = find(practice, "Johnson")
    assert accounts(hits) == ["A1003"]
    assert hits[0].score == 100 and hits[0].exact and hits[0].matched_on == "child name"
    assert is_single_match(hits)


@pytest.mark.parametrize(
    ("text", "account"),
    [
        ("jonhson", "A1003"),
        ("Jonson", "A1003"),
        ("jhonson", "A1003"),
        ("smtyh", "A1004"),
    ],
)
def test_surname_with_one_typo(practice: Database, text: str, account: str) -> None:
    hits = find(practice, text)
    assert hits[0].account_number == account
    assert not hits[0].exact and hits[0].score < 85
    assert "similar spelling" in hits[0].matched_on


def test_typo_in_a_common_surname_finds_every_family(practice: Database) -> None:
    hits = find(practice, "smiht")
    assert set(accounts(hits)[:3]) == {"A1001", "A1002", "A1006"}
    assert not is_single_match(hits)


def test_last_comma_first(practice: Database) -> None:
    hits = find(practice, "smith, ava")
    assert hits[0].account_number == "A1001"
    assert hits[0].score == 100 and hits[0].exact
    assert all(not hit.exact and hit.score <= 85 for hit in hits[1:])
    assert is_single_match(hits)
    assert find(practice, "SMITH,AVA")[0].account_number == "A1001"


def test_last_comma_first_ranks_other_families_with_that_surname_after(practice: Database) -> None:
    hits = find(practice, "Smith, Mia")
    assert hits[0].account_number == "A1006"
    assert {"A1001", "A1002"} <= set(accounts(hits))


@pytest.mark.parametrize("text", ["Ava Smtih", "Ava Smiht", "Smtih Ava", "Avva Smith"])
def test_child_first_and_last_with_typo(practice: Database, text: str) -> None:
    hits = find(practice, text)
    assert hits[0].account_number == "A1001"
    assert hits[0].matched_on.startswith("child name")


def test_child_first_and_last_exact(practice: Database) -> None:
    hits = find(practice, "Eva Smith")
    assert hits[0].account_number == "A1002" and hits[0].exact
    assert is_single_match(hits)


def test_guardian_name(practice: Database) -> None:
    hits = find(practice, "Kate Brown")
    assert accounts(hits) == ["A1004"]
    assert hits[0].matched_on == "guardian name" and hits[0].exact
    hits = find(practice, "jane smith")
    assert hits[0].account_number == "A1001" and hits[0].matched_on == "guardian name"
    assert is_single_match(hits)


def test_guardian_surname_alone(practice: Database) -> None:
    hits = find(practice, "brown")
    assert accounts(hits) == ["A1004"]
    assert hits[0].matched_on == "guardian name"


def test_hyphenated_surname(practice: Database) -> None:
    for text in (
        "Martinez-Lopez",
        "martinez lopez",
        "olivia martinez-lopez",
        "Martinez Lopez, Olivia",
    ):
        assert find(practice, text)[0].account_number == "A1005", text


def test_a_surname_of_many_words(practice: Database) -> None:
    with practice.transaction() as session:
        add_family(
            session,
            "A5001",
            [("Imogen", "Coreth von und zu Coredo und Starkenberg", date(2019, 9, 9), "MRN5501")],
            [],
        )
    for text in (
        "Coreth von und zu Coredo und Starkenberg",
        "Imogen Coreth von und zu Coredo und Starkenberg",
        "Coreth von und zu Coredo und Starkenberg, Imogen",
    ):
        hits = find(practice, text)
        assert hits[0].account_number == "A5001" and hits[0].exact, text


def test_partial_surname(practice: Database) -> None:
    hits = find(practice, "john")
    assert hits[0].account_number == "A1003"
    assert hits[0].matched_on == "child name (partial)"


@pytest.mark.parametrize(
    "text",
    [
        "(555) 010-1234",
        "555.010.1234",
        "+1 555 010 1234",
        "5550101234",
        "1-555-010-1234",
    ],
)
def test_phone_in_any_format(practice: Database, text: str) -> None:
    assert parse_query(text).kind is QueryKind.PHONE
    hits = find(practice, text)
    assert accounts(hits) == ["A1001"]
    assert hits[0].matched_on == "guardian phone" and hits[0].exact


@pytest.mark.parametrize(
    "text",
    [
        "jane.smith@example.com",
        "JANE.SMITH@EXAMPLE.COM",
        " Jane.Smith@Example.com ",
    ],
)
def test_email_in_any_case(practice: Database, text: str) -> None:
    hits = find(practice, text)
    assert accounts(hits) == ["A1001"]
    assert hits[0].matched_on == "guardian email"


@pytest.mark.parametrize("text", ["A1003", "a1003", "#A1003"])
def test_account_number(practice: Database, text: str) -> None:
    hits = find(practice, text)
    assert accounts(hits) == ["A1003"]
    assert hits[0].matched_on == "account number" and is_single_match(hits)


@pytest.mark.parametrize("text", ["MRN3001", "mrn3001"])
def test_chart_id(practice: Database, text: str) -> None:
    hits = find(practice, text)
    assert accounts(hits) == ["A1003"]
    assert hits[0].matched_on == "chart id"


@pytest.mark.parametrize("text", ["03/02/2019", "3/2/2019", "2019-03-02"])
def test_date_of_birth(practice: Database, text: str) -> None:
    hits = find(practice, text)
    assert accounts(hits) == ["A1001"]
    assert hits[0].matched_on == "DOB"


def test_date_of_birth_shared_by_two_families_is_a_list(practice: Database) -> None:
    with practice.transaction() as session:
        add_family(session, "A2001", [("Zara", "Quill", date(2019, 3, 2), "MRN9001")], [])
    hits = find(practice, "03/02/2019")
    assert set(accounts(hits)) == {"A1001", "A2001"}
    assert not is_single_match(hits)
    hits = find(practice, "quill 03/02/2019")
    assert hits[0].account_number == "A2001" and hits[0].matched_on == "DOB and child name"
    assert is_single_match(hits)


def test_a_placeholder_name_with_a_digit_is_searched_as_a_name(practice: Database) -> None:
    with practice.transaction() as session:
        add_family(session, "A4001", [("Judysgirl", "Quade", date(2024, 1, 2), "MRN4401")], [])
    assert parse_query("1Judysgirl").kind is QueryKind.IDENTIFIER
    assert accounts(find(practice, "1Judysgirl")) == ["A4001"]


def test_no_match_is_empty(practice: Database) -> None:
    assert find(practice, "Qwxyzzy") == []
    assert find(practice, "Z99999") == []
    assert find(practice, "(555) 999-0000") == []
    assert find(practice, "nobody@example.com") == []
    assert find(practice, "01/01/1990") == []


def test_common_surname_gives_several_hits_best_first(practice: Database) -> None:
    hits = find(practice, "Smith")
    assert set(accounts(hits)[:3]) == {"A1001", "A1002", "A1006"}
    assert all(hit.score == 100 and hit.exact for hit in hits[:3])
    assert hits[-1].account_number == "A1004" and not hits[-1].exact  # Smyth: close spelling
    assert not is_single_match(hits)
    assert len(find(practice, "Smith", limit=2)) == 2


def test_labels_name_the_family(practice: Database) -> None:
    hit = find(practice, "A1001")[0]
    assert hit.label == ("Smith \u2014 Ava (2019-03-02), Ben (2021-07-14); guardian Jane Smith")
    assert "Olivia (2020-10-10); guardian Rosa Martinez" in find(practice, "A1005")[0].label


# --- /pin: children -------------------------------------------------------------------------


def test_search_patients(practice: Database) -> None:
    with practice.read_session() as session:
        hits = search_patients(session, "smith, ava")
        assert hits[0].label == "Ava Smith (2019-03-02) \u2014 account A1001"
        assert is_single_match(hits)
        by_account = search_patients(session, "A1001")
        assert [hit.label.split(" (")[0] for hit in by_account] == ["Ava Smith", "Ben Smith"]
        assert not is_single_match(by_account)
        by_chart = search_patients(session, "MRN1002")
        assert [hit.label.split(" (")[0] for hit in by_chart] == ["Ben Smith"]
        assert {h.family_id for h in search_patients(session, "555.010.1234")} == {
            by_chart[0].family_id
        }
        assert search_patients(session, "Kate Brown") == []  # a guardian is not a child
        assert search_patients(session, "Ben Smiht")[0].patient_id == by_chart[0].patient_id


# --- the name keys stay fresh, and a search stays a handful of queries ----------------------


def test_names_written_elsewhere_are_found_by_close_spelling_after_the_next_look(
    practice: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows written by another process (a CSV import): until the next look at the newest ids
    (every second in the running bot's background, `refresh_name_keys`), searches take the
    keys as they were — the exact name is found all the same, being looked up as typed — and
    after it the close spellings are too. With no background look, a search looks itself once
    the last look is STALE_SECONDS old."""
    assert find(practice, "Quintanilla") == []
    with practice.transaction() as session:
        add_family(session, "A3001", [("Zelda", "Quintanilla", date(2020, 1, 1), "MRN7001")], [])
    assert accounts(find(practice, "Quintanilla")) == ["A3001"]
    assert find(practice, "Quintanila") == []
    name_keys_module.refresh_name_keys(practice)
    assert accounts(find(practice, "Quintanila")) == ["A3001"]
    with practice.transaction() as session:
        add_family(session, "A3002", [("Ines", "Vandermeulen", date(2021, 2, 2), "MRN7002")], [])
    monkeypatch.setattr(name_keys_module, "STALE_SECONDS", 0.0)
    assert accounts(find(practice, "zelda quintanlila")) == ["A3001"]
    assert accounts(find(practice, "Vandermeulenn")) == ["A3002"]


def statements_sent(database: Database, *texts: str) -> list[str]:
    """The SQL sent while searching for each of `texts`."""
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    engines = [database.engine, *([database.lookup_engine] if database.lookup_engine else [])]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", seen)
    try:
        for text in texts:
            find(database, text)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", seen)
    return statements


def test_a_search_is_a_handful_of_queries(practice: Database) -> None:
    find(practice, "smith")  # loads the name keys
    statements = statements_sent(practice, "ava smtih")
    # patient candidates, guardian candidates, then families/children/guardians; no look at
    # the newest ids (the running bot does that in the background)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 5
    assert not [s for s in statements if "max(" in s.lower()], statements


# --- reading the query ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("smith", QueryKind.NAME),
        ("Ava Smith", QueryKind.NAME),
        ("O'Brien", QueryKind.NAME),
        ("smith, ava", QueryKind.LAST_FIRST),
        ("(555) 010-1234", QueryKind.PHONE),
        ("jane@example.com", QueryKind.EMAIL),
        ("03/02/2019", QueryKind.DOB),
        ("2019-03-02", QueryKind.DOB),
        ("<mailto:jane@example.com|jane@example.com>", QueryKind.EMAIL),
        ("<tel:5550101234|(555) 010-1234>", QueryKind.PHONE),
        ("A1001", QueryKind.IDENTIFIER),
        ("12345", QueryKind.IDENTIFIER),
        ("0012-345", QueryKind.IDENTIFIER),
    ],
)
def test_parse_query_kinds(text: str, kind: QueryKind) -> None:
    assert parse_query(text).kind is kind


def test_a_bare_ten_digit_number_is_tried_as_phone_and_account(practice: Database) -> None:
    query = parse_query("5550101234")
    assert query.kind is QueryKind.PHONE and query.identifier == "5550101234"
    with practice.transaction() as session:
        add_family(session, "5550109999", [("Ivy", "Quell", date(2018, 8, 8), "MRN8001")], [])
    hits = find(practice, "5550109999")  # also Tom Smith's phone (555-010-9999)
    assert {(hit.account_number, hit.matched_on) for hit in hits} == {
        ("5550109999", "account number"),
        ("A1002", "guardian phone"),
    }
    assert not is_single_match(hits)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "!!!",
        "- , .",
        "x" * 201,
        "13/45/2019",
        "02/30/2019",
        "3/2/19",
        "jane@",
        "a b c d e f g h i j k",
    ],
)
def test_invalid_queries(practice: Database, text: str) -> None:
    with practice.read_session() as session, pytest.raises(InvalidQuery) as error:
        search_families(session, text)
    assert error.value.user_message.endswith(".")


def test_is_single_match_rule() -> None:
    def hit(score: int, exact: bool) -> FamilyHit:
        return FamilyHit(1, "A1", score, "child name", "label", exact)

    assert not is_single_match([])
    assert is_single_match([hit(68, False)])  # one hit, even a close spelling
    assert is_single_match([hit(100, True), hit(80, False)])
    assert not is_single_match([hit(100, True), hit(97, True)])  # two exact hits
    assert not is_single_match([hit(100, True), hit(90, False)])  # gap too small
    assert not is_single_match([hit(82, False), hit(60, False)])  # top is not exact


def test_find_families_ranks_as_search_families_without_the_labels(practice: Database) -> None:
    """/family decides card or list on the unlabelled ranking (issue 13 §4): same order,
    scores and exactness as the labelled search."""
    with practice.read_session() as session:
        for text in ("smith", "ava smith", "smiht", "MRN1001", "(555) 010-1234", "2019-03-02"):
            found = find_families(session, text)
            hits = search_families(session, text)
            assert [(f.family_id, f.score, f.exact, f.matched_on) for f in found] == [
                (h.family_id, h.score, h.exact, h.matched_on) for h in hits
            ]
            assert label_families(session, found) == hits
            assert is_single_match(found) == is_single_match(hits)


def test_close_spellings_are_kept_per_name_set_and_a_new_name_is_seen() -> None:
    keys = KeySet({"smith": 3, "smyth": 1})
    first = keys.similar("smiht", 2, 25)
    assert ("smith", 1) in first and keys.similar("smiht", 2, 25) == first
    assert keys.plus(["smith"]).similar("smiht", 2, 25) == first  # same names, shared
    grown = keys.plus(["smiht"])  # a name never seen: a new set, its own close spellings
    assert ("smiht", 0) in grown.similar("smiht", 2, 25)
    assert ("smiht", 0) not in keys.similar("smiht", 2, 25)


_NAME_KEY = st.text(alphabet="abcdeyz", min_size=1, max_size=6)


def groups(keys: KeySet) -> dict[tuple[int, str], tuple[list[str], list[int], list[int]]]:
    return {g: (list(k), list(n), m.tolist()) for g, (k, n, m) in keys.by_letter.items()}


def test_a_key_within_reach_has_almost_the_same_letters() -> None:
    """What the close-spelling scan's filter relies on, for each kind of edit."""
    word = letters("smith")
    for key, edits in [("smiht", 1), ("smyth", 1), ("smit", 1), ("smitha", 1), ("smythe", 2)]:
        lacks, extra = (word & ~letters(key)).bit_count(), (letters(key) & ~word).bit_count()
        assert lacks <= edits and extra <= edits, key
    assert (word & ~letters("jones")).bit_count() == 4  # out of reach of 2 edits: skipped


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(st.text(alphabet="aeimnorsty", min_size=2, max_size=9), max_size=400),
    word=st.text(alphabet="aeimnorstyz", min_size=2, max_size=9),
    edits=st.integers(1, 3),
)
def test_the_letters_filter_finds_exactly_what_a_full_scan_finds(
    names: list[str], word: str, edits: int
) -> None:
    keys = KeySet(dict.fromkeys(names, 1))
    with patch.object(name_keys_module, "FILTER_FROM", 10**9):
        scanned = keys.similar(word, edits, 1000)
    keys = KeySet(dict.fromkeys(names, 1))  # no cached answer
    with patch.object(name_keys_module, "FILTER_FROM", 0):
        filtered = keys.similar(word, edits, 1000)
    assert sorted(filtered) == sorted(scanned)


@given(
    start=st.dictionaries(_NAME_KEY, st.integers(1, 4), max_size=40),
    added=st.lists(st.lists(_NAME_KEY, max_size=3), max_size=6),
)
def test_keys_added_one_message_at_a_time_equal_a_fresh_build(
    start: dict[str, int], added: list[list[str]]
) -> None:
    """The feed adds each message's names in place (no re-sort): the result must be exactly
    the set a full reload would build, for prefixes and close spellings alike."""
    keys = KeySet(start)
    before = (list(keys.sorted), groups(keys))
    grown = keys
    for message in added:
        grown = grown.with_keys(message)
    new = {key: 1 for message in added for key in message if key not in start}
    fresh = KeySet({**start, **new})
    assert (grown.sorted, groups(grown), grown.counts) == (
        fresh.sorted,
        groups(fresh),
        fresh.counts,
    )
    # Copy on write: a search holding the old set sees it unchanged.
    assert (keys.sorted, groups(keys)) == before
    for word in ("ab", "zy", "bad"):
        assert grown.similar(word, 1, 25) == fresh.similar(word, 1, 25)
        assert grown.with_prefix(word[0], 10) == fresh.with_prefix(word[0], 10)


def test_a_name_search_has_one_text_per_shape_so_the_database_keeps_it_prepared(
    practice: Database,
) -> None:
    """Key lists are one parameter each — a PostgreSQL array, a JSON text SQLite reads with
    json_each — so "Ava Smith" and "Ava Smiht" (other numbers of close spellings) send the same
    statement text, which psycopg prepares and pysqlite keeps in its statement cache: the
    database stops parsing and planning the big UNION on every search."""
    texts = [
        statement
        for statement in statements_sent(
            practice, "Ava Smith", "Ava Smiht", "Avva Smyth", "Noah Smith"
        )
        if "UNION ALL" in statement and "AS tag" in statement
    ]
    assert len(texts) == 4
    assert ("json_each(" if practice.is_sqlite else "= ANY (") in texts[0]
    assert len(set(texts)) < len(texts), "the same shape sent different statement texts"


def test_warm_up_compiles_the_name_statements_before_staff_search(practice: Database) -> None:
    """`pinbot run` warms up on the practice's own names: afterwards a staff search of one of
    those shapes builds nothing new, and the warm-up wrote nothing."""
    finding._union.cache_clear()
    finding.family_labels_statement.cache_clear()
    with practice.read_session() as session:
        assert warm_up(session, seconds=0) == 0  # the time limit holds
        ran = warm_up(session)
        built = finding._union.cache_info().misses
        assert ran >= 5 * len(FAMILIES) and built > 0
        assert finding.family_labels_statement.cache_info().misses == 1  # a list's labels
        assert find_families(session, "Ava Smith") and find_families(session, "Smith, Ava")
        assert finding._union.cache_info().misses == built
    with practice.read_session() as session:
        assert session.exec(select(func.count()).select_from(AuditEvent)).one() == 0


def test_an_old_sqlite_without_json_functions_gets_in_lists_and_the_same_results(
    practice: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(PostgreSQL keeps its arrays whatever the SQLite library says.)"""
    queries = ("Ava Smith", "Smiht", "Smith, Eva", "Noah Smyth", "martinez")
    found = [accounts(find(practice, text)) for text in queries]
    monkeypatch.setattr(finding.sqlite3, "sqlite_version_info", (3, 37, 2))
    expected = "expanding" if practice.is_sqlite else "array"
    assert finding.key_lists(practice.engine.dialect.name) == expected
    assert [accounts(find(practice, text)) for text in queries] == found


PAIRS = {Patient: (["smith"], ["ava", "eva"]), Guardian: (["smith"], ["jane", "tom"])}


@pytest.mark.parametrize("table", [Patient, Guardian])
def test_a_first_last_reading_is_one_seek_on_both_keys(
    practice: Database, table: type[Patient] | type[Guardian]
) -> None:
    """ "Matthew Smith" must not walk every Matthew (or every Smith) to find the few Matthew
    Smiths: the look-up of a "first last" reading is answered by an index on both keys
    (models.practice.name_key_indexes). On PostgreSQL the scans a table this small would
    rather use are switched off, so the plan shows which index serves it."""
    lasts, firsts = PAIRS[table]
    with practice.engine.connect() as connection:
        lists = finding.key_lists(connection.dialect.name)
        statement = finding._union((table,), ("last+first",), lists)
        params: dict[str, object] = {"a0": lasts, "b0": firsts, "n0": 400}
        if lists == "json":
            params.update(a0=json.dumps(lasts), b0=json.dumps(firsts))
        compiled = statement.compile(connection)
        sql = str(compiled)
        if practice.is_sqlite:
            values = {**compiled.params, **params}  # the OFFSET SQLAlchemy adds to a LIMIT
            positional = tuple(values[name] for name in compiled.positiontup or ())
            explained = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", positional)
            plan = " ".join(str(row[-1]) for row in explained)
            both = r"INDEX ix_\w+ \((last|first)_key=\? AND (first|last)_key=\?\)"
        else:
            connection.exec_driver_sql(f"ANALYZE {table.__tablename__}")
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            connection.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
            plan = " ".join(
                str(row[0]) for row in connection.exec_driver_sql(f"EXPLAIN {sql}", params)
            )
            # (at this size PostgreSQL seeks on one key and filters on the other; at 250,000
            # patients it seeks on both: bench/RESULTS.md)
            both = r"Index Scan using ix_\w+_(last_first|first_last) "
        assert re.search(both, plan), plan
        found = {(row.first_key, row.last_key) for row in connection.execute(statement, params)}
    assert found == {(first, "smith") for first in firsts}


def test_close_spellings_tied_at_the_cut_off_are_the_same_after_a_restart() -> None:
    """More keys one edit away than are kept: which are kept must not depend on the process's
    string hashing (PYTHONHASHSEED differs on every start)."""
    script = (
        "from bot.lookup.name_keys import KeySet;"
        "names = [a + b + 'ith' for a in 'sm' for b in 'abcdefghijklmnopqrstuvwxyz'];"
        "print(KeySet(dict.fromkeys(names, 1)).similar('smith', 1, 5))"
    )
    answers = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(1, 7)
    }
    assert len(answers) == 1, answers


def test_the_background_look_waits_quietly_while_the_database_is_unreachable(
    tmp_path: Path,
) -> None:
    unreachable = Database(f"sqlite:///{tmp_path / 'no-such-folder' / 'pinbot.db'}")
    try:
        name_keys_module.refresh_name_keys(unreachable)  # no exception: the next second tries
    finally:
        unreachable.dispose()


def test_a_list_s_labels_are_one_statement_whatever_its_length(practice: Database) -> None:
    """Issue 22: the families of a list are labelled by one statement (one round trip) whose
    text is the same for two families or all of them, so the database keeps it prepared."""
    with practice.read_session() as session:
        every = find_families(session, "smith") + find_families(session, "MRN4001")
    texts: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        texts.append(statement)

    engines = [practice.engine, *([practice.lookup_engine] if practice.lookup_engine else [])]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", seen)
    try:
        with practice.read_session() as session:
            few, many = label_families(session, every[:2]), label_families(session, every)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", seen)
    selects = [t for t in texts if t.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2 and selects[0] == selects[1]
    assert [h.family_id for h in few] == [m.family_id for m in every[:2]]
    assert [h.family_id for h in many] == [m.family_id for m in every]


def test_an_identifier_search_sends_one_text_whatever_its_spellings(practice: Database) -> None:
    """Issue 22: a chart id or account number is tried as typed, bare, upper- and lower-case:
    one to four spellings, one parameter, so one statement text the database keeps prepared
    (an IN list of each length was planned anew: 1 ms of planning for 0.1 ms of work)."""
    texts = [
        statement
        for statement in statements_sent(practice, "MRN1001", "#mrn1001", "1001", "A1001")
        if "coalesce" in statement.lower()
    ]
    assert len(texts) == 4 and len(set(texts)) == 1
    assert [hit.account_number for hit in find(practice, "#mrn1001")] == ["A1001"]
