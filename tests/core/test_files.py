"""Files pinbot writes are its owner's only (SPEC §12), whatever the umask, and an erased PIN
leaves no bytes behind in the SQLite database or its -wal."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

from sqlalchemy import text

from bot.db import Database, upgrade
from bot.delivery import outbox
from bot.delivery.sealing import PinCipher, pins_in
from bot.secret import Secret
from models import WorkKind


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_and_its_wal_and_shm_are_owner_only(tmp_path: Path, loose_umask) -> None:
    path = tmp_path / "pinbot.db"
    database = Database(f"sqlite:///{path}")
    try:
        upgrade(database)
        with database.transaction() as session:
            session.execute(text("CREATE TABLE probe (x INTEGER)"))
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(p.exists() for p in files)
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        database.dispose()


def test_a_database_an_older_version_left_readable_is_made_owner_only(
    tmp_path: Path, loose_umask
) -> None:
    path = tmp_path / "pinbot.db"
    database = Database(f"sqlite:///{path}")
    upgrade(database)
    database.dispose()
    path.chmod(0o644)
    Path(f"{path}-wal").write_bytes(b"")  # a leftover -wal from the older version
    Path(f"{path}-wal").chmod(0o644)
    database = Database(f"sqlite:///{path}")
    try:
        assert mode(path) == 0o600 and mode(Path(f"{path}-wal")) == 0o600
    finally:
        database.dispose()


def _bytes_of(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def test_an_erased_pin_does_not_linger_in_the_database_or_its_wal(tmp_path: Path) -> None:
    path = tmp_path / "pinbot.db"
    database = Database(f"sqlite:///{path}")
    cipher = PinCipher(Secret.ephemeral())
    pin = "MK7Q-R2VD"
    try:
        upgrade(database)
        with database.transaction() as session:
            work = outbox.enqueue(
                session,
                kind=WorkKind.WELCOME_EMAIL,
                dedupe_key="welcome:wal-probe",
                payload={"to_address": "a@example.com", "pin": pin},
                pin_cipher=cipher,
            )
            session.flush()
            token = pins_in(json.loads(work.payload))[0]
        assert token.encode() in _bytes_of(path)  # the ciphertext is on disk, in the -wal
        assert pin.encode() not in _bytes_of(path) and b"MK7QR2VD" not in _bytes_of(path)

        with database.transaction() as session:
            outbox.cancel(session, dedupe_key="welcome:wal-probe", reason="erased")
        checkpoint = sqlite3.connect(path, isolation_level=None)
        try:  # what SQLite does on its own every 1000 pages
            assert checkpoint.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[0] == 0
        finally:
            checkpoint.close()
        with database.transaction() as session:  # the next write restarts the -wal
            outbox.post_in_thread(
                session, dedupe_key="after", channel_id="C0X", thread_ts=None, text="later"
            )
        assert token.encode() not in _bytes_of(path)
        assert token.split(":")[-1][:24].encode() not in _bytes_of(path)
    finally:
        database.dispose()
