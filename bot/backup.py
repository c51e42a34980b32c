"""`pinbot db backup FILE`: a consistent copy of the database while the bot keeps running.

SQLite: the online backup API (sqlite3 Connection.backup) in one step, which reads a single
snapshot — every transaction committed before it started, none half-done — while WAL lets the
bot keep writing. The copy goes to a temporary file next to FILE, is checked
(PRAGMA quick_check), switched to a self-contained rollback journal and only then renamed to
FILE, so a FILE that exists is always a whole backup.

PostgreSQL: pg_dump (a repeatable-read snapshot, same guarantee) in its custom format, when
pg_dump is installed; the password goes through PGPASSWORD, never the command line. Without
pg_dump the command to run elsewhere is printed and the backup fails (exit 1): a backup that
silently did nothing is worse than none.

Restore — SQLite: stop pinbot, copy FILE over the database file (remove any -wal and -shm
files next to it), start pinbot. PostgreSQL: stop pinbot, then
`pg_restore --clean --if-exists --no-owner --dbname=postgresql://user@host/db FILE`.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine.url import URL

from bot.db import normalize_url

PG_DUMP = "pg_dump"
_SQLITE_TIMEOUT_SECONDS = 15.0


class BackupFailed(Exception):
    """The backup was not made; the message is safe to print (no password)."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size_bytes: int
    how: str  # "SQLite online backup" or "pg_dump"

    def summary(self) -> str:
        return f"Backed up to {self.path} ({self.size_bytes / 1e6:,.1f} MB, {self.how})."


def backup(database_url: str, target: Path, *, overwrite: bool = False) -> BackupResult:
    url = normalize_url(database_url)
    target = target.expanduser()
    if target.exists() and not overwrite:
        raise BackupFailed(f"{target} already exists; choose a new name or add --force.")
    if not target.parent.is_dir():
        raise BackupFailed(f"No such directory: {target.parent}")
    backend = url.get_backend_name()
    if backend == "sqlite":
        return backup_sqlite(_sqlite_path(url), target)
    if backend == "postgresql":
        return backup_postgres(url, target)
    raise BackupFailed(
        f"Can't back up a {backend} database; pinbot supports SQLite and PostgreSQL."
    )


# -- SQLite -----------------------------------------------------------------------------------


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupFailed("DATABASE_URL is an in-memory SQLite database: nothing to back up.")
    path = Path(url.database).expanduser()
    if not path.is_file():
        raise BackupFailed(f"No database file at {path} (check DATABASE_URL).")
    return path


def backup_sqlite(source: Path, target: Path) -> BackupResult:
    if target.exists() and target.resolve() == source.resolve():
        raise BackupFailed("The backup file can't be the database itself.")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        _copy_sqlite(source, partial)
        os.replace(partial, target)
    except sqlite3.Error as error:
        raise BackupFailed(f"SQLite backup failed: {error}") from error
    finally:
        partial.unlink(missing_ok=True)
    _fsync_dir(target.parent)
    return BackupResult(target, target.stat().st_size, "SQLite online backup")


def _copy_sqlite(source: Path, partial: Path) -> None:
    # No `with sqlite3.connect()`: that manages a transaction, it does not close.
    src = sqlite3.connect(source, timeout=_SQLITE_TIMEOUT_SECONDS)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # pages=-1: one step, one snapshot (stepwise restarts on writes)
            # The copy inherits WAL mode; a rollback journal makes it one self-contained file.
            dst.execute("PRAGMA journal_mode = DELETE")
            verdict = dst.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise BackupFailed(f"The copy failed its integrity check ({verdict}).")
            dst.commit()
        finally:
            dst.close()
    finally:
        src.close()
    with partial.open("rb") as handle:  # on disk before the rename makes it "the backup"
        os.fsync(handle.fileno())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- PostgreSQL -------------------------------------------------------------------------------


def libpq_uri(url: URL) -> str:
    """postgresql://user@host:port/db?... without the password (pg_dump gets PGPASSWORD)."""
    # URL.set() ignores None, so _replace (URL is a NamedTuple) is how to drop the password.
    return url._replace(drivername="postgresql", password=None).render_as_string(
        hide_password=False
    )


def pg_dump_command(url: URL, target: Path, executable: str = PG_DUMP) -> list[str]:
    return [
        executable,
        "--format=custom",
        "--no-owner",
        f"--file={target}",
        f"--dbname={libpq_uri(url)}",
    ]


def shown_command(url: URL, target: Path) -> str:
    """The documented command, for the operator to run where pg_dump is installed."""
    password = "PGPASSWORD=<password> " if url.password else ""
    args = " ".join(f"'{arg}'" if " " in arg else arg for arg in pg_dump_command(url, target))
    return password + args


def backup_postgres(url: URL, target: Path) -> BackupResult:
    executable = shutil.which(PG_DUMP)
    if executable is None:
        raise BackupFailed(
            "pg_dump is not installed here, so no backup was made. Install the PostgreSQL "
            "client tools (the server's major version or newer, e.g. `apt install "
            "postgresql-client`) or run this where they are installed:\n  "
            + shown_command(url, target)
        )
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    env = {**os.environ, **({"PGPASSWORD": str(url.password)} if url.password else {})}
    try:
        done = subprocess.run(
            pg_dump_command(url, partial, executable),
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            said = (done.stderr.strip().splitlines() or ["no message"])[0]
            raise BackupFailed(f"pg_dump failed (exit {done.returncode}): {said}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(target, target.stat().st_size, "pg_dump, custom format")
