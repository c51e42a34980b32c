"""`pinbot db backup FILE` (issue 6, item 7): a backup taken while staff keep issuing PINs
opens, holds every batch committed before it started, and every batch in it is whole (its
PINs and its outgoing work, never half a transaction). SQLite through the online backup API;
PostgreSQL through pg_dump, restored with pg_restore into a new database."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.backup import BackupFailed, backup
from bot.db import Database, normalize_url
from bot.delivery.sealing import PinCipher
from bot.issuing.gateway import BuiltinGateway
from bot.issuing.issuance import issue_pins
from bot.issuing.requests import IssuePolicy, IssueRequest
from bot.secret import Secret
from models import IssueBatch, OutgoingWork, Pin, PinStatus, WorkKind
from tests.conftest import PG_SKIP_REASON, PG_URL
from tests.core.runtime.test_cli import pinbot
from tests.support.factories import make_family, make_guardian, make_patient
from tests.support.pg import scratch_database

STAFF = 4  # threads issuing at once while the backup runs
SURNAMES = ("Ashgrove", "Birchwood", "Cedarly", "Dunmore")
POLICY = IssuePolicy(
    now=datetime(2026, 6, 1, 15, tzinfo=UTC),
    today=date(2026, 6, 1),
    pin_ttl_days=90,
    minor_age_limit=18,
    pin_cipher=PinCipher(Secret.ephemeral()),
)


@dataclass
class Load:
    """Staff issuing PINs for their own families, over and over, until stopped."""

    database: Database
    families: list[tuple[int, int, tuple[int, int]]]  # family, guardian, two children
    committed: list[tuple[int, float]] = field(default_factory=list)  # batch id, when
    errors: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, index: int) -> None:
        family_id, guardian_id, children = self.families[index]
        gateway, n = BuiltinGateway(), 0
        try:
            while not self.stop.is_set():
                n += 1
                with self.database.transaction() as session:
                    result = issue_pins(
                        session,
                        IssueRequest(
                            family_id=family_id,
                            patient_ids=children,
                            recipient_guardian_id=guardian_id,
                            emailed_patient_id=None,
                            issued_by="U0STAFF01",
                            idempotency_key=f"load:{index}:{n}",
                            channel_id="C0FRONTDESK",
                            thread_ts=f"1700000000.{index:06d}",
                        ),
                        policy=POLICY,
                        gateway=gateway,
                    )
                self.committed.append((result.batch_id, time.monotonic()))
        except BaseException as error:
            self.errors.append(error)

    def committed_before(self, moment: float) -> set[int]:
        return {batch for batch, when in list(self.committed) if when < moment}


@pytest.fixture
def load(database: Database) -> Iterator[Load]:
    families = []
    with database.transaction() as session:
        for i in range(STAFF):
            family = make_family(session, f"BK-{i}")
            guardian = make_guardian(
                session, family, "Sage", SURNAMES[i], email=f"sage{i}@example.com"
            )
            kids = tuple(
                make_patient(session, family, name, dob, last=SURNAMES[i]).id or 0
                for name, dob in (("Rue", date(2018, 1, 1)), ("Tam", date(2021, 2, 2)))
            )
            families.append((family.id or 0, guardian.id or 0, kids))
    load = Load(database, families)  # type: ignore[arg-type]
    threads = [threading.Thread(target=load.run, args=(i,), daemon=True) for i in range(STAFF)]
    for thread in threads:
        thread.start()
    yield load
    load.stop.set()
    for thread in threads:
        thread.join(10)


def _wait_for_batches(load: Load, n: int) -> None:
    deadline = time.monotonic() + 20
    while len(load.committed) < n and time.monotonic() < deadline and not load.errors:
        time.sleep(0.02)
    assert not load.errors and len(load.committed) >= n


def assert_holds_whole_batches(restored: Database, expected: set[int]) -> set[int]:
    """Every expected batch is there, and every batch there is whole and consistent."""
    with restored.read_session() as session:
        batches = set(session.exec(select(IssueBatch.id)).all())
        pins = session.exec(select(Pin)).all()
        work = session.exec(select(OutgoingWork.batch_id, OutgoingWork.kind)).all()
    assert expected <= batches, f"missing batches {sorted(expected - batches)[:5]}"
    per_batch: dict[int, int] = {}
    for pin in pins:
        assert pin.batch_id in batches
        per_batch[pin.batch_id] = per_batch.get(pin.batch_id, 0) + 1
    assert all(per_batch.get(b) == 2 for b in batches)  # both children's PINs, or no batch
    active = [pin.patient_id for pin in pins if pin.status == PinStatus.ACTIVE]
    assert len(active) == len(set(active))  # one active PIN per child
    kinds = {(b, k) for b, k in work}
    assert all(
        (b, WorkKind.LETTERS_UPLOAD) in kinds and (b, WorkKind.WELCOME_EMAIL) in kinds
        for b in batches
    )
    return batches


# --------------------------------------------------------------------------- SQLite


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_backup_during_load_holds_every_committed_batch(
    load: Load, database_url: str, tmp_path: Path
) -> None:
    _wait_for_batches(load, 8)
    target = tmp_path / "backup.db"

    started = time.monotonic()
    run = pinbot(tmp_path, "db", "backup", str(target), DATABASE_URL=database_url)
    before = load.committed_before(started)
    _wait_for_batches(load, len(load.committed) + 4)  # the bot kept writing throughout

    assert run.code == 0, run
    assert run.said == [run.said[0]] and run.said[0].startswith(f"Backed up to {target} ("), run
    raw = sqlite3.connect(target)  # as it is on disk: one self-contained file
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        raw.close()
    restored = Database(f"sqlite:///{target}")
    try:
        held = assert_holds_whole_batches(restored, before)
    finally:
        restored.dispose()
    assert held < {batch for batch, _ in load.committed}  # later batches are not in it
    assert not list(tmp_path.glob(".backup.db.partial-*"))


def test_sqlite_backup_refusals(sqlite_template: Path, tmp_path: Path) -> None:
    nope = tmp_path / "nope.db"
    with pytest.raises(BackupFailed, match=re.escape(f"No database file at {nope}")):
        backup(f"sqlite:///{nope}", tmp_path / "b.db")
    assert not nope.exists()  # not created by looking
    with pytest.raises(BackupFailed, match="No such directory"):
        backup(f"sqlite:///{sqlite_template}", tmp_path / "no" / "b.db")

    existing = tmp_path / "exists.db"
    existing.write_bytes(b"keep me")
    with pytest.raises(BackupFailed, match="already exists; choose a new name or add --force"):
        backup(f"sqlite:///{sqlite_template}", existing)
    assert existing.read_bytes() == b"keep me"
    backup(f"sqlite:///{sqlite_template}", existing, overwrite=True)
    assert existing.read_bytes()[:16] == b"SQLite format 3\x00"
    with pytest.raises(BackupFailed, match="can't be the database itself"):
        backup(f"sqlite:///{existing}", existing, overwrite=True)


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def restore_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    with scratch_database(PG_URL, "pinbot_restore") as url:
        yield url


def _libpq(url: str) -> str:
    return normalize_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.mark.skipif(
    shutil.which("pg_dump") is None or shutil.which("pg_restore") is None,
    reason="pg_dump/pg_restore not installed (the PostgreSQL client tools)",
)
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgres_backup_during_load_restores_every_committed_batch(
    restore_url: str, load: Load, database_url: str, tmp_path: Path
) -> None:
    _wait_for_batches(load, 8)
    target = tmp_path / "pinbot.dump"

    started = time.monotonic()
    run = pinbot(tmp_path, "db", "backup", str(target), DATABASE_URL=database_url)
    before = load.committed_before(started)

    assert run.code == 0, run
    assert run.said[0].startswith(f"Backed up to {target} ("), run
    subprocess.run(
        ["pg_restore", "--no-owner", f"--dbname={_libpq(restore_url)}", str(target)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    restored = Database(restore_url)
    try:
        held = assert_holds_whole_batches(restored, before)
        with restored.read_session() as session:
            assert (
                session.exec(select(IssueBatch).where(col(IssueBatch.id).in_(held))).first()
                is not None
            )
    finally:
        restored.dispose()


def test_postgres_without_pg_dump_prints_the_command(tmp_path: Path) -> None:
    url = "postgresql://pinbot:SEKRITpw@db.example.org:5432/pinbot"
    target = tmp_path / "pinbot.dump"
    run = pinbot(
        tmp_path, "db", "backup", str(target), DATABASE_URL=url, PATH=str(tmp_path)
    )  # no pg_dump on this PATH

    assert run.code == 1, run
    assert run.said[0].startswith("pg_dump is not installed here, so no backup was made."), run
    assert run.said[1].strip() == (
        f"PGPASSWORD=<password> pg_dump --format=custom --no-owner --file={target} "
        "--dbname=postgresql://pinbot@db.example.org:5432/pinbot"
    )
    assert "SEKRIT" not in run.output
