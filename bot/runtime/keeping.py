"""`pinbot check`'s lines about what pinbot keeps and how (SPEC §12): where the secret is and
whether others can read it, the SQLite database's file and directory modes, and whether
backups are encrypted."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy.exc import ArgumentError

from bot.config import Settings
from bot.db import SQLITE_COMPANIONS, normalize_url, sqlite_file
from bot.runtime.checks import CheckResult
from bot.secret import SecretError, load_secret

BACKUP_HELP = "see README, Backups and restore"


def check_keeping(settings: Settings) -> list[CheckResult]:
    return [check_secret(settings), *check_database_files(settings), check_backups(settings)]


def check_secret(settings: Settings) -> CheckResult:
    if settings.key_override:
        where = "PINBOT_KEY in the environment (no key file): keep it where the environment is kept"
    elif not settings.key_file.exists():
        return CheckResult(
            "secret",
            True,
            f"{settings.key_file} does not exist yet: `pinbot run` creates it (0600). "
            "Back it up apart from the database.",
            warning=True,
        )
    else:
        where = f"{settings.key_file}, readable by its owner only"
    try:
        load_secret(settings.key_file, settings.key_override, create=False)
    except SecretError as error:
        return CheckResult("secret", False, str(error))
    return CheckResult(
        "secret",
        True,
        f"{where}; back it up apart from the database (lost: active PINs must be issued again)",
    )


def check_database_files(settings: Settings) -> list[CheckResult]:
    """SQLite only: PostgreSQL's files are the server's to keep."""
    try:
        database = sqlite_file(normalize_url(settings.database_url))
    except ArgumentError:  # an unparseable URL is the database check's to report
        return []
    if database is None or not database.exists():
        return []
    exposed = [
        path
        for path in (database, *(Path(f"{database}{suffix}") for suffix in SQLITE_COMPANIONS))
        if path.exists() and readable_by_others(path)
    ]
    lines = [
        CheckResult(
            "files",
            True,
            f"{path} can be read by other users: run `chmod 600 {path}` "
            "(pinbot run also does this)",
            warning=True,
        )
        for path in exposed
    ]
    folder = database.resolve().parent
    if readable_by_others(folder):
        lines.append(
            CheckResult(
                "files",
                True,
                f"the database's directory {folder} can be listed by other users: "
                f"`chmod 700 {folder}` if only pinbot uses it",
                warning=True,
            )
        )
    return lines or [CheckResult("files", True, f"{database} is readable by its owner only")]


def readable_by_others(path: Path) -> bool:
    """Whether users other than the owner can read `path` (a directory: list or enter it)."""
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        return bool(mode & (stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH))
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))


def check_backups(settings: Settings) -> CheckResult:
    if settings.backup_recipient:
        count = len([r for r in settings.backup_recipient.split(",") if r.strip()])
        return CheckResult(
            "backups",
            True,
            f"`pinbot db backup` encrypts to {count} age recipient{'s' if count > 1 else ''} "
            "(BACKUP_RECIPIENT): this host cannot read the backups it writes",
        )
    return CheckResult(
        "backups",
        True,
        "BACKUP_RECIPIENT is not set: `pinbot db backup` writes unencrypted files, readable "
        f"by their owner only (0600); set an age public key to encrypt them ({BACKUP_HELP})",
        warning=True,
    )
