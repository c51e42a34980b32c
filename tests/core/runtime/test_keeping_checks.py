"""`pinbot check` on what pinbot keeps (SPEC §12): where the secret is, a key file others can
read refused, a database file or directory others can read warned about, backups said."""

from __future__ import annotations

import os
from pathlib import Path

import pyrage

from bot.config import load_settings
from bot.db import Database
from bot.runtime.keeping import check_backups, check_database_files, check_secret
from bot.secret import load_secret


def _settings(tmp_path: Path, **env: str):  # type: ignore[no-untyped-def]
    return load_settings({"DATABASE_URL": f"sqlite:///{tmp_path}/data/pinbot.db", **env})


def test_the_secret_line_says_where_and_refuses_a_key_file_others_can_read(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    first = check_secret(settings)
    assert first.ok and first.warning and "does not exist yet" in first.detail
    load_secret(settings.key_file, None)  # as `pinbot run` creates it
    ok = check_secret(settings)
    assert ok.ok and not ok.warning and str(settings.key_file) in ok.detail
    assert "back it up apart from the database" in ok.detail
    settings.key_file.chmod(0o644)
    refused = check_secret(settings)
    assert not refused.ok and "chmod 600" in refused.detail
    from_env = check_secret(_settings(tmp_path, PINBOT_KEY="k" * 40))
    assert from_env.ok and "PINBOT_KEY in the environment" in from_env.detail


def test_a_database_others_can_read_is_warned_about(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o700)
    os.chmod(folder, 0o700)
    settings = _settings(tmp_path)
    Database(settings.database_url).dispose()
    (line,) = check_database_files(settings)
    assert line.ok and not line.warning and "owner only" in line.detail

    (folder / "pinbot.db").chmod(0o644)
    os.chmod(folder, 0o755)
    lines = check_database_files(settings)
    assert all(line.ok and line.warning for line in lines)
    said = " | ".join(line.detail for line in lines)
    assert f"chmod 600 {folder / 'pinbot.db'}" in said and "chmod 700" in said


def test_the_backups_line_says_whether_they_are_encrypted(tmp_path: Path) -> None:
    plain = check_backups(_settings(tmp_path))
    assert plain.warning and "not set" in plain.detail and "0600" in plain.detail
    key = str(pyrage.x25519.Identity.generate().to_public())
    sealed = check_backups(_settings(tmp_path, BACKUP_RECIPIENT=key))
    assert sealed.ok and not sealed.warning and "cannot read the backups" in sealed.detail
