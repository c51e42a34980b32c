"""Shared fixtures. Every storage test runs on SQLite and on PostgreSQL.

PostgreSQL tests need PINBOT_TEST_POSTGRES_URL (CI sets it). With it set, an unreachable
server is an error, never a skip; without it they skip with the reason below.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel

from bot.db import Database, upgrade
from tests.support.pg import scratch_database

PG_URL = os.environ.get("PINBOT_TEST_POSTGRES_URL")
# Processes the tests start (pinbot run, workers) read the secret from here rather than
# creating pinbot.key in the working directory; tests of the key file pass their own path.
os.environ.setdefault("PINBOT_KEY", "test-only-pinbot-key-0123456789abcdef")
PG_SKIP_REASON = (
    "PostgreSQL tests skipped: set PINBOT_TEST_POSTGRES_URL "
    "(e.g. postgresql://postgres@127.0.0.1:5432/test) to run them"
)
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once keeps the suite fast)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    database = Database(f"sqlite:///{path}")
    upgrade(database)
    database.dispose()  # the last connection to close checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the test server, migrated once, dropped at the end."""
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    with scratch_database(PG_URL, "pinbot_test", migrate=True) as url:
        yield url


# Every sequence back to its start, so ids begin at 1 in each test as they would after TRUNCATE
# ... RESTART IDENTITY.
_RESTART_SEQUENCES = text(
    "SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, start_value, false) "
    "FROM pg_sequences WHERE schemaname = current_schema()"
)


def _empty_all(database: Database) -> None:
    """Every table emptied, children first, and every id sequence restarted. DELETE, not
    TRUNCATE: a test leaves a few rows, and TRUNCATE's new files for 15 tables cost ~0.1-0.4 s
    per test against ~10 ms, over the suite's many hundred PostgreSQL tests."""
    with database.engine.begin() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            connection.execute(table.delete())
        connection.execute(_RESTART_SEQUENCES)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "pinbot.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        path.chmod(0o600)  # as pinbot creates it (a copy takes the umask's mode)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_url")
    database = Database(url)
    _empty_all(database)
    database.dispose()
    yield url


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The usual umask (022), under which files are -rw-r--r-- unless pinbot says otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


# Shared servers: the local SMTP server (aiosmtpd) and the fake Slack Web API.
from tests.support.fake_slack import fake_slack_fixture  # noqa: E402, F401
from tests.support.logs import pinbot_log_fixture  # noqa: E402, F401
from tests.support.smtp_server import smtp_server_fixture  # noqa: E402, F401
from tests.support.stack import stack  # noqa: E402, F401
