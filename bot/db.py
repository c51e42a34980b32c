"""Engines and sessions for SQLite (embedded default) and PostgreSQL (scale-out).

SQLite: WAL, foreign keys on, a busy timeout, and write transactions that take the write lock
up front (BEGIN IMMEDIATE) so two writers queue instead of deadlocking on lock upgrade.
Writers in one process also queue on a lock of their own first: SQLite's busy handler polls
with growing sleeps (up to 100 ms) and is not first-come-first-served, so under 20 busy staff
an unlucky /family waited 3 s behind a stream of issuances (bench/SOAK.md); a thread lock hands
over at once. Read-only work uses `read_session()`, a deferred BEGIN that never waits for
writers (on PostgreSQL: autocommit statements, each with its own READ COMMITTED snapshot, as
inside a transaction).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.engine import CursorResult, Result, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlmodel import Session, SQLModel

import models  # noqa: F401  (registers every table on the metadata)
from bot.secret import OWNER_ONLY, create_owner_only, others_can_read

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 15_000
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
# Bytes the -wal keeps once it restarts after a checkpoint: none, so no erased row survives in it.
SQLITE_JOURNAL_SIZE_LIMIT = 0
_sqlite_writers: dict[str, threading.RLock] = {}  # database file -> this process's writer lock
_sqlite_writers_lock = threading.Lock()
_READ_ONLY = "pinbot_read_only"
_ONE_STATEMENT = "pinbot_one_statement"
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class DatabaseUnavailable(Exception):
    """The database cannot be reached; the message is safe to show (no credentials)."""


@contextmanager
def connection_errors_as_unavailable() -> Iterator[None]:
    """Connection trouble (server down, dropped, database gone, SQLite locked past the busy
    timeout) becomes DatabaseUnavailable, which the error handler turns into "try again".
    The transaction has rolled back by then: nothing was half-written."""
    try:
        yield
    except (OperationalError, InterfaceError) as error:
        raise DatabaseUnavailable(f"database unavailable ({type(error.orig).__name__})") from error


def table_of(model: type[SQLModel]) -> Table:
    """The model's Core table: an INSERT of plain rows through it skips the ORM's bulk
    machinery, which costs more than the statement on the feed's hot path."""
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def normalize_url(raw: str) -> URL:
    """Let `postgresql://user@host/db` pick the installed driver (psycopg 3, else psycopg2)."""
    url = make_url(raw.replace("postgres://", "postgresql://", 1))
    if url.drivername == "postgresql":
        driver = "psycopg" if importlib.util.find_spec("psycopg") else "psycopg2"
        url = url.set(drivername=f"postgresql+{driver}")
    return url


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so our own BEGIN below is the one used.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        # Erased rows (a PIN's ciphertext once delivered) are zeroed in the file, not left in
        # free space, and the WAL is cut back to nothing each time it restarts after a
        # checkpoint, so their earlier versions do not linger in the -wal either (SPEC §12).
        cursor.execute("PRAGMA secure_delete = ON")
        cursor.execute(f"PRAGMA journal_size_limit = {SQLITE_JOURNAL_SIZE_LIMIT}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get(_ONE_STATEMENT, False):
            return  # a lone statement reads one snapshot of its own: no BEGIN or COMMIT
        connection.exec_driver_sql("BEGIN" if options.get(_READ_ONLY, False) else "BEGIN IMMEDIATE")


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL; None for an in-memory database."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:"):  # a SQLite URI (?uri=true): leave it to SQLite
        return None
    return Path(url.database).expanduser()


def secure_sqlite_files(database: Path) -> None:
    """Before SQLite opens `database`: create it 0600 (SQLite gives its -wal and -shm the
    database file's own mode, so all three are owner-only whatever the umask), and tighten
    a database an older version left -rw-r--r-- (SPEC §12)."""
    if not database.parent.is_dir():
        return  # SQLite says "unable to open database file" in its own words
    create_owner_only(database)
    for path in (database, *(Path(f"{database}{suffix}") for suffix in SQLITE_COMPANIONS)):
        try:
            if path.exists() and others_can_read(path) and path.stat().st_uid == os.getuid():
                path.chmod(OWNER_ONLY)
                log.warning("made a database file readable by its owner only", extra={"path": path})
        except FileNotFoundError:
            pass  # a -wal or -shm removed meanwhile by another connection closing


