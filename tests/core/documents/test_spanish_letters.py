"""Letters in the family's language (SPEC §9): Spanish words with dates in words, accents
that survive into the PDF text and onto the page, bilingual pages in order, and the
language-assistance line of every other shipped language at the foot of each page.

The raster test draws with the letter's embedded fonts only: pdftoppm runs with an empty
fontconfig, so the machine's own fonts can neither help nor change the result."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from PIL import Image, ImageChops
from pypdf import PdfReader

from bot.documents.letters import Letter, LetterCase, Practice, render_letters

PRACTICE = Practice("Sunny Pediatrics", "(555) 010-1234", "https://portal.example.com/signup")
ISSUED = date(2025, 3, 1)
FIRST = Letter(
    "Begoña Agüero Núñez",
    date(2018, 3, 14),
    "ABCD2345",
    ISSUED,
    date(2025, 5, 30),
    LetterCase.FIRST_CHILD,
    "rocio.aguero@example.com",
)
SIBLING = Letter(
    "Íñigo Agüero Núñez",
    date(2020, 11, 2),
    "WXYZ6789",
    ISSUED,
    None,
    LetterCase.SIBLING,
    None,
    first_child_name="Begoña",
)
HAS_ACCOUNT = Letter(
    "Sofía Agüero", date(2023, 1, 9), "MNPQ4567", ISSUED, None, LetterCase.HAS_ACCOUNT, None
)
SPANISH_NOTICE = (
    "ATENCIÓN: si habla español, tiene a su disposición servicios gratuitos de asistencia "
    "lingüística. Llame al (555) 010-1234."
)
ENGLISH_NOTICE = (
    "ATTENTION: If you speak English, language assistance services, free of charge, are "
    "available to you. Call (555) 010-1234."
)
PDFTOPPM = shutil.which("pdftoppm")


def page_texts(pdf: bytes) -> list[str]:
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(pdf)).pages]


def test_spanish_letters_have_spanish_words_and_dates_in_words() -> None:
    first, sibling, has_account = page_texts(
        render_letters(PRACTICE, [FIRST, SIBLING, HAS_ACCOUNT], language="es")
    )
    assert "Regístrese en el portal del paciente en:" in first
    assert "Begoña Agüero Núñez" in first
    assert "Fecha de nacimiento: 14 de marzo de 2018" in first
    assert "Emitido el 1 de marzo de 2025" in first and "Vence el 30 de mayo de 2025" in first
    assert "También enviamos este PIN por correo electrónico a r•••@e•••.com." in first
    assert "Cómo usar este PIN" in first and "¿Tiene más hijos?" in first
    assert "03/14/2018" not in first  # no digits-only date to read the wrong way round

    assert "Fecha de nacimiento: 2 de noviembre de 2020" in sibling and "No vence" in sibling
    assert "¿Está creando su cuenta ahora con el PIN de Begoña?" in sibling
    assert '"My Account > Add Child/Dependent" (Mi cuenta > Agregar hijo/dependiente)' in sibling
    assert "¡Importante! No cree una cuenta aparte para Íñigo Agüero Núñez." in sibling
    assert '"My Account > Add Child/Dependent" (Mi cuenta > Agregar hijo/dependiente)' in (
        has_account
    )
    for page in (first, sibling, has_account):
        assert "portal" in page and "Sign up" not in page


def test_every_spanish_character_is_real_pdf_text() -> None:
    text = " ".join(page_texts(render_letters(PRACTICE, [FIRST, SIBLING], language="es+en")))
    for char in "áéíóúñü¿¡Í":  # capitals: the render test below draws every one of them
        assert char in text, char


def test_each_page_ends_with_the_other_languages_assistance_line() -> None:
    (spanish,) = page_texts(render_letters(PRACTICE, [FIRST], language="es"))
    (english,) = page_texts(render_letters(PRACTICE, [FIRST], language="en"))
    assert spanish.endswith(ENGLISH_NOTICE) and SPANISH_NOTICE not in spanish
    assert english.endswith(SPANISH_NOTICE) and ENGLISH_NOTICE not in english
    assert "Keep this letter private" in english  # English words unchanged
    assert "Date of birth: 03/14/2018" in english  # English keeps MM/DD/YYYY


def test_bilingual_prints_each_child_twice_guardians_language_first() -> None:
    pages = page_texts(render_letters(PRACTICE, [FIRST, SIBLING], language="es+en"))
    assert len(pages) == 4
    order = [
        ("ABCD-2345" in p, "WXYZ-6789" in p, "Regístrese" in p, "Sign up for" in p) for p in pages
    ]
    assert order == [
        (True, False, True, False),
        (True, False, False, True),
        (False, True, True, False),
        (False, True, False, True),
    ]
    assert "Begoña Agüero Núñez" in pages[0] and "Begoña Agüero Núñez" in pages[1]


def _render(pdf: bytes, tmp_path: Path, name: str, dpi: int = 100) -> Image.Image:
    assert PDFTOPPM is not None
    # No font of the machine's: a font the PDF did not embed would be substituted from there.
    no_fonts = tmp_path / "fonts.conf"
    no_fonts.write_text("<?xml version='1.0'?><fontconfig></fontconfig>\n")
    # The PNG is a test artefact in pytest's tmp dir; the bot never writes a PDF to disk.
    subprocess.run(
        [PDFTOPPM, "-png", "-r", str(dpi), "-singlefile", "-", str(tmp_path / name)],
        input=pdf,
        check=True,
        timeout=60,
        env={**os.environ, "FONTCONFIG_FILE": str(no_fonts)},
        capture_output=True,
    )
    return Image.open(tmp_path / f"{name}.png").convert("L")


def _inked(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    """Dark pixels in `box`."""
    histogram = image.crop(box).histogram()
    return sum(histogram[:160])


@pytest.mark.skipif(PDFTOPPM is None, reason="pdftoppm (poppler-utils) is not installed")
def test_spanish_page_renders_inside_its_margins_with_every_accent_drawn(
    tmp_path: Path,
) -> None:
    page = _render(render_letters(PRACTICE, [SIBLING], language="es"), tmp_path, "es")
    width, height = page.size  # 850 x 1100 at 100 dpi
    edge = 50  # half an inch; the content keeps to 0.75 in margins
    assert _inked(page, (0, 0, width, edge)) == 0  # top
    assert _inked(page, (0, height - edge, width, height)) == 0  # bottom: nothing ran off
    assert _inked(page, (0, 0, edge, height)) == 0
    assert _inked(page, (width - edge, 0, width, height)) == 0
    assert _inked(page, (edge, height - 130, width - edge, height - edge)) > 500  # the footer

    # The same page with the name's accents dropped must differ at every accented letter of
    # the name's heading: each mark is drawn, none is lost or boxed.
    marks = "ÁÉÍÓÚÜÑ áéíóúüñ ¿¡"
    accented = Letter(**{**SIBLING.__dict__, "child_full_name": marks})
    plain = Letter(**{**SIBLING.__dict__, "child_full_name": "AEIOUUN aeiouun ?!"})
    with_marks = _render(render_letters(PRACTICE, [accented], language="es"), tmp_path, "a", 150)
    without = _render(render_letters(PRACTICE, [plain], language="es"), tmp_path, "p", 150)
    difference = ImageChops.difference(with_marks, without)
    box = difference.getbbox()
    assert box is not None
    heading = difference.crop((0, box[1], difference.width, box[1] + 60))  # 24 pt at 150 dpi
    # One changed run per accent, tilde or inverted mark; the diaeresis of Ü and ü is two dots.
    assert _changed_glyphs(heading) == len(marks.replace(" ", "")) + 2


def _changed_glyphs(difference: Image.Image) -> int:
    """How many separate runs of columns differ: one per glyph that was drawn differently."""
    changed = [
        any(difference.getpixel((x, y)) > 60 for y in range(difference.height))  # type: ignore[operator]
        for x in range(difference.width)
    ]
    return sum(1 for x, now in enumerate(changed) if now and (x == 0 or not changed[x - 1]))
