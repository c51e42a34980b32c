"""Locale files as a practice adds them (SPEC §9): a broken one is left out rather than
breaking every letter, and `pinbot check` says what is wrong or printed in English."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader

from bot.documents import locale
from bot.documents.letters import Letter, LetterCase, Practice, render_letters
from bot.runtime.checks import check_locales

PRACTICE = Practice("Sunny Pediatrics", "(555) 010-1234", "https://portal.example.com/signup")
LETTER = Letter("Ava Lee", date(2018, 3, 4), "ABCD2345", date(2025, 3, 1), None,
                LetterCase.FIRST_CHILD, None)  # fmt: skip


@pytest.fixture
def locale_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for shipped in locale.LOCALE_DIR.glob("*.toml"):
        (tmp_path / shipped.name).write_bytes(shipped.read_bytes())
    monkeypatch.setattr(locale, "LOCALE_DIR", tmp_path)
    return tmp_path


def test_the_shipped_files_check_clean() -> None:
    assert locale.locale_problems() == ([], [])
    (result,) = check_locales()
    assert (result.name, result.ok, result.detail) == ("languages", True, "letters in en, es")
    (result,) = check_locales("fr")
    assert result.ok and result.detail == (
        "letters in en, es; DEFAULT_LANGUAGE=fr has no locale file: English is used"
    )


def test_a_malformed_file_is_not_offered_and_breaks_no_other_letter(locale_dir: Path) -> None:
    (locale_dir / "fr.toml").write_text('[letter]\nportal_label = "Inscrivez-vous\n')
    assert locale.available_languages() == ("en", "es")
    assert ("fr",) not in locale.letter_choices()
    with pytest.raises(locale.LocaleError, match=r"fr\.toml is not valid TOML"):
        locale.texts("fr")
    (page,) = PdfReader(io.BytesIO(render_letters(PRACTICE, [LETTER]))).pages
    assert "ATENCIÓN: si habla español" in page.extract_text()  # English letters still print
    (result,) = check_locales()
    assert not result.ok and "fr.toml is not valid TOML" in result.detail


def test_check_names_the_keys_a_translation_prints_in_english(locale_dir: Path) -> None:
    (locale_dir / "fr.toml").write_text(
        '[letter]\nportal_label = "Inscrivez-vous au portail patient :"\n'
        'pin_label = "Code {nope}"\n',
        encoding="utf-8",
    )
    (result,) = check_locales()
    assert result.ok and result.detail.startswith("letters in en, es, fr; fr.toml: ")
    assert "letter.pin_label" in result.detail and "email.subject" in result.detail
    assert "letter.portal_label" not in result.detail
