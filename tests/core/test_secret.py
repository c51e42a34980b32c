"""The one secret (SPEC §12): created owner-only whatever the umask, refused when others can
read it, and each purpose gets its own key."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.secret import KeyPurpose, Secret, SecretError, load_secret


def test_first_start_creates_an_owner_only_key_file_under_a_loose_umask(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "pinbot.key"
    old = os.umask(0o022)
    try:
        secret = load_secret(path, None)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret.source == str(path)
    again = load_secret(path, None)
    assert again.derive(KeyPurpose.PIN_LOOKUP) == secret.derive(KeyPurpose.PIN_LOOKUP)


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pinbot.key"
    load_secret(path, None)
    path.chmod(0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        load_secret(path, None)


def test_a_missing_file_is_not_created_when_asked_not_to(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="does not exist"):
        load_secret(tmp_path / "pinbot.key", None, create=False)
    assert not (tmp_path / "pinbot.key").exists()


def test_the_override_wins_and_must_be_long(tmp_path: Path) -> None:
    secret = load_secret(tmp_path / "pinbot.key", "x" * 40)
    assert secret.source == "PINBOT_KEY"
    assert not (tmp_path / "pinbot.key").exists()
    with pytest.raises(SecretError, match="at least"):
        load_secret(tmp_path / "pinbot.key", "short")


def test_each_purpose_derives_its_own_key() -> None:
    secret = Secret.ephemeral()
    keys = {secret.derive(purpose) for purpose in KeyPurpose}
    assert len(keys) == len(KeyPurpose)
    assert all(len(key) == 32 for key in keys)


def test_the_key_file_defaults_beside_a_sqlite_database(tmp_path: Path) -> None:
    settings = load_settings({"DATABASE_URL": f"sqlite:///{tmp_path}/data/pinbot.db"})
    assert settings.key_file == tmp_path / "data" / "pinbot.key"
    settings = load_settings({"DATABASE_URL": "postgresql://u@h/db"})
    assert settings.key_file == Path("pinbot.key")
    # A SQLite URI is SQLite's to read (bot.db.sqlite_file): no folder is guessed from it.
    settings = load_settings({"DATABASE_URL": "sqlite:///file:/srv/pinbot.db?uri=true"})
    assert settings.key_file == Path("pinbot.key")
    settings = load_settings({"PINBOT_KEY_FILE": str(tmp_path / "k")})
    assert settings.key_file == tmp_path / "k"


def test_processes_starting_at_once_share_one_key(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "pinbot.key"
    with ThreadPoolExecutor(8) as pool:
        secrets_ = list(pool.map(lambda _: load_secret(path, None), range(8)))
    assert len({s.derive(KeyPurpose.PIN_LOOKUP) for s in secrets_}) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["pinbot.key"]
