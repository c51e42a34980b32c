"""Fitting text on a letter: characters the embedded fonts can draw, and lines wrapped or shrunk
to a width (a web address only at its slashes, never inside a word; other long words broken),
so nothing on a page overflows its box or is cut."""

from __future__ import annotations

import unicodedata
from functools import cache, lru_cache
from itertools import pairwise

from reportlab.pdfbase.pdfmetrics import stringWidth

from bot.documents.fonts import REPLACEMENT, Face, can_draw

TEXT_FACES = (Face.REGULAR, Face.BOLD, Face.OBLIQUE)
# Where a word with no space (a URL) may break: after a slash, before a query or a parameter.
_BREAK_AFTER, _BREAK_BEFORE = "/", "?&#"


def printable(text: str) -> str:
    """`text` as the letter's embedded fonts can draw it: composed (NFC, so "Nguyễn" uses the
    font's own ễ, not a stacked accent), invisible controls dropped, and a character the fonts
    lack replaced by its base letter ("ǅ" has none: "?"). Staff are warned about such names
    before issuing (fonts.undrawable), so the letter never silently prints another name."""
    composed = unicodedata.normalize("NFC", text)
    if composed.isascii() and composed.isprintable():
        return composed
    return "".join(_printable_char(char) for char in composed)


@cache
def _printable_char(char: str) -> str:
    if not char.isprintable():
        return " " if char.isspace() else ""
    if can_draw(char, TEXT_FACES):
        return char
    base = unicodedata.normalize("NFD", char)[0]
    return base if can_draw(base, TEXT_FACES) else REPLACEMENT


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


def fit_address(
    url: str, font: str, size: float, min_size: float, width: float
) -> tuple[float, list[str]]:
    """Like fit_lines, for a web address a parent will type: below `min_size` it wraps only
    after a slash or before ?, & or #, and shrinks further rather than cut inside a word."""
    size, lines = fit_lines(url, font, size, min_size, width)
    if len(lines) == 1:
        return size, lines
    widest = max(stringWidth(piece, font, 1) for piece in _pieces(url))
    size = min(size, width / widest)
    return size, wrap(url, font, size, width)


def _break_points(word: str) -> list[int]:
    """Where `word` may break: after a "/" (not inside "//"), before "?", "&" or "#"."""
    return [
        k
        for k in range(1, len(word))
        if (word[k - 1] in _BREAK_AFTER and word[k] not in _BREAK_AFTER and word[k - 2 : k] != "//")
        or word[k] in _BREAK_BEFORE
    ]


def _pieces(text: str) -> list[str]:
    """`text` cut at every space and break point: the parts no line may split."""
    pieces = []
    for word in text.split():
        ends = [0, *_break_points(word), len(word)]
        pieces += [word[a:b] for a, b in pairwise(ends)]
    return pieces


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
    """Break a line that has no space to wrap at (a long URL or a run-on name): at the last
    break point that fits (see _break_points), inside a word only when there is none."""
    pieces: list[str] = []
    while stringWidth(line, font, size) > width:
        cut = max(1, int(len(line) * width / stringWidth(line, font, size)))
        while stringWidth(line[: cut + 1], font, size) <= width:  # the estimate can be short
            cut += 1
        while cut > 1 and stringWidth(line[:cut], font, size) > width:
            cut -= 1
        cut = max((k for k in _break_points(line) if k <= cut), default=cut)
        pieces.append(line[:cut])
        line = line[cut:]
    return [*pieces, line] if line else pieces