def make_engine(raw_url: str, **kwargs: Any) -> Engine:
    url = normalize_url(raw_url)
    # SQL parameters (names, emails, account numbers, payloads) never reach an error message,
    # a log line or a traceback: SQLAlchemy prints the statement only (SPEC §12).
    kwargs["hide_parameters"] = True
    if url.get_backend_name() == "sqlite":
        database_file = sqlite_file(url)
        if database_file is not None:
            secure_sqlite_files(database_file)
        kwargs.setdefault(
            "connect_args", {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    # Every request sends the same few statement texts (the search's shapes, the card's):
    # psycopg prepares one on its second run on a connection (its default waits for the
    # sixth), and the pool hands out the connection used last, which holds them, first.
    kwargs.setdefault("pool_use_lifo", True)
    kwargs.setdefault("connect_args", {"prepare_threshold": 1})
    engine = create_engine(url, **kwargs)
    _ping_idle_connections(engine)
    return engine


# A connection back in the pool for less than this is trusted without a ping (see below).
PING_AFTER_IDLE_S = 1.0
# The name search's own small pool on PostgreSQL (`run_lookup`): plan_cache_mode applies to
# its connections only; the bot's other statements (an outbox sweep by status, say, whose
# parameter's selectivity matters) keep PostgreSQL's default.
LOOKUP_POOL_SIZE = 4
LOOKUP_ENGINE = "pinbot_lookup_engine"
_GENERIC_PLANS = "-c plan_cache_mode=force_generic_plan"


def _ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection before use only if it sat idle for PING_AFTER_IDLE_S: a
    server restart or an idle timeout shows on those, and a failed ping makes the pool
    connect afresh (DisconnectionError, SQLAlchemy's pessimistic recipe). pool_pre_ping would
    ping every checkout: a round trip on each feed message and /family at full speed. A
    connection that breaks within the second fails its statement once and the pool is
    invalidated, as without pings."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is not None and time.monotonic() - checked_in_at < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise DisconnectionError("the pooled connection is gone") from error


class Database:
    """One engine plus the two kinds of session the bot uses."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.engine = make_engine(url, **engine_kwargs)
        # PostgreSQL reads run in autocommit: under READ COMMITTED every statement takes its own
        # snapshot even inside a transaction, so BEGIN and ROLLBACK were two round trips that
        # bought nothing (on a busy 2-core host each one waits for the server's turn on a
        # core: bench/RESULTS.md, issue 13 §4). SQLite keeps its deferred BEGIN: one snapshot.
        read_options: dict[str, Any] = {_READ_ONLY: True}
        if not self.is_sqlite:
            read_options["isolation_level"] = "AUTOCOMMIT"
        self._read_engine = self.engine.execution_options(**read_options)
        # PostgreSQL: the name search's candidate statements' own pool (`run_lookup`).
        self.lookup_engine: Engine | None = None
        if not self.is_sqlite:
            self.lookup_engine = make_engine(
                url,
                pool_size=LOOKUP_POOL_SIZE,
                connect_args={"prepare_threshold": 1, "options": _GENERIC_PLANS},
            ).execution_options(isolation_level="AUTOCOMMIT")
        self._writer: threading.RLock | None = None
        if self.is_sqlite:
            with _sqlite_writers_lock:  # one lock per file, shared by every Database on it
                key = str(self.engine.url.database)
                self._writer = _sqlite_writers.setdefault(key, threading.RLock())

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction: commit on success, roll back on any exception."""
        with (
            self._writer or nullcontext(),
            connection_errors_as_unavailable(),
            self.session() as session,
            session.begin(),
        ):
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        with (
            connection_errors_as_unavailable(),
            Session(self._read_engine, expire_on_commit=False) as session,
        ):
            if self.lookup_engine is not None:
                session.info[LOOKUP_ENGINE] = self.lookup_engine
            yield session

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A connection for ONE read statement, without the ORM around it and without a
        transaction (each statement reads its own consistent snapshot; on SQLite too: no
        BEGIN), for a hot path that asks everything in one prebuilt Core statement (the
        portal API's every attempt): the session's bookkeeping and a BEGIN and COMMIT cost
        more there than the statement."""
        with (
            connection_errors_as_unavailable(),
            self._read_engine.connect().execution_options(**{_ONE_STATEMENT: True}) as connection,
        ):
            yield connection

    def dispose(self) -> None:
        self.engine.dispose()
        if self.lookup_engine is not None:
            self.lookup_engine.dispose()


def run_lookup(session: Session, statement: Any, params: dict[str, Any]) -> list[Any]:
    """Run one of the name search's candidate statements. In a PostgreSQL read session it runs
    on the lookup pool, whose connections use generic plans: the statement is prepared on its
    second run there and never planned again, where PostgreSQL's default re-plans it on every
    run for its key lists (0.6 ms median, 1 ms p95 at 250k patients: more than running it).
    A read session's statements are autocommit, each with its own snapshot, so another
    connection sees the same data. Elsewhere (SQLite, a write transaction) the session's own."""
    lookups = session.info.get(LOOKUP_ENGINE)
    if lookups is None:
        return list(session.connection().execute(statement, params).fetchall())
    with connection_errors_as_unavailable(), lookups.connect() as connection:
        return list(connection.execute(statement, params).fetchall())


def upgrade(database: Database, revision: str = "head") -> None:
    """Create or upgrade the schema with Alembic (the only way the schema changes)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with database.engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()


def safe_url(raw: str) -> str:
    """The URL with any password hidden, for messages."""
    return normalize_url(raw).render_as_string(hide_password=True)


def why_unreachable(raw_url: str, error: BaseException) -> str:
    """The driver's first line, except where it hides the cause: SQLite's "unable to open
    database file" for a file whose folder does not exist names that folder."""
    first = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    database = sqlite_file(normalize_url(raw_url))
    if database is not None:
        folder = database.absolute().parent
        if not folder.is_dir():
            return f"the folder {folder} does not exist: create it, or fix DATABASE_URL"
    return first


def rows_changed(result: Result[Any]) -> int:
    """Rows an UPDATE or INSERT matched: what a conditional claim (UPDATE ... WHERE status =
    'pending') won. DML results are cursor results; only their static type says otherwise."""
    assert isinstance(result, CursorResult)
    return result.rowcount
