"""The letters' fonts: DejaVu Sans (text) and DejaVu Sans Mono (the PIN), embedded in every PDF
so a name prints as stored whatever the reader's machine has.

The TrueType files are the ones matplotlib ships (it is already a dependency, for the
adoption chart); DejaVu is free to use and embed (Bitstream Vera and DejaVu licences, the
LICENSE_DEJAVU file beside them). DejaVu Sans covers Latin with its extensions (Vietnamese
included), Greek and Cyrillic. DejaVu Sans Mono draws its zero with a dot in the middle, so a
PIN's 0 never reads as the letter O (Crockford base32 has no O, but a parent does not know).
reportlab embeds only the glyphs a document uses, with a ToUnicode map: the text stays
extractable exactly as stored.
"""

from __future__ import annotations

import importlib.util
import unicodedata
from enum import StrEnum
from functools import cache
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont


class Face(StrEnum):
    """reportlab's names for the registered faces; the value is the file's stem."""

    REGULAR = "DejaVuSans"
    BOLD = "DejaVuSans-Bold"
    OBLIQUE = "DejaVuSans-Oblique"
    PIN = "DejaVuSansMono-Bold"


# Faces a child's name is drawn in: bold in its heading, regular inside the steps.
NAME_FACES = (Face.REGULAR, Face.BOLD)
REPLACEMENT = "?"  # what the letter prints for a character its font lacks


def font_dir() -> Path:
    """matplotlib's bundled TrueType folder, found without importing matplotlib (slow)."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("matplotlib is not installed: the letters need its DejaVu fonts")
    return Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"


@cache
def register_fonts() -> None:
    """Register every face with reportlab once per process (idempotent)."""
    for face in Face:
        pdfmetrics.registerFont(TTFont(face.value, str(font_dir() / f"{face.value}.ttf")))


@cache
def _codepoints(face: Face) -> frozenset[int]:
    register_fonts()
    font = pdfmetrics.getFont(face.value)
    assert isinstance(font, TTFont)
    return frozenset(font.face.charToGlyph)


def can_draw(char: str, faces: tuple[Face, ...] = NAME_FACES) -> bool:
    return all(ord(char) in _codepoints(face) for face in faces)


def undrawable(text: str, faces: tuple[Face, ...] = NAME_FACES) -> str:
    """The characters of `text` (as the letter prints it) that the letter's fonts cannot
    draw, each once, in order: "" when the whole name prints as stored."""
    missing = (
        char
        for char in unicodedata.normalize("NFC", text)
        if char.isprintable() and not can_draw(char, faces)
    )
    return "".join(dict.fromkeys(missing))
