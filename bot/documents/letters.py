"""PIN letters: one US Letter page per child, built in memory with reportlab (SPEC §6), or
two ("es+en": the guardian's language, then English, SPEC §9).

Letters are credentials, so the PDF only ever exists as bytes; the metadata carries a generic
title and never a name or PIN. The fonts are embedded Unicode TrueType (bot/documents/fonts.py),
so a child's name prints exactly as stored ("Nguyễn Łukasz") and extracts as real text.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from itertools import groupby

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.lib.colors import Color
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.units import inch
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from bot.documents.fonts import Face, register_fonts
from bot.documents.letter_case import LetterCase as LetterCase  # re-exported for the renderers
from bot.documents.locale import Texts, assistance_notices, letter_languages, texts
from bot.documents.text_fit import fit_address, fit_lines, printable, wrap
from bot.text import CROCKFORD_ALPHABET, mask_email

_PIN = re.compile(f"^[{CROCKFORD_ALPHABET}]{{8}}$")

PAGE_WIDTH, PAGE_HEIGHT = LETTER
MARGIN = 0.75 * inch
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
QR_SIZE = 1.6 * inch
QR_QUIET_ZONE = 4  # modules of white around the code, as scanners expect
GAP = 14.0
FOOTER_GAP = 12.0  # between the last step and the footer
FOOTER_SIZE, NOTICE_SIZE = 9.0, 7.5
BODY_SIZES = (12.0, 10.5, 9.0, 7.5)  # step text shrinks through these until it fits
GREY = Color(0.35, 0.35, 0.35)
REGULAR, BOLD, OBLIQUE, MONO = Face.REGULAR, Face.BOLD, Face.OBLIQUE, Face.PIN
_QR_SIGN_UP, _QR_SIGN_IN = "portal_qr", "signin_qr"


@dataclass(frozen=True)
class Practice:
    name: str
    phone: str
    portal_url: str  # where a family signs up (PORTAL_URL)
    signin_url: str = ""  # where a parent with an account signs in (PORTAL_SIGNIN_URL)

    @property
    def signin(self) -> str:
        return self.signin_url or self.portal_url


@dataclass(frozen=True)
class Letter:
    child_full_name: str
    child_dob: date
    pin: str  # 8 Crockford characters, printed XXXX-XXXX
    issued_on: date
    expires_on: date | None
    case: LetterCase
    emailed_to: str | None  # masked address when this child's PIN was also emailed
    first_child_name: str | None = None  # for SIBLING pages: which child's account to add to


_STEPS = {
    LetterCase.FIRST_CHILD: "letter.steps.first_child",
    LetterCase.SIBLING: "letter.steps.sibling",
    LetterCase.HAS_ACCOUNT: "letter.steps.has_account",
}


def format_pin(pin: str) -> str:
    """'ABCD2345' -> 'ABCD-2345'. Raises ValueError (never echoing the PIN) if malformed."""
    compact = pin.replace("-", "").replace(" ", "").upper()
    if not _PIN.match(compact):
        raise ValueError("a PIN must be 8 Crockford base32 characters")
    return f"{compact[:4]}-{compact[4:]}"


def render_letters(practice: Practice, letters: Sequence[Letter], *, language: str = "en") -> bytes:
    """The PDF of `letters`, in the given order: one page each in `language` ("es"), or one
    page per language of a bilingual choice ("es+en": Spanish, then English, per child)."""
    if not letters:
        raise ValueError("no letters to render")
    editions = [texts(code) for code in letter_languages(language)]
    pages = [PageSpec(letter, words.language) for letter in letters for words in editions]
    return render_pages(practice, pages, title=editions[0].text("letter.document_title"))


@dataclass(frozen=True)
class PageSpec:
    letter: Letter
    language: str
    stamp: str | None = None  # a line above the page ("SAMPLE · …"); real letters have none


def render_pages(practice: Practice, pages: Sequence[PageSpec], *, title: str) -> bytes:
    """The PDF of `pages`, one US Letter page each, in order."""
    register_fonts()
    editions = {page.language: texts(page.language) for page in pages}
    notices = {
        code: assistance_notices(words.language, phone=practice.phone)
        for code, words in editions.items()
    }
    buffer = io.BytesIO()
    # The initial font too, or reportlab lists an unembedded Helvetica on every page.
    canvas = Canvas(buffer, pagesize=LETTER, pageCompression=1, initialFontName=REGULAR)
    canvas.setTitle(title)
    canvas.setAuthor("pinbot")
    canvas.setCreator("pinbot")
    canvas.setSubject("")
    # One QR form per address, drawn by reference on every page: each code is built once.
    _define_qr_form(canvas, _QR_SIGN_UP, practice.portal_url)
    _define_qr_form(canvas, _QR_SIGN_IN, practice.signin)
    for page in pages:
        if page.stamp:
            canvas.setFont(BOLD, 9)
            canvas.setFillColor(GREY)
            canvas.drawString(MARGIN, PAGE_HEIGHT - MARGIN / 2, printable(page.stamp))
        words = editions[page.language]
        _Page(canvas, words, practice, page.letter, notices[page.language]).draw()
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _define_qr_form(canvas: Canvas, name: str, url: str) -> None:
    size, runs = _qr_runs(url)
    module = QR_SIZE / (size + 2 * QR_QUIET_ZONE)
    canvas.beginForm(name, 0, 0, QR_SIZE, QR_SIZE)
    path = canvas.beginPath()
    for row, column, length in runs:
        x = (column + QR_QUIET_ZONE) * module
        y = QR_SIZE - (row + QR_QUIET_ZONE + 1) * module
        path.rect(x, y, length * module, module)
    canvas.drawPath(path, stroke=0, fill=1)
    canvas.endForm()


@cache
def _qr_runs(url: str) -> tuple[int, tuple[tuple[int, int, int], ...]]:
    """The QR code of `url` as (modules per side, dark runs as (row, column, length)).

    Encoding is the slow part and the portal URL never changes, so it is done once; drawing
    plain rectangles is much cheaper than reportlab's widget rendering.
    """
    code = QrCodeWidget(url, barLevel="M").qr
    code.make()
    runs = []
    for row, modules in enumerate(code.modules):
        column = 0
        for dark, group in groupby(bool(module) for module in modules):
            length = len(list(group))
            if dark:
                runs.append((row, column, length))
            column += length
    return len(code.modules), tuple(runs)


class _Page:
    """One letter, drawn top to bottom; `self.y` is the baseline cursor."""

    def __init__(
        self,
        canvas: Canvas,
        words: Texts,
        practice: Practice,
        letter: Letter,
        notices: Sequence[str] = (),
    ) -> None:
        self.c = canvas
        self.w = words
        self.practice = practice
        self.letter = letter
        self.child = printable(letter.child_full_name)
        self.y = PAGE_HEIGHT - MARGIN
        self.footer = self._footer_lines(notices)
        height = sum(len(lines) * size * 1.25 + size * 0.15 for _, size, lines in self.footer)
        self.footer_top = MARGIN + height + FOOTER_GAP

    def draw(self) -> None:
        # Drawing order is reading order in the extracted text: the portal URL comes first.
        self._header()
        self._child()
        self._pin()
        self._dates()
        self._body()
        self._footer()

    def _text(
        self,
        text: str,
        font: str,
        size: float,
        *,
        min_size: float | None = None,
        width: float = CONTENT_WIDTH,
        color: Color | None = None,
        address: bool = False,
    ) -> None:
        fit = fit_address if address else fit_lines  # an address never breaks inside a word
        size, lines = fit(printable(text), font, size, min_size or size, width)
        self.c.setFont(font, size)
        self.c.setFillColor(color or Color(0, 0, 0))
        for line in lines:
            self.y -= size
            self.c.drawString(MARGIN, self.y, line)
            self.y -= size * 0.25
        self.y -= size * 0.15

    def _header(self) -> None:
        top = self.y
        left = CONTENT_WIDTH - QR_SIZE - GAP
        signs_in = self.letter.case == LetterCase.HAS_ACCOUNT  # adds a child: no sign-up
        label = "letter.signin_label" if signs_in else "letter.portal_label"
        address = self.practice.signin if signs_in else self.practice.portal_url
        self._text(self.w.text(label), REGULAR, 11, min_size=10, width=left, color=GREY)
        self._text(address, BOLD, 22, min_size=13, width=left, address=True)
        self.y -= 4
        self._text(self.practice.name, BOLD, 14, min_size=10, width=left)
        self._text(self.w.text("letter.phone", phone=self.practice.phone), REGULAR, 12, width=left)
        qr_x = PAGE_WIDTH - MARGIN - QR_SIZE
        self.c.saveState()
        self.c.translate(qr_x, top - QR_SIZE)
        self.c.doForm(_QR_SIGN_IN if signs_in else _QR_SIGN_UP)
        self.c.restoreState()
        caption = printable(self.w.text("letter.qr_caption"))
        # A longer translation shrinks to the code's width instead of running into the margin.
        self.c.setFont(
            REGULAR, min(8.0, 8.0 * QR_SIZE / max(stringWidth(caption, REGULAR, 8), 1.0))
        )
        self.c.drawCentredString(qr_x + QR_SIZE / 2, top - QR_SIZE - 11, caption)
        self.y = min(self.y, top - QR_SIZE - 16) - GAP / 2
        self.c.setStrokeColor(GREY)
        self.c.line(MARGIN, self.y, PAGE_WIDTH - MARGIN, self.y)
        self.y -= GAP

    def _child(self) -> None:
        self._text(self.w.text("letter.pin_for"), REGULAR, 12, color=GREY)
        self._text(self.letter.child_full_name, BOLD, 24, min_size=13)
        dob = self.w.date(self.letter.child_dob)
        self._text(self.w.text("letter.date_of_birth", dob=dob), REGULAR, 13)

    def _pin(self) -> None:
        self.y -= 6
        box_height = 62.0
        bottom = self.y - box_height
        self.c.setStrokeColor(Color(0, 0, 0))
        self.c.roundRect(MARGIN, bottom, CONTENT_WIDTH, box_height, 6)
        self.c.setFont(REGULAR, 11)
        self.c.drawString(MARGIN + 14, bottom + 26, printable(self.w.text("letter.pin_label")))
        self.c.setFont(MONO, 40)
        self.c.drawCentredString(PAGE_WIDTH / 2, bottom + 18, format_pin(self.letter.pin))
        self.y = bottom - GAP

    def _dates(self) -> None:
        issued = self.w.text("letter.issued", issued_on=self.w.date(self.letter.issued_on))
        expiry = (
            self.w.text("letter.expires", expires_on=self.w.date(self.letter.expires_on))
            if self.letter.expires_on
            else self.w.text("letter.does_not_expire")
        )
        self._text(f"{issued}  ·  {expiry}", REGULAR, 12)

    def _body(self) -> None:
        # Plain lines, not platypus Paragraphs: the steps carry no markup, and Paragraph's
        # parsing and layout were half the render time. User text is drawn literally.
        self.y -= GAP / 2
        blocks = self._blocks()
        for size in BODY_SIZES:  # shrink rather than run into the footer
            leading, indent = size * 1.3, size * 1.6  # indent: steps, after their number
            laid_out = [
                (font, bullet, wrap(text, font, size, CONTENT_WIDTH - (indent if bullet else 0)))
                for text, font, bullet in blocks
            ]
            height = sum(len(lines) * leading + size * 0.5 for _, _, lines in laid_out)
            if self.y - height >= self.footer_top:
                break
        self.c.setFillColor(Color(0, 0, 0))
        for font, bullet, lines in laid_out:
            text = self.c.beginText(MARGIN, self.y - size)
            if bullet:  # the number, then the step indented on the same baseline
                text.setFont(BOLD, size, leading)
                text.textOut(bullet)
                text.moveCursor(indent, 0)
            text.setFont(font, size, leading)
            for line in lines:
                text.textLine(line)
            self.c.drawText(text)
            self.y -= len(lines) * leading + size * 0.5

    def _blocks(self) -> list[tuple[str, str, str | None]]:
        """The body as (printable text, font, bullet or None), top to bottom."""
        result: list[tuple[str, str, str | None]] = []
        if self.letter.emailed_to:
            note = self.w.text("letter.emailed", email=mask_email(self.letter.emailed_to))
            result.append((printable(note), OBLIQUE, None))
        result.append((printable(self.w.text("letter.steps_heading")), BOLD, None))
        steps = self.w.lines(_STEPS[self.letter.case], **self._values())
        result.extend((printable(step), REGULAR, f"{n}.") for n, step in enumerate(steps, 1))
        return result

    def _values(self) -> dict[str, str]:
        first = self.letter.first_child_name or self.w.text("letter.first_child_unknown")
        return {
            "portal_url": self.practice.portal_url,
            "signin_url": self.practice.signin,
            "child": self.letter.child_full_name,
            "dob": self.w.date(self.letter.child_dob),
            "first_child": first,
            "practice_name": self.practice.name,
            "phone": self.practice.phone,
        }

    def _footer_lines(self, notices: Sequence[str]) -> list[tuple[str, float, list[str]]]:
        """(font, size, wrapped lines): the footer, then one language-assistance line per
        other shipped language, each in its own language (SPEC §9)."""
        footer = self.w.text(
            "letter.footer", practice_name=self.practice.name, phone=self.practice.phone
        )
        parts = [(REGULAR, FOOTER_SIZE, footer)]
        parts += [(BOLD, NOTICE_SIZE, notice) for notice in notices]
        return [
            (font, size, wrap(printable(text), font, size, CONTENT_WIDTH))
            for font, size, text in parts
        ]

    def _footer(self) -> None:
        self.y = self.footer_top - FOOTER_GAP
        self.c.setFillColor(GREY)
        for font, size, lines in self.footer:
            self.c.setFont(font, size)
            for line in lines:
                self.y -= size
                self.c.drawString(MARGIN, self.y, line)
                self.y -= size * 0.25
            self.y -= size * 0.15
