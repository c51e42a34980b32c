"""PDF letters: pages per second of `render_letters` for a batch of 4 siblings. Floor: the
minimal reportlab document of as many pages, each with the same number of text lines (plain
drawString) and one QR code of the same URL, compressed the same way. The floor's QR code is
encoded once and drawn as one form per document, as cheaply as reportlab allows (drawing
reportlab's QR widget on every page instead is an order of magnitude slower than the letters
themselves, which would make a floor of no use; its rate is printed for reference)."""

from __future__ import annotations

import io
import time
from datetime import date, timedelta
from functools import cache

from pypdf import PdfReader
from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.units import inch
from reportlab.pdfgen.canvas import Canvas

from bench.stats import Report, Result, Summary, ratio
from bot.documents.letters import Letter, LetterCase, Practice, render_letters

PRACTICE = Practice(
    name="Maple Grove Pediatrics",
    phone="555-010-9999",
    portal_url="https://portal.example.org/register",
)
PAGES = 4


def sample_letters() -> list[Letter]:
    today = date.today()
    names = (
        "Ava Marie Quillfeather",
        "Ben Quillfeather",
        "Cleo Quillfeather-Nuñez",
        "Dax Quillfeather",
    )
    cases = (LetterCase.FIRST_CHILD, LetterCase.SIBLING, LetterCase.SIBLING, LetterCase.SIBLING)
    return [
        Letter(
            child_full_name=name,
            child_dob=date(2012 + 3 * i, 3, 2 + i),
            pin=f"ABCD{2345 + i}",
            issued_on=today,
            expires_on=today + timedelta(90),
            case=case,
            emailed_to="w.quill@example.com" if i == 0 else None,
            first_child_name=None if i == 0 else "Ava",
        )
        for i, (name, case) in enumerate(zip(names, cases, strict=True))
    ]


def text_lines(pdf: bytes) -> int:
    """Lines of extractable text on the letters' first page (what the floor draws)."""
    page = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    return len([line for line in page.splitlines() if line.strip()])


def floor_pdf(pages: int, lines: int, url: str) -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=LETTER, pageCompression=1)
    size = 1.6 * inch
    modules = _modules(url)
    unit = size / len(modules)
    canvas.beginForm("qr", 0, 0, size, size)
    path = canvas.beginPath()
    for row, line in enumerate(modules):
        for column, dark in enumerate(line):
            if dark:
                path.rect(column * unit, size - (row + 1) * unit, unit, unit)
    canvas.drawPath(path, stroke=0, fill=1)
    canvas.endForm()
    for page in range(pages):
        canvas.saveState()
        canvas.translate(LETTER[0] - inch - size, LETTER[1] - inch - size)
        canvas.doForm("qr")
        canvas.restoreState()
        canvas.setFont("Helvetica", 12)
        for line in range(lines):
            canvas.drawString(
                inch,
                LETTER[1] - inch - 16 * line,
                f"Line {line} of page {page}: some text of a typical length",
            )
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


@cache
def _modules(url: str) -> tuple[tuple[bool, ...], ...]:
    code = QrCodeWidget(url, barLevel="M").qr
    code.make()
    return tuple(tuple(bool(m) for m in row) for row in code.modules)


def widget_pdf(pages: int, lines: int, url: str) -> bytes:
    """The naive page: reportlab's QR widget rendered on every page."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=LETTER, pageCompression=1)
    widget = QrCodeWidget(url, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    size = 1.6 * inch
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    for page in range(pages):
        renderPDF.draw(drawing, canvas, LETTER[0] - inch - size, LETTER[1] - inch - size)
        canvas.setFont("Helvetica", 12)
        for line in range(lines):
            canvas.drawString(
                inch,
                LETTER[1] - inch - 16 * line,
                f"Line {line} of page {page}: some text of a typical length",
            )
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def run(report: Report, *, seconds: float = 5.0) -> Result:
    letters = sample_letters()
    render_letters(PRACTICE, letters)  # warm caches (QR encoding, styles, fonts)
    lines = text_lines(render_letters(PRACTICE, letters))
    floor_pdf(PAGES, lines, PRACTICE.portal_url)

    def sample(build: object) -> list[float]:
        times, deadline = [], time.perf_counter() + seconds
        while time.perf_counter() < deadline or len(times) < 5:
            start = time.perf_counter()
            build()  # type: ignore[operator]
            times.append(time.perf_counter() - start)
        return times

    # Alternate in halves so both see the same machine load.
    bot_times, floor_times = [], []
    for _ in range(2):
        bot_times += sample(lambda: render_letters(PRACTICE, letters))
        floor_times += sample(lambda: floor_pdf(PAGES, lines, PRACTICE.portal_url))
    naive = Summary.of(sample(lambda: widget_pdf(PAGES, lines, PRACTICE.portal_url)))
    bot, floor = Summary.of(bot_times), Summary.of(floor_times)
    bot_rate, floor_rate = PAGES / (bot.median / 1000), PAGES / (floor.median / 1000)
    result = Result(
        "letters",
        "-",
        "-",
        {
            "document": bot,
            "floor": floor,
            "pages_per_document": PAGES,
            "lines_per_page": lines,
            "pages_per_s": bot_rate,
            "floor_pages_per_s": floor_rate,
            "ratio_time_per_page": ratio(bot.median, floor.median),
            "bytes": len(render_letters(PRACTICE, letters)),
            "qr_widget_pages_per_s": PAGES / (naive.median / 1000),
        },
    )
    return report.add(
        result,
        [
            f"letters {bot.text()}  per {PAGES}-page PDF -> {bot_rate:.0f} pages/s",
            f"floor   {floor.text()}  ({lines} lines + 1 QR per page) -> {floor_rate:.0f} pages/s",
            f"time per page vs floor: {result.figures['ratio_time_per_page']:.2f}x",
            f"(reference: reportlab's QR widget drawn on every page: "
            f"{result.figures['qr_widget_pages_per_s']:.0f} pages/s)",
        ],
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m bench.letters_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=5.0,
        help="sampling time per half for the letters and for the floor",
    )
    run(Report(), seconds=parser.parse_args().seconds)
