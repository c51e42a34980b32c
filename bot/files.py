"""Files only their owner can read (SPEC §12): the SQLite database and its -wal/-shm, backups
and the key file are 0600 whatever the umask, because they hold children's records.

SQLite creates -wal and -shm with the database file's own mode, so creating the database
file 0600 before SQLite first opens it is what keeps all three owner-only.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from bot.secret import OWNER_ONLY, others_can_read

log = logging.getLogger(__name__)

SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def create_owner_only(path: Path) -> None:
    """Create `path` empty and 0600 if it does not exist yet (an empty file is an empty
    SQLite database); an existing file is left as it is."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
    except FileExistsError:
        return
    try:
        os.fchmod(descriptor, OWNER_ONLY)  # the umask can only remove bits; make it exact
    finally:
        os.close(descriptor)


def restrict_to_owner(path: Path) -> bool:
    """chmod 600 a file of ours that others can read; True when it had to be tightened."""
    try:
        if not others_can_read(path) or path.stat().st_uid != os.getuid():
            return False
        path.chmod(OWNER_ONLY)
    except FileNotFoundError:
        return False
    return True


def secure_sqlite_files(database: Path) -> None:
    """Before SQLite opens `database`: create it 0600, and tighten a database (and its
    -wal/-shm) written by an older pinbot under the usual umask (-rw-r--r--)."""
    if not database.parent.is_dir():
        return  # SQLite says "unable to open database file" in its own words
    create_owner_only(database)
    for path in (database, *(database.with_name(database.name + s) for s in SQLITE_COMPANIONS)):
        if restrict_to_owner(path):
            log.warning("made a database file readable by its owner only", extra={"path": path})


def readable_by_others(path: Path) -> bool:
    """For `pinbot check`: whether users other than the owner can read `path` (a directory
    counts when others can list or enter it)."""
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        return bool(mode & (stat.S_IROTH | stat.S_IXOTH | stat.S_IRGRP | stat.S_IXGRP))
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))
