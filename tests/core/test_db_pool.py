"""Pooled PostgreSQL connections (bot/db.py): pinged only after they sat idle, and a dead one
replaced before the caller sees it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from bot import db
from bot.db import Database


@pytest.fixture
def postgres(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url)
    yield database
    database.dispose()


def _backend_pid(database: Database) -> int:
    with database.transaction() as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(postgres_url: str, pid: int) -> None:
    """Kill a server backend from another connection, as a server restart or an idle timeout
    would."""
    killer = Database(postgres_url)
    try:
        with killer.transaction() as session:
            session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        killer.dispose()


def test_a_connection_back_from_use_a_moment_ago_is_not_pinged(
    postgres: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings: list[object] = []
    monkeypatch.setattr(postgres.engine.dialect, "do_ping", lambda conn: pings.append(conn))
    _backend_pid(postgres)  # a new connection: pinged once
    first = len(pings)
    for _ in range(5):
        _backend_pid(postgres)
    assert first == 1
    assert len(pings) == first  # each checkout came within PING_AFTER_IDLE_S of its checkin


def test_an_idle_connection_is_pinged_and_a_dead_one_replaced(
    postgres: Database, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # every pooled connection counts as idle
    dead_pid = _backend_pid(postgres)
    _terminate(postgres_url, dead_pid)
    # The pooled connection's server is gone: the ping fails, the pool connects afresh, and
    # the caller's transaction runs as if nothing happened.
    assert _backend_pid(postgres) != dead_pid


def test_without_the_ping_a_dead_connection_fails_its_first_statement(
    postgres: Database, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other side of the trade: inside PING_AFTER_IDLE_S a connection killed under the
    pool fails once (DatabaseUnavailable: "try again"), then the pool has been reset."""
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 3600.0)
    dead_pid = _backend_pid(postgres)
    _terminate(postgres_url, dead_pid)
    with pytest.raises(db.DatabaseUnavailable):
        _backend_pid(postgres)
    assert _backend_pid(postgres) != dead_pid


def test_a_statement_run_twice_on_a_connection_is_prepared_and_the_newest_connection_reused(
    postgres: Database,
) -> None:
    """The search's and the card's statements are the same text on every request: the second
    run on a connection prepares it (psycopg's default waits for the sixth), and the pool hands
    out the connection used last (LIFO), which holds the prepared statements, before others."""
    probe = text("SELECT count(*) FROM family WHERE id = :id")
    pid = text("SELECT pg_backend_pid()")
    with postgres.read_session() as first, postgres.read_session() as second:
        pids = {int(session.execute(pid).scalar_one()) for session in (first, second)}
        newest = int(first.execute(pid).scalar_one())  # `first` goes back last (outer block)
    assert len(pids) == 2  # two connections now sit in the pool
    with postgres.read_session() as session:
        assert int(session.execute(pid).scalar_one()) == newest
        for family_id in (1, 2):
            session.execute(probe, {"id": family_id})
        prepared = session.execute(
            text(
                "SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%FROM family%'"
            )
        ).scalars()
        assert [s for s in prepared if "count(*)" in s]


def test_the_name_search_runs_on_its_own_pool_with_generic_plans(postgres: Database) -> None:
    """PostgreSQL re-plans a prepared statement on every run when its parameters are arrays of
    keys (the planner costs each key): the search's candidate statements run on a pool whose
    connections use generic plans, planned once; the bot's other statements keep the default."""
    from bot.lookup.search import search_families

    with postgres.read_session() as session:
        for query in ("Ava Smith", "Ava Smiht", "Noah Smyth", "Mia Smith"):
            search_families(session, query)
        assert session.execute(text("SHOW plan_cache_mode")).scalar_one() == "auto"
    assert postgres.lookup_engine is not None
    with postgres.lookup_engine.connect() as connection:  # the one used last (LIFO)
        assert connection.execute(text("SHOW plan_cache_mode")).scalar_one() == "force_generic_plan"
        plans = connection.execute(
            text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE '%UNION ALL%'"
            )
        ).all()
    assert plans and all(generic >= 1 and custom == 0 for generic, custom in plans), plans
