"""PIN letters read back with pypdf, and the locale files behind their words."""

from __future__ import annotations

import ast
import io
import json
import re
import string
import time
from datetime import date
from pathlib import Path

import pytest
from pypdf import PageObject, PdfReader
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.lib.pagesizes import LETTER
from reportlab.pdfbase.pdfmetrics import stringWidth

import bot
from bot.documents import locale
from bot.documents.letters import (
    MARGIN,
    Letter,
    LetterCase,
    Practice,
    format_pin,
    printable,
    render_letters,
)
from bot.documents.locale import LocaleError, texts

PRACTICE = Practice("Sunny Pediatrics", "(555) 010-1234", "https://portal.example.com/signup")
ISSUED = date(2025, 3, 1)
FIRST = Letter(
    "Ava Marie Johnson",
    date(2018, 3, 4),
    "ABCD2345",
    ISSUED,
    date(2025, 5, 30),
    LetterCase.FIRST_CHILD,
    "jane.doe@example.com",
)
SIBLING = Letter(
    "Ben Johnson",
    date(2020, 11, 22),
    "WXYZ6789",
    ISSUED,
    date(2025, 5, 30),
    LetterCase.SIBLING,
    None,
    first_child_name="Ava Marie Johnson",
)
HAS_ACCOUNT = Letter(
    "Cara Lee", date(2023, 1, 9), "MNPQ4567", ISSUED, None, LetterCase.HAS_ACCOUNT, None
)
FAMILY = [FIRST, SIBLING, HAS_ACCOUNT]


def read(pdf: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(pdf))


def page_texts(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in read(pdf).pages]


def flat(text: str) -> str:
    """Text with line breaks undone, so wrapped sentences can be searched."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def family_pdf() -> bytes:
    return render_letters(PRACTICE, FAMILY)


def test_one_us_letter_page_per_child(family_pdf: bytes) -> None:
    assert family_pdf.startswith(b"%PDF-")
    pages = read(family_pdf).pages
    assert len(pages) == 3
    for page in pages:
        assert (float(page.mediabox.width), float(page.mediabox.height)) == pytest.approx(LETTER)


def test_portal_url_is_at_the_top_of_every_page(family_pdf: bytes) -> None:
    for text in page_texts(family_pdf):
        top = text.splitlines()[:3]
        assert PRACTICE.portal_url in top
        assert PRACTICE.name in text and PRACTICE.phone in text


def test_each_page_names_its_own_child_dob_and_pin(family_pdf: bytes) -> None:
    for letter, text in zip(FAMILY, page_texts(family_pdf), strict=True):
        assert letter.child_full_name in text
        assert letter.child_dob.strftime("%m/%d/%Y") in text
        assert format_pin(letter.pin) in text
        others = [other for other in FAMILY if other is not letter]
        assert not any(format_pin(other.pin) in text for other in others)


def test_issue_and_expiry_dates(family_pdf: bytes) -> None:
    first, _, has_account = page_texts(family_pdf)
    assert "Issued 03/01/2025" in first and "Expires 05/30/2025" in first
    assert "Does not expire" in has_account and "Expires" not in has_account


def test_steps_follow_each_page_case(family_pdf: bytes) -> None:
    first, sibling, has_account = map(flat, page_texts(family_pdf))
    assert "create a new account" in first
    assert "I'd like to add another child" in first
    assert "My Account > Add Child/Dependent" not in first

    assert "Creating your account now with Ava Marie Johnson's PIN" in sibling
    assert "I'd like to add another child" in sibling
    assert "My Account > Add Child/Dependent" in sibling

    assert "Sign in at https://portal.example.com/signup with your existing account" in has_account
    assert "My Account > Add Child/Dependent" in has_account
    assert "I'd like to add another child" not in has_account


def test_sibling_without_first_child_name_still_reads() -> None:
    letter = Letter(
        "Dan Johnson", date(2021, 1, 1), "ABCD2345", ISSUED, None, LetterCase.SIBLING, None
    )
    (text,) = page_texts(render_letters(PRACTICE, [letter]))
    assert "Creating your account now with your other child's PIN" in flat(text)


def test_emailed_note_only_on_the_emailed_childs_page(family_pdf: bytes) -> None:
    first, sibling, has_account = page_texts(family_pdf)
    assert "This PIN was also emailed to j•••@e•••.com." in flat(first)
    # The address arrives unmasked here; the letter still prints only the masked form.
    assert "jane.doe@example.com" not in first
    assert "emailed" not in sibling and "emailed" not in has_account


def test_markup_in_names_prints_literally() -> None:
    letter = Letter(
        "<b>Bobby</b> & <i>Tables</i>",
        date(2020, 1, 2),
        "ABCD2345",
        ISSUED,
        None,
        LetterCase.SIBLING,
        None,
        first_child_name="<font size=40>Ava</font>",
    )
    (text,) = page_texts(render_letters(PRACTICE, [letter]))
    assert "<b>Bobby</b> & <i>Tables</i>" in text
    assert "Creating your account now with <font size=40>Ava</font>'s PIN" in flat(text)
    # Also inside the plain-line steps, where markup would otherwise be interpreted.
    assert "<b>Bobby</b> & <i>Tables</i>'s date of birth" in flat(text)


def test_metadata_has_a_title_and_never_a_name_or_pin(family_pdf: bytes) -> None:
    metadata = read(family_pdf).metadata
    assert metadata is not None and metadata.title == "PIN letters"
    values = " ".join(str(value) for value in metadata.values())
    for letter in FAMILY:
        for secret in (letter.pin, format_pin(letter.pin), *letter.child_full_name.split()):
            assert secret not in values


def _qr_modules(form_stream: bytes) -> set[tuple[int, int]]:
    """The dark modules drawn as filled rectangles, on a grid of the smallest module size."""
    rects = [
        tuple(map(float, m.groups()))
        for m in re.finditer(rb"([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) re", form_stream)
    ]
    box = min(h for _, _, _, h in rects)
    top = max(y for _, y, _, _ in rects)
    dark = set()
    for x, y, w, _ in rects:
        row, column = round((top - y) / box), round(x / box)
        dark.update((row, column + i) for i in range(round(w / box)))
    return dark


def test_every_page_shows_a_qr_code_of_the_portal_url(family_pdf: bytes) -> None:
    for page in read(family_pdf).pages:
        forms = page["/Resources"]["/XObject"]
        (form,) = [xobject.get_object() for xobject in forms.values()]
        content = page.get_contents()
        assert content is not None and b" Do" in content.get_data()
        stream = form.get_data()
        assert stream.count(b" re") > 50  # drawing operations, not an image or text
    # The rectangles are exactly the modules of a QR code for the portal URL.
    expected = QrCodeWidget(PRACTICE.portal_url, barLevel="M").qr
    expected.make()
    want = {(r, c) for r, row in enumerate(expected.modules) for c, on in enumerate(row) if on}
    got = _qr_modules(stream)
    shift = (min(r for r, _ in got), min(c for _, c in got))
    got = {(r - shift[0], c - shift[1]) for r, c in got}
    want_shift = (min(r for r, _ in want), min(c for _, c in want))
    assert got == {(r - want_shift[0], c - want_shift[1]) for r, c in want}


def _right_edges(page: PageObject) -> list[float]:
    """Where each piece of text ends on the page, measured with the font's own widths."""
    edges: list[float] = []

    def visit(text: str, cm: list[float], tm: list[float], font: dict | None, size: float) -> None:
        if text.strip() and font:
            # An embedded subset is named "ABCDEF+DejaVuSans"; reportlab knows "DejaVuSans".
            face = str(font["/BaseFont"])[1:].split("+")[-1]
            width = stringWidth(text.strip("\n"), face, size)
            edges.append(cm[4] + tm[4] + width)

    page.extract_text(visitor_text=visit)
    return edges


