"""Fitting text on a letter: characters the standard fonts can draw (accents kept where the font
has them, look-alikes for the few it lacks), and lines wrapped or shrunk to a width, long words
broken, so nothing on a page overflows its box or is cut."""

from __future__ import annotations

import unicodedata
from functools import cache, lru_cache

from reportlab.pdfbase.pdfmetrics import stringWidth

# Letters with no accent to strip that the standard fonts lack (Vietnamese, Polish, Turkish).
_LOOKALIKES = {"Đ": "D", "đ": "d", "Ł": "L", "ł": "l", "ı": "i", "Ħ": "H", "ħ": "h"}


def printable(text: str) -> str:
    """Text the standard (WinAnsi) fonts can show: 'Nguyễn' -> 'Nguyên' instead of a box."""
    if text.isascii():
        return text
    return "".join(_printable_char(char) for char in text)


@cache
def _printable_char(char: str) -> str:
    if char == "•":
        return "*"  # reportlab writes U+2022 as a code that text extraction cannot map back
    if char in _LOOKALIKES:
        return _LOOKALIKES[char]
    if _encodable(char):
        return char
    decomposed = unicodedata.normalize("NFD", char)
    base = decomposed[0]
    for mark in decomposed[1:]:  # keep as many accents as the font has: ễ -> ê, not e
        composed = unicodedata.normalize("NFC", base + mark)
        if len(composed) == 1 and _encodable(composed):
            base = composed
    if _encodable(base):
        return base
    folded = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    return folded or "?"


def _encodable(char: str) -> bool:
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def fit_lines(
    text: str, font: str, size: float, min_size: float, width: float
) -> tuple[float, list[str]]:
    """Shrink `text` to one line down to `min_size`; below that, wrap it at `min_size`."""
    natural = stringWidth(text, font, size)
    if natural <= width:
        return size, [text]
    shrunk = max(min_size, size * width / natural)
    if natural * shrunk / size <= width + 1e-6:  # widths scale with the font size
        return shrunk, [text]
    return shrunk, wrap(text, font, shrunk, width)


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """`text` wrapped at spaces to `width`, words too long for a line broken inside."""
    lines: list[str] = []
    for line in _split(text, font, size, width):
        # Only a single word can overrun: it is alone on its line.
        if " " in line:
            lines.append(line)
        else:
            lines.extend(_break_word(line, font, size, width))
    return lines


def _split(text: str, font: str, size: float, width: float) -> list[str]:
    """reportlab's `simpleSplit` (greedy, at whitespace), with each word measured once.

    Measuring was most of the wrapping time; the steps reuse the same words on every page.
    """
    space = _word_width(" ", font) * size
    lines: list[str] = []
    words: list[str] = []
    used = -space
    for word in text.split():
        word_width = _word_width(word, font) * size
        if words and used + space + word_width > width:
            lines.append(" ".join(words))
            words, used = [word], word_width
        else:
            words.append(word)
            used += space + word_width
    if words:
        lines.append(" ".join(words))
    return lines


@lru_cache(maxsize=4096)
def _word_width(word: str, font: str) -> float:
    """Width of `word` at a font size of 1."""
    return float(stringWidth(word, font, 1))


def _break_word(line: str, font: str, size: float, width: float) -> list[str]:
    """Hard-break a line that has no space to wrap at (a long URL or a run-on name)."""
    pieces: list[str] = []
    while stringWidth(line, font, size) > width:
        cut = max(1, int(len(line) * width / stringWidth(line, font, size)))
        while cut > 1 and stringWidth(line[:cut], font, size) > width:
            cut -= 1
        pieces.append(line[:cut])
        line = line[cut:]
    return [*pieces, line] if line else pieces
