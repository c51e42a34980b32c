"""The check a reviewer can repeat (SPEC §12): issue PINs for a family the way Slack does while
the SMTP server is down, so a welcome email waits with its PIN; then search every file pinbot
wrote — the database and its -wal/-shm (SQLite), a plain and an encrypted backup (on
PostgreSQL the dump, read back as SQL), and the log — for each PIN printed on the letters,
with and without its dash, in any case, and find it nowhere. Again once the email went out.

    .venv/bin/python -m pytest tests/flows/test_pin_nowhere.py
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pyrage
import pytest
from sqlalchemy.engine import make_url

from bot.backup import backup, parse_recipients
from models import utcnow
from tests.flows.test_issue_pins import PIN_PATTERN, _open_card_and_dialog, _pdf_pages, _submit
from tests.support.factories import make_family, make_guardian, make_patient
from tests.support.fake_slack import FakeSlack
from tests.support.logs import Log
from tests.support.smtp_server import SmtpServer, free_port
from tests.support.stack import Stack, build_stack


@pytest.fixture
def smtp_down_stack(
    database_url: str, fake_slack: FakeSlack, smtp_server: SmtpServer, pinbot_log: Log
) -> Iterator[Stack]:
    yield from build_stack(database_url, fake_slack, smtp_server, SMTP_PORT=str(free_port()))


def _family(stack: Stack) -> dict[str, int]:
    with stack.database.transaction() as session:
        family = make_family(session, "QF-3001")
        mother = make_guardian(
            session, family, "Wren", "Quillfeather", email="wren.quillfeather@example.com"
        )
        ava = make_patient(session, family, "Ava", date(2019, 3, 2), last="Quillfeather")
        ben = make_patient(session, family, "Ben", date(2021, 7, 14), last="Quillfeather")
    return {
        "family": family.id or 0,
        "mother": mother.id or 0,
        "ava": ava.id or 0,
        "ben": ben.id or 0,
    }


def forms(pin: str) -> list[bytes]:
    """The PIN as it could be written: with and without its dash (compared case-blind)."""
    return [pin.lower().encode(), pin.replace("-", "").lower().encode()]


def found_in(data: bytes, pins: list[str]) -> list[str]:
    folded = data.lower()
    return [pin for pin in pins if any(form in folded for form in forms(pin))]


def _files_pinbot_wrote(stack: Stack, folder: Path) -> dict[str, bytes]:
    """Every file under the test's folder (the SQLite database, its -wal and -shm, backups),
    and for PostgreSQL every dump read back as the SQL it restores."""
    files = {str(path): path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    if not stack.database.is_sqlite:
        for path in folder.glob("*.dump"):
            files[f"{path} as SQL"] = subprocess.run(
                ["pg_restore", "--file=-", str(path)], check=True, capture_output=True
            ).stdout
    return files


def _back_up(stack: Stack, folder: Path, name: str, identity: pyrage.x25519.Identity) -> None:
    suffix = ".db" if stack.database.is_sqlite else ".dump"
    url = stack.settings.database_url
    backup(url, folder / f"{name}{suffix}")
    encrypted = folder / f"{name}-encrypted{suffix}.age"
    backup(url, encrypted, recipients=parse_recipients(str(identity.to_public())))
    # Decrypted as a restore would, to search what the encrypted backup really holds.
    (folder / f"{name}-decrypted{suffix}").write_bytes(
        pyrage.decrypt(encrypted.read_bytes(), [identity])
    )


def _nowhere(stack: Stack, folder: Path, pins: list[str], log: Log) -> None:
    files = _files_pinbot_wrote(stack, folder)
    if stack.database.is_sqlite:
        database = Path(make_url(stack.settings.database_url).database or "")
        assert str(database) in files and f"{database}-wal" in files, sorted(files)
    files["the log"] = log.said().encode()
    assert len(files) >= 4, sorted(files)
    hits = {name: found for name, data in files.items() if (found := found_in(data, pins))}
    assert hits == {}, f"PINs found in {sorted(hits)}"


def test_the_pin_on_the_letter_is_nowhere_pinbot_wrote(
    smtp_down_stack: Stack, database_url: str, tmp_path: Path, pinbot_log: Log
) -> None:
    stack = smtp_down_stack
    if not stack.database.is_sqlite and not shutil.which("pg_restore"):
        pytest.skip("pg_dump/pg_restore not installed (the PostgreSQL client tools)")
    folder = tmp_path if stack.database.is_sqlite else tmp_path / "backups"
    folder.mkdir(exist_ok=True)
    identity = pyrage.x25519.Identity.generate()
    family = _family(stack)

    view = _open_card_and_dialog(stack, family)
    _submit(stack, view, [family["ava"], family["ben"]], str(family["mother"]))
    stack.deliver()  # the letters go up; SMTP refuses, so the email waits with its PIN
    (pdf,) = stack.fake_slack.uploaded_files()
    pins = sorted({pin for page in _pdf_pages(pdf.data) for pin in PIN_PATTERN.findall(page)})
    assert len(pins) == 2, pins  # one per child, read from the letter as a parent would
    assert stack.smtp.received == []

    _back_up(stack, folder, "while-the-email-waits", identity)
    _nowhere(stack, folder, pins, pinbot_log)

    # SMTP is back: the email goes out with the PIN, and the PIN is still nowhere else.
    stack.services.outbox.settings = replace(
        stack.settings, smtp=replace(stack.settings.smtp, port=stack.smtp.port)
    )
    later = utcnow() + timedelta(hours=1)
    stack.services.outbox.clock = lambda: later
    stack.deliver()
    (email,) = [r.message for r in stack.smtp.received]
    body = email.get_body(("plain",))
    assert body is not None
    assert found_in(body.get_content().encode(), pins), "the search must find a PIN where it is"
    _back_up(stack, folder, "after-delivery", identity)
    _nowhere(stack, folder, pins, pinbot_log)
