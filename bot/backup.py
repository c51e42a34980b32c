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

Encrypted backups (SPEC §12): with BACKUP_RECIPIENT (age public keys, `age1…`) the backup is
encrypted to them with age (pyrage) as it is written, so the host that writes backups cannot
read them; the plaintext copy never touches the disk (SQLite: the snapshot is taken into
memory; PostgreSQL: pg_dump's output is streamed through the encryption). Without a recipient
the file is plain but readable by its owner only (0600), whatever the umask.

Restore (README "Backups and restore") — decrypt first when encrypted:
`age --decrypt -i backup-key.txt FILE > pinbot.db` (or the .dump). SQLite: stop pinbot, copy
the plain file over the database file (remove any -wal and -shm files next to it), start
pinbot. PostgreSQL: stop pinbot, then
`pg_restore --clean --if-exists --no-owner --dbname=postgresql://user@host/db FILE`.
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyrage
from sqlalchemy.engine.url import URL

from bot.db import normalize_url, sqlite_file
from bot.secret import create_owner_only

PG_DUMP = "pg_dump"
_SQLITE_TIMEOUT_SECONDS = 15.0


class BackupFailed(Exception):
    """The backup was not made; the message is safe to print (no password)."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size_bytes: int
    how: str  # "SQLite online backup" or "pg_dump"
    encrypted: bool = False

    def summary(self) -> str:
        kept = (
            "encrypted to BACKUP_RECIPIENT"
            if self.encrypted
            else "not encrypted (no BACKUP_RECIPIENT): readable by its owner only"
        )
        return f"Backed up to {self.path} ({self.size_bytes / 1e6:,.1f} MB, {self.how}, {kept})."


def parse_recipients(raw: str | None) -> list[Any]:
    """BACKUP_RECIPIENT as age recipients: a comma list of `age1…` public keys (or SSH public
    keys, `ssh-ed25519 …`). Raises ValueError naming the one that is not a key."""
    recipients: list[Any] = []
    for text in (part.strip() for part in (raw or "").split(",")):
        if not text:
            continue
        try:
            if text.startswith("ssh-"):
                recipients.append(pyrage.ssh.Recipient.from_str(text))
            else:
                recipients.append(pyrage.x25519.Recipient.from_str(text))
        except pyrage.RecipientError:
            raise ValueError(f"{text[:12]}… is not an age public key (age1…)") from None
    return recipients


def backup(
    database_url: str,
    target: Path,
    *,
    overwrite: bool = False,
    recipients: Sequence[Any] = (),
) -> BackupResult:
    """Back up to `target`: encrypted to `recipients` (age) when given, else owner-only."""
    url = normalize_url(database_url)
    target = target.expanduser()
    if target.exists() and not overwrite:
        raise BackupFailed(f"{target} already exists; choose a new name or add --force.")
    if not target.parent.is_dir():
        raise BackupFailed(f"No such directory: {target.parent}")
    backend = url.get_backend_name()
    if backend == "sqlite":
        source = _sqlite_path(url)
        if recipients:
            return backup_sqlite_encrypted(source, target, recipients)
        return backup_sqlite(source, target)
    if backend == "postgresql":
        return backup_postgres(url, target, recipients)
    raise BackupFailed(
        f"Can't back up a {backend} database; pinbot supports SQLite and PostgreSQL."
    )


# -- SQLite -----------------------------------------------------------------------------------


def _sqlite_path(url: URL) -> Path:
    path = sqlite_file(url)
    if path is None:
        raise BackupFailed(
            "DATABASE_URL names no SQLite database file (in memory, or a file: URI): "
            "nothing to back up."
        )
    if not path.is_file():
        raise BackupFailed(f"No database file at {path} (check DATABASE_URL).")
    return path


def backup_sqlite(source: Path, target: Path) -> BackupResult:
    if target.exists() and target.resolve() == source.resolve():
        raise BackupFailed("The backup file can't be the database itself.")
    try:
        with _into_place(target) as partial:  # SQLite writes into it and keeps its mode
            _copy_sqlite(source, partial)
    except sqlite3.Error as error:
        raise BackupFailed(f"SQLite backup failed: {error}") from error
    return BackupResult(target, target.stat().st_size, "SQLite online backup")


@contextmanager
def _into_place(target: Path) -> Iterator[Path]:
    """A partial file beside `target`, created owner-only (0600 whatever the umask), renamed
    to `target` once the block completes, so a FILE that exists is always a whole backup;
    removed if the block fails."""
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        create_owner_only(partial)
        yield partial
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    _fsync_dir(target.parent)


def backup_sqlite_encrypted(source: Path, target: Path, recipients: Sequence[Any]) -> BackupResult:
    """The snapshot into memory, checked, then encrypted straight into the backup file."""
    if target.exists() and target.resolve() == source.resolve():
        raise BackupFailed("The backup file can't be the database itself.")
    src = sqlite3.connect(source, timeout=_SQLITE_TIMEOUT_SECONDS)
    try:
        copy = sqlite3.connect(":memory:")
        try:
            src.backup(copy)
            _require_intact(copy)
            image = copy.serialize()
        finally:
            copy.close()
    except sqlite3.Error as error:
        raise BackupFailed(f"SQLite backup failed: {error}") from error
    finally:
        src.close()
    with _into_place(target) as partial:
        _encrypt_into(partial, io.BytesIO(image), recipients)
    return BackupResult(target, target.stat().st_size, "SQLite online backup", encrypted=True)


def _require_intact(connection: sqlite3.Connection) -> None:
    verdict = connection.execute("PRAGMA quick_check").fetchone()[0]
    if verdict != "ok":
        raise BackupFailed(f"The copy failed its integrity check ({verdict}).")


def _encrypt_into(partial: Path, plain: IO[bytes], recipients: Sequence[Any]) -> None:
    """Stream `plain` through age encryption into `partial`, on disk before it is renamed."""
    try:
        with partial.open("r+b") as sealed:
            pyrage.encrypt_io(plain, sealed, list(recipients))
            sealed.flush()
            os.fsync(sealed.fileno())
    except pyrage.EncryptError as error:
        raise BackupFailed(f"Encrypting the backup failed: {error}") from error


def _copy_sqlite(source: Path, partial: Path) -> None:
    # No `with sqlite3.connect()`: that manages a transaction, it does not close.
    src = sqlite3.connect(source, timeout=_SQLITE_TIMEOUT_SECONDS)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # pages=-1: one step, one snapshot (stepwise restarts on writes)
            # The copy inherits WAL mode; a rollback journal makes it one self-contained file.
            dst.execute("PRAGMA journal_mode = DELETE")
            _require_intact(dst)
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


def backup_postgres(url: URL, target: Path, recipients: Sequence[Any] = ()) -> BackupResult:
    executable = shutil.which(PG_DUMP)
    if executable is None:
        raise BackupFailed(
            "pg_dump is not installed here, so no backup was made. Install the PostgreSQL "
            "client tools (the server's major version or newer, e.g. `apt install "
            "postgresql-client`) or run this where they are installed:\n  "
            + shown_command(url, target)
        )
    env = {**os.environ, **({"PGPASSWORD": str(url.password)} if url.password else {})}
    with _into_place(target) as partial:
        if recipients:
            _pg_dump_encrypted(url, executable, env, partial, recipients)
        else:
            # pg_dump rewrites the owner-only partial file; umask 077 in case it recreates it.
            _run_pg_dump(pg_dump_command(url, partial, executable), env)
    how = "pg_dump, custom format"
    return BackupResult(target, target.stat().st_size, how, encrypted=bool(recipients))


def _run_pg_dump(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False, umask=0o077
    )
    if done.returncode != 0:
        raise _pg_dump_failed(done.returncode, done.stderr)


def _pg_dump_failed(code: int, stderr: str) -> BackupFailed:
    said = (stderr.strip().splitlines() or ["no message"])[0]
    return BackupFailed(f"pg_dump failed (exit {code}): {said}")


def _pg_dump_encrypted(
    url: URL, executable: str, env: dict[str, str], partial: Path, recipients: Sequence[Any]
) -> None:
    """pg_dump to its standard output, streamed through the encryption into `partial`."""
    command = [arg for arg in pg_dump_command(url, partial, executable) if "--file=" not in arg]
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, umask=0o077
    ) as dump:
        assert dump.stdout is not None and dump.stderr is not None
        _encrypt_into(partial, dump.stdout, recipients)
        stderr = dump.stderr.read().decode(errors="replace")
        if dump.wait() != 0:  # a half dump, even encrypted, is no backup: not renamed
            raise _pg_dump_failed(dump.returncode, stderr)