def test_long_names_wrap_or_shrink_inside_the_page() -> None:
    name = "Maximiliana-Alexandrina " + "Wolfeschlegelsteinhausenbergerdorff" * 4
    letter = Letter(
        name,
        date(2020, 1, 2),
        "ABCD2345",
        ISSUED,
        None,
        LetterCase.SIBLING,
        "someone@example.com",
        first_child_name=name,
    )
    pdf = render_letters(PRACTICE, [letter, FIRST])
    first_page, _ = read(pdf).pages
    assert len(read(pdf).pages) == 2
    text = "".join(first_page.extract_text().split())
    assert name.replace(" ", "") in text
    assert format_pin(letter.pin) in first_page.extract_text()
    edges = _right_edges(first_page)
    assert len(edges) > 20
    assert max(edges) <= LETTER[0] - MARGIN + 0.5  # wrapped, not run off the right edge


def test_names_print_as_stored_and_only_undrawable_characters_are_replaced() -> None:
    assert printable("Nguyễn Peña-O’Brien Łukasz Đặng") == "Nguyễn Peña-O’Brien Łukasz Đặng"
    assert printable("Nguye\u0302\u0303n") == "Nguyễn"  # stored decomposed: the font's ễ
    assert printable("Zoë\u200b\tKim") == "Zoë Kim"  # invisible controls dropped
    assert printable("山田 Ǆuro") == "?? Ǆuro"  # no CJK in the font: staff were warned


def test_pins_are_validated_without_echoing_them() -> None:
    assert format_pin("abcd-2345") == "ABCD-2345"
    with pytest.raises(ValueError) as raised:
        format_pin("ABCDI234")  # I is not Crockford base32
    assert "ABCDI234" not in str(raised.value)
    with pytest.raises(ValueError):
        render_letters(PRACTICE, [])


def test_rendering_is_fast() -> None:
    letters = FAMILY * 70
    started = time.perf_counter()
    pdf = render_letters(PRACTICE, letters)
    elapsed = time.perf_counter() - started
    assert len(read(pdf).pages) == 210
    assert elapsed < 5  # ~0.5 s here; the target is 100+ pages/s, this only catches regressions


# Locale -----------------------------------------------------------------------------------

