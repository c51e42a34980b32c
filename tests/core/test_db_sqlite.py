"""A SQLite file database's connections (bot/db.py): pages read through a shared memory map,
and the connection used last handed out first, so its prepared statements and page cache
serve the next request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.db import SQLITE_MMAP_BYTES, Database


@pytest.fixture
def file_database(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'pinbot.db'}")
    yield database
    database.dispose()


def _connection_id(session: object) -> int:
    return id(session.connection().connection.driver_connection)  # type: ignore[attr-defined]


def test_a_file_database_reads_through_a_memory_map(file_database: Database) -> None:
    with file_database.read_session() as session:
        assert session.execute(text("PRAGMA mmap_size")).scalar_one() == SQLITE_MMAP_BYTES


def test_the_connection_used_last_is_handed_out_first(file_database: Database) -> None:
    # A request holds its read session while it writes (two connections), closes the write
    # transaction first, then the read session: the next read gets the reading connection
    # back (first in, first out would hand it the writing one).
    with file_database.read_session() as reads:
        reading = _connection_id(reads)
        with file_database.transaction() as writes:
            writing = _connection_id(writes)
    assert reading != writing
    for _ in range(3):
        with file_database.read_session() as reads:
            assert _connection_id(reads) == reading
