"""Letters print exactly what is stored: embedded Unicode fonts (names in Vietnamese, Polish,
Greek, Cyrillic read back exactly), a PIN face whose zero is not an O, a portal address that
wraps only between its parts, and the sign-in address on an existing account's letter."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import date
from itertools import pairwise
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PageObject, PdfReader
from reportlab.pdfgen.canvas import Canvas

from bot.documents.fonts import Face, register_fonts, undrawable
from bot.documents.letters import Letter, LetterCase, Practice, format_pin, render_letters
from bot.documents.text_fit import fit_address

LONG_URL = (
    "https://mychart.sunny-pediatrics-associates.example.org/MyChart/accesscode/signup"
    "?practice=sunnypeds&lang=en&source=letter"
)
SIGNIN_URL = "https://mychart.example.org/MyChart/Authentication/Login?mode=addchild"
PRACTICE = Practice("Sunny Pediatrics", "(555) 010-1234", LONG_URL, SIGNIN_URL)
ISSUED = date(2026, 12, 6)
NAMES = ("Nguyễn Łukasz", "Đặng Thị Hoa", "Zofia Łągiewka-Żółć", "Αλέξανδρος Παπαδόπουλος",
         "Дмитрий Иванов", "Ørjan Ærøskøbing")  # fmt: skip
PDFTOPPM = shutil.which("pdftoppm")


def _letter(name: str, case: LetterCase = LetterCase.FIRST_CHILD, pin: str = "0D0B7K2Q") -> Letter:
    return Letter(name, date(2019, 3, 2), pin, ISSUED, date(2027, 3, 6), case, None)


def _pages(pdf: bytes) -> list[PageObject]:
    return list(PdfReader(io.BytesIO(pdf)).pages)


def _fonts(page: PageObject) -> list[dict]:  # type: ignore[type-arg]
    fonts = []
    for font in page["/Resources"]["/Font"].values():
        font = font.get_object()
        if font["/Subtype"] == "/Type0":
            font = font["/DescendantFonts"][0].get_object()
        fonts.append(font)
    return fonts


@pytest.mark.parametrize("language", ["en", "es", "es+en"])
def test_every_font_is_embedded_truetype(language: str) -> None:
    cases = [_letter(NAMES[0]), _letter(NAMES[1], LetterCase.SIBLING)]
    cases.append(_letter(NAMES[2], LetterCase.HAS_ACCOUNT))
    for page in _pages(render_letters(PRACTICE, cases, language=language)):
        fonts = _fonts(page)
        assert fonts
        for font in fonts:
            assert "/FontFile2" in font["/FontDescriptor"], font["/BaseFont"]
            assert str(font["/BaseFont"]).split("+")[-1] in {face.value for face in Face}


@pytest.mark.parametrize("name", NAMES)
def test_names_read_back_exactly_as_stored(name: str) -> None:
    (page,) = _pages(render_letters(PRACTICE, [_letter(name)]))
    text = page.extract_text()
    assert name in text.splitlines()  # the heading, as stored
    assert f"{name}'s date of birth" in " ".join(text.split())  # and inside the steps
    assert undrawable(name) == ""


def test_a_name_stored_decomposed_prints_with_the_fonts_own_letters() -> None:
    decomposed = "Nguye\u0302\u0303n"  # e + circumflex + tilde, as some systems store it
    (page,) = _pages(render_letters(PRACTICE, [_letter(decomposed)]))
    assert "Nguyễn" in page.extract_text().splitlines()


def test_characters_the_font_lacks_are_named() -> None:
    assert undrawable("山田 Hana") == "山田"
    assert undrawable("Hana 山山") == "山"  # each once
    (page,) = _pages(render_letters(PRACTICE, [_letter("山田 Hana")]))
    assert "?? Hana" in page.extract_text().splitlines()  # never an empty box


def test_the_pin_is_drawn_in_the_monospaced_face() -> None:
    (page,) = _pages(render_letters(PRACTICE, [_letter(NAMES[0])]))
    faces: dict[str, str] = {}

    def visit(text: str, cm: list[float], tm: list[float], font: dict | None, size: float) -> None:  # type: ignore[type-arg]
        if text.strip() and font:
            faces[text.strip()] = str(font["/BaseFont"]).split("+")[-1]

    page.extract_text(visitor_text=visit)
    assert faces[format_pin("0D0B7K2Q")] == Face.PIN.value


def _address_lines(lines: list[str], url: str) -> list[str]:
    """The consecutive lines, from the first that starts `url`, that together make it up."""
    start = next(i for i, line in enumerate(lines) if line and url.startswith(line))
    taken: list[str] = []
    for line in lines[start:]:
        taken.append(line)
        if "".join(taken) == url:
            return taken
    raise AssertionError(f"{url} is not whole on the page: {taken}")


def _header_lines(page: PageObject, url: str) -> list[str]:
    return _address_lines(page.extract_text().splitlines(), url)


def _breaks_between_parts(lines: list[str]) -> None:
    for before, after in pairwise(lines):
        assert before.endswith("/") or after[0] in "?&", (before, after)


def test_a_long_portal_address_wraps_only_between_its_parts() -> None:
    (page,) = _pages(render_letters(PRACTICE, [_letter(NAMES[0])]))
    lines = _header_lines(page, LONG_URL)
    assert len(lines) >= 2
    _breaks_between_parts(lines)
    # In the steps too ("Go to … (or scan the code above)"), first in the page's text order.
    text = page.extract_text().splitlines()
    steps = text[next(i for i, line in enumerate(text) if line.startswith("1.")) :]
    in_steps = _address_lines(steps, LONG_URL)
    assert len(in_steps) >= 2
    _breaks_between_parts(in_steps)


def test_a_part_too_long_for_any_line_shrinks_instead_of_breaking() -> None:
    url = "https://" + "averyveryverylongportalhostname" * 3 + ".example.org/signup?x=1"
    register_fonts()
    size, lines = fit_address(url, Face.BOLD, 22, 13, 300)
    assert size < 13
    assert lines == ["https://" + "averyveryverylongportalhostname" * 3 + ".example.org/",
                     "signup?x=1"]  # fmt: skip


def test_an_existing_accounts_letter_is_headed_for_adding_a_child_at_the_sign_in_address() -> None:
    first, has_account = _pages(
        render_letters(
            PRACTICE, [_letter(NAMES[0]), _letter(NAMES[1], LetterCase.HAS_ACCOUNT, "4F0H9M0W")]
        )
    )
    top = has_account.extract_text().splitlines()
    assert top[0] == "Add your child to your patient portal account. Sign in at:"
    assert "".join(_header_lines(has_account, SIGNIN_URL)) == SIGNIN_URL
    flat = " ".join(has_account.extract_text().split())
    assert f"Sign in at {SIGNIN_URL} with your existing account" in flat.replace("/ ", "/")
    assert "Sign up" not in flat and "sunnypeds" not in flat
    assert first.extract_text().startswith("Sign up for the patient portal at:")
    # Each page's QR code is its own address's: two forms, one per page.
    forms = [
        next(iter(p["/Resources"]["/XObject"].values())).get_object() for p in (first, has_account)
    ]
    assert forms[0].get_data() != forms[1].get_data()


def test_without_a_sign_in_address_the_portal_address_is_used() -> None:
    practice = replace(PRACTICE, portal_url="https://portal.example.org/", signin_url="")
    (page,) = _pages(render_letters(practice, [_letter(NAMES[0], LetterCase.HAS_ACCOUNT)]))
    assert "Sign in at https://portal.example.org/ with" in " ".join(page.extract_text().split())


def test_spanish_existing_account_letter_says_inicie_sesion() -> None:
    (page,) = _pages(
        render_letters(PRACTICE, [_letter(NAMES[0], LetterCase.HAS_ACCOUNT)], language="es")
    )
    flat = " ".join(page.extract_text().split()).replace("/ ", "/")
    assert flat.startswith(
        f"Agregue a su hijo a su cuenta del portal del paciente. Inicie sesión en: {SIGNIN_URL}"
    )
    assert f"Inicie sesión en {SIGNIN_URL} con la cuenta que ya tiene" in flat
    assert "Regístrese" not in flat


@pytest.mark.skipif(PDFTOPPM is None, reason="pdftoppm (poppler-utils) is not installed")
def test_the_pin_faces_zero_is_marked_so_it_never_reads_as_o(tmp_path: Path) -> None:
    """Crockford base32 has no O, but a parent does not know that: the zero carries a dot."""
    register_fonts()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=(200, 100), initialFontName=Face.PIN.value)
    canvas.setFont(Face.PIN.value, 72)
    canvas.drawString(10, 20, "0O")
    canvas.save()
    no_fonts = tmp_path / "fonts.conf"
    no_fonts.write_text("<?xml version='1.0'?><fontconfig></fontconfig>\n")
    assert PDFTOPPM is not None
    subprocess.run(
        [PDFTOPPM, "-png", "-r", "72", "-singlefile", "-", str(tmp_path / "zero")],
        input=buffer.getvalue(),
        check=True,
        timeout=60,
        env={**os.environ, "FONTCONFIG_FILE": str(no_fonts)},
        capture_output=True,
    )
    image = Image.open(tmp_path / "zero.png").convert("L")
    advance = 72 * 0.602  # DejaVu Sans Mono's advance width, 1233/2048 em
    middle_y = image.height - 20 - round(72 * 0.36)  # half a digit's height above the baseline
    zero_centre = image.getpixel((round(10 + advance / 2), middle_y))
    o_centre = image.getpixel((round(10 + advance * 1.5), middle_y))
    assert isinstance(zero_centre, int) and isinstance(o_centre, int)
    assert zero_centre < 100 < o_centre  # ink in the zero's middle, paper in the O's


def test_rendered_page_text_has_no_replacement_boxes() -> None:
    pdf = render_letters(PRACTICE, [_letter(name) for name in NAMES], language="es+en")
    text = "".join(page.extract_text() for page in _pages(pdf))
    assert "\ufffd" not in text and not re.search(r"\?\?", text.replace("?practice", ""))
