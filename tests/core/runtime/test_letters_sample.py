"""`pinbot letters sample FILE.pdf`, run as a real process: a page of every letter kind in
every shipped language, with this practice's own settings, written owner-only."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from bot.documents.locale import available_languages
from tests.core.runtime.test_cli import pinbot

# Far from UTC: for most of the day its date is not UTC's, so a UTC date would show.
ZONE = "Pacific/Kiritimati"
SETTINGS = {
    "PORTAL_URL": "https://mychart.maple-street.example.org/MyChart/signup?practice=msp",
    "PORTAL_SIGNIN_URL": "https://mychart.maple-street.example.org/MyChart/Login?addchild=1",
    "PRACTICE_NAME": "Maple Street Pediatrics",
    "PRACTICE_PHONE": "(555) 010-0100",
    "PRACTICE_TIMEZONE": ZONE,
    "PIN_TTL_DAYS": "60",
}


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that lets everyone read new files: the sample must be 0600 all the same."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def _pages(path: Path) -> list[str]:
    reader = PdfReader(io.BytesIO(path.read_bytes()))
    return [" ".join(page.extract_text().split()).replace("/ ", "/") for page in reader.pages]


def test_a_page_of_every_kind_in_every_language_with_the_practices_settings(
    tmp_path: Path, open_umask: None
) -> None:
    run = pinbot(tmp_path, "letters", "sample", "sample.pdf", **SETTINGS)
    assert run.code == 0, run
    path = tmp_path / "sample.pdf"
    assert "sample.pdf" in run.stdout and "SAMPLE" in run.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    pages = _pages(path)
    languages = available_languages()
    assert len(pages) == 4 * len(languages)
    today = datetime.now(ZoneInfo(ZONE)).date()
    expires = (today + timedelta(days=60)).strftime("%m/%d/%Y")
    for index, page in enumerate(pages):
        language = languages[index // 4]
        assert page.startswith("SAMPLE, not a real PIN ·") and page.split(" · ")[2].startswith(
            language
        )
        assert "Maple Street Pediatrics" in page and "(555) 010-0100" in page
        if language == "en":
            assert f"Issued {today:%m/%d/%Y} · Expires {expires}" in page
    english = pages[:4]
    assert all(SETTINGS["PORTAL_URL"] in page for page in english[:3])
    assert "emailed to p•••@e•••.com" in english[0] and "emailed" not in english[1]
    assert "Creating your account now with Lucía Nguyễn's PIN" in english[2]
    assert f"Sign in at {SETTINGS['PORTAL_SIGNIN_URL']} with your existing account" in english[3]
    assert "Sign up" not in english[3]
    assert all("Lucía Nguyễn" in page or "Łukasz" in page or "Zoë" in page or "Mateo" in page
               for page in pages)  # fmt: skip


def test_an_existing_file_is_kept_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "sample.pdf"
    path.write_bytes(b"keep me")
    path.chmod(0o644)
    run = pinbot(tmp_path, "letters", "sample", "sample.pdf", **SETTINGS)
    assert run.code == 1 and "--force" in run.said[-1]
    assert path.read_bytes() == b"keep me"

    run = pinbot(tmp_path, "letters", "sample", "sample.pdf", "--force", **SETTINGS)
    assert run.code == 0, run
    assert path.read_bytes().startswith(b"%PDF-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # no longer readable by others


def test_without_the_practices_settings_it_says_which(tmp_path: Path) -> None:
    run = pinbot(tmp_path, "letters", "sample", "sample.pdf", PORTAL_URL=SETTINGS["PORTAL_URL"])
    assert run.code == 1
    assert run.said == [
        "Set PRACTICE_NAME, PRACTICE_PHONE first: the sample prints this practice's own."
    ]
    assert not (tmp_path / "sample.pdf").exists()
