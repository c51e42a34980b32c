"""The adoption chart: a real PNG, wide enough for Slack's preview, deterministic, no names."""

from __future__ import annotations

import csv
import io
import math
import random
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox
from PIL import Image  # a dependency of matplotlib's, so only the tests import it

from bot.reports.chart import DPI, MARKER_EDGE_PT, MARKER_PT, TOTAL_GID, draw_chart, render_chart
from bot.reports.figures import AdoptionReport, alt_text, to_csv, to_table
from tests.core.reports.samples import PRACTICE, thirteen_weeks, week

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAMILIES_CSV = Path(__file__).parents[2] / "data" / "families_good.csv"


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """The PNG's (type, data) chunks, CRCs checked."""
    assert png.startswith(PNG_SIGNATURE)
    found, at = [], len(PNG_SIGNATURE)
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + data) == crc
        found.append((kind, data))
        at += 12 + length
    return found


def size(png: bytes) -> tuple[int, int]:
    kind, data = chunks(png)[0]
    assert kind == b"IHDR"
    width, height = struct.unpack(">II", data[:8])
    return width, height


def report_of(*weeks_: tuple[int, int, int, int], practice: str = PRACTICE) -> AdoptionReport:
    today = date(2026, 12, 2)
    weeks = tuple(
        week(date(2026, 9, 7) + timedelta(weeks=i), emailed=e, printed=p, registered_emailed=re,
             registered_printed=rp, today=today)
        for i, (e, p, re, rp) in enumerate(weeks_)
    )  # fmt: skip
    return AdoptionReport(
        practice_name=practice, weeks=weeks, generated_at=datetime(2026, 12, 2, tzinfo=UTC)
    )


def test_a_png_wide_enough_for_slacks_preview() -> None:
    png = render_chart(thirteen_weeks())
    assert png.startswith(PNG_SIGNATURE)
    assert size(png) == (1600, 900)
    assert [kind for kind, _ in chunks(png)][-1] == b"IEND"
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        assert image.size == (1600, 900)
        assert image.getextrema() != ((255, 255),) * len(image.getbands())  # not blank


def test_the_same_report_gives_the_same_picture_and_another_a_different_one() -> None:
    report = thirteen_weeks()
    first = render_chart(report)
    assert render_chart(report) == first
    assert render_chart(thirteen_weeks("Rainy Pediatrics")) != first
    last = report.weeks[-1]
    changed = replace(report, weeks=(*report.weeks[:-1], replace(last, printed=6, issued=15,
                      by_language={"en": (13, 1), "es": (2, 0)})))  # fmt: skip
    assert render_chart(changed) != first


def test_renders_in_parallel_threads_alike() -> None:
    reports = [thirteen_weeks(), thirteen_weeks("Rainy Pediatrics")] * 2
    serial = [render_chart(r) for r in reports]
    with ThreadPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(render_chart, reports)) == serial


def test_edge_cases_render() -> None:
    cases = [
        report_of((0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0)),  # all zero
        report_of((3, 2, 1, 1)),  # a single week
        report_of((3, 2, 1, 1), (0, 0, 0, 0), (4, 0, 4, 0)),  # a week with no rate point
        report_of((5, 0, 5, 0), (0, 5, 0, 5)),  # 100 % rates on the axis' edge
        report_of((400, 300, 350, 10), (1, 0, 0, 0)),  # very unequal weeks
        report_of((3, 2, 1, 1), practice="Sunny Pediatrics and Adolescent Medicine " * 8),
        report_of((3, 2, 1, 1), practice="X" * 300),  # one long word
    ]
    pictures = {render_chart(report) for report in cases}
    assert len(pictures) == len(cases)
    assert all(size(png) == (1600, 900) for png in pictures)


def test_no_fixture_name_in_any_output() -> None:
    with FAMILIES_CSV.open(newline="") as f:
        names = {
            value
            for row in csv.DictReader(f)
            for key, value in row.items()
            if key.endswith(("first_name", "last_name", "middle_name", "email")) and value
        }
    assert names
    report = thirteen_weeks()
    png = render_chart(report)
    texts = [alt_text(report), to_csv(report), to_table(report)]
    texts += [data.decode("latin-1") for kind, data in chunks(png) if kind != b"IDAT"]
    for name in names:
        assert not any(name.lower() in text.lower() for text in texts), name
    # No text chunks at all: nothing but the picture leaves in the file.
    assert {kind for kind, _ in chunks(png)} <= {b"IHDR", b"pHYs", b"IDAT", b"IEND"}


def _marker_boxes(figure: Figure) -> list[Bbox]:
    """Every rate marker's square in display pixels (edge included)."""
    radius = (MARKER_PT / 2 + MARKER_EDGE_PT) * DPI / 72
    boxes = []
    for axes in figure.axes:
        for line in axes.get_lines():
            for x, y in line.get_xydata():
                if math.isnan(y):
                    continue
                cx, cy = axes.transData.transform((x, y))
                boxes.append(Bbox.from_extents(cx - radius, cy - radius, cx + radius, cy + radius))
    return boxes


def test_week_totals_are_never_under_a_rate_marker() -> None:
    """Many reports whose rate points land on, above and below their bars' tops."""
    rng = random.Random(20261207)
    for _ in range(40):
        issued = [(rng.randint(0, 30), rng.randint(0, 30)) for _ in range(rng.randint(1, 13))]
        weeks = [(e, p, rng.randint(0, e), rng.randint(0, p)) for e, p in issued]
        figure = draw_chart(report_of(*weeks))
        renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
        totals = [t for t in figure.axes[0].texts if t.get_gid() == TOTAL_GID]
        assert [t.get_text() for t in totals] == [str(e + p) for e, p, _, _ in weeks]
        markers = _marker_boxes(figure)
        for total in totals:
            label = total.get_window_extent(renderer)
            assert not any(label.overlaps(marker) for marker in markers), (weeks, total)


def test_a_few_weeks_fill_the_width() -> None:
    figure = draw_chart(report_of((3, 2, 1, 1), (4, 1, 2, 0), (2, 2, 1, 1), (5, 0, 3, 0)))
    bars = figure.axes[0]
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    drawn = Bbox.union([patch.get_window_extent(renderer) for patch in bars.patches])
    area = bars.get_window_extent(renderer)
    slot = area.width / 4
    assert drawn.x0 - area.x0 < 0.5 * slot and area.x1 - drawn.x1 < 0.5 * slot


def test_a_chart_without_a_practice_name_says_pinbot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.reports import chart
    from bot.runtime.cli import main

    titles: list[str] = []
    real = chart.draw_chart

    def spy(report: AdoptionReport) -> Figure:
        figure = real(report)
        titles.append(figure.texts[0].get_text())
        return figure

    monkeypatch.setattr(chart, "draw_chart", spy)
    monkeypatch.chdir(tmp_path)
    for name in ("PRACTICE_NAME", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["report", "adoption", "--weeks", "4", "--png", "chart.png"]) == 0
    assert titles == ["pinbot"]
