"""What the running bot does on its own timers (bot/runtime/process.py start_background), on
SQLite and PostgreSQL. Records are synthetic."""

from __future__ import annotations

from datetime import date

from bot.db import Database
from bot.lookup.search import search_families
from bot.runtime.process import start_background
from tests.support.factories import make_family, make_patient
from tests.support.stack import Stack, eventually


def test_names_another_process_imports_are_found_by_close_spelling_within_seconds(
    stack: Stack, database_url: str
) -> None:
    """The running bot looks at the newest ids every second in the background, so a search
    never waits on that look and still finds a name another process (a CSV import) wrote a
    moment ago by its close spellings — here without the search looking itself (its own
    look waits for STALE_SECONDS, 10 s)."""
    with stack.database.read_session() as session:
        assert search_families(session, "Quillbottom") == []  # the keys are loaded now
    importer = Database(database_url)  # another process: its own connections and caches
    try:
        with importer.transaction() as session:
            family = make_family(session, "QB-1")
            make_patient(session, family, "Tansy", date(2020, 4, 4), last="Quillbottom")
    finally:
        importer.dispose()
    with stack.database.read_session() as session:
        assert search_families(session, "Quillbotom") == []  # not looked yet

    worker, scheduler = start_background(stack.services)
    try:

        def found_by_close_spelling() -> None:
            with stack.database.read_session() as session:
                hits = search_families(session, "Quillbotom")
            assert [hit.account_number for hit in hits] == ["QB-1"]

        eventually(found_by_close_spelling, timeout=5)
    finally:
        scheduler.shutdown(wait=True)
        worker.stop()
