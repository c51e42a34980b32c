"""Backups kept as the records in them deserve (SPEC §12): encrypted to BACKUP_RECIPIENT (age)
so the host that writes them cannot read them, else owner-only; and restored end to end, as
README "Backups and restore" says: decrypt with the identity kept elsewhere, then restore."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pyrage
import pytest
from sqlmodel import select

from bot.backup import BackupFailed, backup, parse_recipients
from bot.db import Database, normalize_url
from models import Family
from tests.conftest import PG_SKIP_REASON, PG_URL
from tests.core.runtime.test_cli import pinbot
from tests.support.factories import make_family
from tests.support.pg import scratch_database

ACCOUNTS = {"BK-1001", "BK-1002"}


@pytest.fixture
def identity() -> pyrage.x25519.Identity:
    """The restore key: in real life kept off the host that writes backups."""
    return pyrage.x25519.Identity.generate()


def _fill(database_url: str) -> None:
    database = Database(database_url)
    try:
        with database.transaction() as session:
            for account in sorted(ACCOUNTS):
                make_family(session, account)
    finally:
        database.dispose()


def _accounts(database_url: str) -> set[str]:
    database = Database(database_url)
    try:
        with database.read_session() as session:
            return set(session.exec(select(Family.account_number)).all())
    finally:
        database.dispose()


def _decrypt(encrypted: Path, identity: pyrage.x25519.Identity, plain: Path) -> None:
    """What `age --decrypt -i backup-key.txt FILE > plain` does."""
    plain.write_bytes(pyrage.decrypt(encrypted.read_bytes(), [identity]))


def _libpq(url: str) -> str:
    return normalize_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def test_encrypted_backup_restores_end_to_end(
    database_url: str, identity: pyrage.x25519.Identity, tmp_path: Path, loose_umask
) -> None:
    if database_url.startswith("postgresql") and not shutil.which("pg_restore"):
        pytest.skip("pg_dump/pg_restore not installed (the PostgreSQL client tools)")
    _fill(database_url)
    target = tmp_path / "pinbot-backup.age"
    run = pinbot(
        tmp_path,
        "db",
        "backup",
        str(target),
        DATABASE_URL=database_url,
        BACKUP_RECIPIENT=str(identity.to_public()),
    )
    assert run.code == 0, run
    assert "encrypted to BACKUP_RECIPIENT" in run.said[0], run
    sealed = target.read_bytes()
    assert sealed.startswith(b"age-encryption.org/v1\n")
    assert all(account.encode() not in sealed for account in ACCOUNTS)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".pinbot-backup.age.partial-*"))
    with pytest.raises(pyrage.DecryptError):  # another key opens nothing
        pyrage.decrypt(sealed, [pyrage.x25519.Identity.generate()])

    plain = tmp_path / "restored.db"
    _decrypt(target, identity, plain)
    if database_url.startswith("sqlite"):
        assert _accounts(f"sqlite:///{plain}") == ACCOUNTS
        return
    assert PG_URL
    with scratch_database(PG_URL, "pinbot_restore") as restore_url:
        subprocess.run(
            ["pg_restore", "--no-owner", f"--dbname={_libpq(restore_url)}", str(plain)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        assert _accounts(restore_url) == ACCOUNTS


def test_unencrypted_backup_is_owner_only_whatever_the_umask(
    database_url: str, tmp_path: Path, loose_umask
) -> None:
    if database_url.startswith("postgresql") and not shutil.which("pg_dump"):
        pytest.skip("pg_dump not installed (the PostgreSQL client tools)")
    _fill(database_url)
    target = tmp_path / "plain-backup"
    result = backup(database_url, target)
    assert not result.encrypted and "readable by its owner only" in result.summary()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_backup_recipient_is_checked_and_reported(tmp_path: Path, identity) -> None:
    assert len(parse_recipients(f"{identity.to_public()}, {identity.to_public()}")) == 2
    with pytest.raises(ValueError, match="not an age public key"):
        parse_recipients("age1notakey")
    bad = pinbot(tmp_path, "db", "backup", str(tmp_path / "b"), BACKUP_RECIPIENT="age1nope")
    assert bad.code != 0 and "BACKUP_RECIPIENT must be" in bad.output, bad


def test_a_missing_pg_dump_leaves_no_file_even_when_encrypting(
    tmp_path: Path, identity, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BackupFailed, match="pg_dump is not installed"):
        backup(PG_URL, tmp_path / "x.age", recipients=parse_recipients(str(identity.to_public())))
    assert not (tmp_path / "x.age").exists()