KEY = re.compile(r"^(format|letter|email|notice)\.[a-z_]+(\.[a-z_]+)*$")


def _keys_used_by_code() -> set[str]:
    used = set()
    for path in Path(bot.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and KEY.match(node.value)
            ):
                used.add(node.value)
    return used


def _placeholders(value: str | tuple[str, ...]) -> set[str]:
    lines = (value,) if isinstance(value, str) else value
    return {name for line in lines for _, name, _, _ in string.Formatter().parse(line) if name}


def test_every_shipped_locale_has_every_key_with_the_same_placeholders() -> None:
    used = _keys_used_by_code()
    assert {"letter.steps.sibling", "email.subject", "format.date", locale.NOTICE_KEY} <= used
    english = texts("en").entries
    assert used <= set(english), sorted(used - set(english))
    assert {"en", "es"} <= set(locale.available_languages())
    for language in locale.available_languages():
        raw = locale._load(locale.LOCALE_DIR / f"{language}.toml").entries  # before any fallback
        assert set(raw) == set(english), (language, sorted(set(raw) ^ set(english)))
        for key, value in english.items():
            assert isinstance(raw[key], str) == isinstance(value, str), (language, key)
            if isinstance(value, tuple):
                assert len(raw[key]) == len(value), (language, key)  # the same numbered steps
            assert _placeholders(raw[key]) == _placeholders(value), (language, key)


def _write_locale(directory: Path, language: str, entries: dict[str, object]) -> None:
    # JSON strings and arrays are valid TOML values; dotted keys rebuild the tables.
    lines = [f"{key} = {json.dumps(value)}" for key, value in entries.items()]
    (directory / f"{language}.toml").write_text("\n".join(lines) + "\n")


@pytest.fixture
def locale_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    english = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in texts("en").entries.items()
    }
    _write_locale(tmp_path, "en", english)
    monkeypatch.setattr(locale, "LOCALE_DIR", tmp_path)
    return tmp_path


def test_a_new_language_is_one_file(locale_dir: Path) -> None:
    entries: dict[str, object] = {}
    for key, value in texts("en").entries.items():
        if key.startswith("format."):
            entries[key] = value
        elif isinstance(value, tuple):
            entries[key] = [f"XX {line}" for line in value]
        else:
            entries[key] = f"XX {value}"
    _write_locale(locale_dir, "xx", entries)
    assert "xx" in locale.available_languages()
    assert texts("xx-YY").language == "xx"

    (text,) = page_texts(render_letters(PRACTICE, [SIBLING], language="xx"))
    assert "XX Sign up for the patient portal at:" in text
    assert "XX Creating your account now with Ava Marie Johnson's PIN" in flat(text)


def test_unknown_language_falls_back_to_english() -> None:
    assert texts("de").language == "en"
    assert texts("../../etc/passwd").language == "en"
    (text,) = page_texts(render_letters(PRACTICE, [FIRST], language="de"))
    assert "Sign up for the patient portal at:" in text


def test_a_missing_or_broken_key_is_printed_in_english_and_logged_once(
    locale_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    locale._log_fallback.cache_clear()
    _write_locale(
        locale_dir,
        "yy",
        {
            "letter.pin_label": "YY PIN {nope}",  # a placeholder the code does not supply
            "letter.steps_heading": ["a list where English has text"],
            "letter.pin_for": "YY portal PIN for",
        },
    )
    with caplog.at_level("WARNING", logger="bot.documents.locale"):
        assert texts("yy").text("letter.portal_label") == "Sign up for the patient portal at:"
        (text,) = page_texts(render_letters(PRACTICE, [FIRST], language="yy"))
        render_letters(PRACTICE, [FIRST], language="yy")
    assert "YY portal PIN for" in text  # its own words where it has them
    assert "Sign up for the patient portal at:" in text and "How to use this PIN" in text
    assert "YY PIN" not in text
    logged = [(r.message, r.__dict__["language"], r.__dict__["key"]) for r in caplog.records]
    keys = [key for _, _, key in logged]
    assert len(keys) == len(set(keys)), "each key is logged once"
    assert {"letter.portal_label", "letter.pin_label", "letter.steps_heading"} <= set(keys)
    assert all(message == "locale text missing, using English" for message, _, _ in logged)
    assert {language for _, language, _ in logged} == {"yy"}
    assert "Ava" not in caplog.text and "ABCD" not in caplog.text  # key names only, no PHI


def test_english_itself_missing_a_key_is_still_an_error(locale_dir: Path) -> None:
    with pytest.raises(LocaleError, match=r"'en' has no text for 'letter.nope'"):
        texts("en").text("letter.nope")


def test_malformed_locale_file_is_a_clear_error(locale_dir: Path) -> None:
    (locale_dir / "zz.toml").write_text("[letter]\npin_label = 3\n")
    with pytest.raises(LocaleError, match=r"'letter\.pin_label' must be text"):
        texts("zz")
    (locale_dir / "zy.toml").write_text("this is = = not toml")
    with pytest.raises(LocaleError, match=r"zy\.toml is not valid TOML"):
        texts("zy")
