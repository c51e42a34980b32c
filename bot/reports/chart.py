"""The weekly adoption chart (SPEC §10) as PNG bytes, rendered in memory.

Stacked bars of PINs issued per week (emailed, printed) and, on a second axis, the share of each
week's PINs registered within 30 days. Rates that are only "so far" (the week's 30 days are not
over, see `bot.reports.figures`) are drawn hollow on a dashed line; a week with no PINs has no
rate point; the week under way, if any, is faded. Sized for Slack's preview: 1600 x 900 px,
16 pt and larger type, Okabe-Ito colours.

Thread-safe: a private Figure on an Agg canvas, never pyplot's global state, and no rcParams
changes (every size and colour is passed to the artist that uses it).
"""

from __future__ import annotations

import io
import math

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator, PercentFormatter

from bot.reports.figures import AdoptionReport, WeekFigures, day_month

WIDTH_PX, HEIGHT_PX, DPI = 1600, 900, 100

# Okabe & Ito (2008), "Color Universal Design": distinct under every common colour blindness.
EMAILED_COLOUR = "#0072B2"  # blue
PRINTED_COLOUR = "#E69F00"  # orange
RATE_COLOUR = "#000000"  # black, clear against both bars
GRID_COLOUR = "#DDDDDD"

TITLE_PT, SUBTITLE_PT, LABEL_PT, TICK_PT = 26, 18, 18, 16
LABEL_PAD_PT = 4  # a total's label above its bar (or its marker), clear of its edge
MARKER_PT = 11
MARKER_EDGE_PT = 2.5
AXES_LEFT, AXES_RIGHT = 0.07, 0.92  # of the figure's width
AXES_TOP, AXES_BOTTOM = 0.83, 0.2  # of the figure's height
RATE_TOP = 1.05  # the rate axis runs a little past 100 %, so a 100 % point is not clipped
BAR_WIDTH = 0.66  # of a week's slot
MIN_SLOTS = 6  # fewer weeks get thinner bars (as thick as MIN_SLOTS weeks'), not giant ones
TOTAL_GID = "week-total"


def render_chart(report: AdoptionReport) -> bytes:
    """The report's chart as a 1600 x 900 PNG."""
    out = io.BytesIO()
    draw_chart(report).savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def draw_chart(report: AdoptionReport) -> Figure:
    """The chart's figure (the week totals are the texts whose gid is TOTAL_GID)."""
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)  # attaches itself to the figure
    figure.subplots_adjust(left=AXES_LEFT, right=AXES_RIGHT, top=AXES_TOP, bottom=AXES_BOTTOM)
    _titles(figure, report)
    bars = figure.add_subplot()
    rates = bars.twinx()
    positions = list(range(len(report.weeks)))
    _draw_bars(bars, positions, report)
    _draw_rates(rates, positions, report)
    _legend(figure, report)
    return figure


def _titles(figure: Figure, report: AdoptionReport) -> None:
    title = figure.text(0.07, 0.95, "", fontsize=TITLE_PT, fontweight="bold", va="top")
    _fit(title, report.practice_name.strip(), max_px=WIDTH_PX * (1 - 2 * 0.07))
    subtitle = f"PINs issued per week and share registered within 30 days, {report.date_range}"
    figure.text(0.07, 0.885, subtitle, fontsize=SUBTITLE_PT, color="#333333", va="top")


def _fit(text: Text, words: str, *, max_px: float) -> None:
    """Set `words` on `text`, cut short with an ellipsis if they would be wider than `max_px`."""
    text.set_text(words)
    for _ in range(5):  # each cut is proportional, so two or three are enough
        width = text.get_window_extent().width  # measured with the figure's Agg renderer
        if width <= max_px:
            return
        keep = max(1, int(len(words) * max_px / width) - 2)
        words = words[:keep].rstrip() + "\N{HORIZONTAL ELLIPSIS}"
        text.set_text(words)


def _draw_bars(axes: Axes, positions: list[int], report: AdoptionReport) -> None:
    weeks = report.weeks
    emailed = [w.emailed for w in weeks]
    printed = [w.printed for w in weeks]
    totals = [w.issued for w in weeks]
    width = BAR_WIDTH * min(1.0, len(weeks) / MIN_SLOTS)
    lower = axes.bar(positions, emailed, width, color=EMAILED_COLOUR, zorder=2)
    upper = axes.bar(positions, printed, width, bottom=emailed, color=PRINTED_COLOUR, zorder=2)
    if not weeks[-1].complete:  # the week under way, faded: its counts are so far
        lower.patches[-1].set_alpha(0.45)
        upper.patches[-1].set_alpha(0.45)
    top = max(totals)
    axes.set_ylim(0, max(top * 1.12, 5))
    axes.set_xlim(-0.6, len(weeks) - 0.4)
    _label_totals(axes, weeks)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    axes.set_ylabel("PINs issued", fontsize=LABEL_PT)
    axes.set_xticks(positions, labels=_week_labels(weeks))
    axes.tick_params(labelsize=TICK_PT, length=0, pad=8)
    axes.grid(axis="y", color=GRID_COLOUR, zorder=0)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    if top == 0:
        axes.text(
            0.5,
            0.5,
            "No PINs were issued in these weeks",
            transform=axes.transAxes,
            ha="center",
            va="center",
            fontsize=LABEL_PT,
            color="#555555",
        )


def _label_totals(axes: Axes, weeks: tuple[WeekFigures, ...]) -> None:
    """Each week's total just above its bar, unless the rate line's marker or a segment of the
    line would cover it there: then above the marker, between bar and marker, or inside the
    bar's top, the first place that is clear (geometry in pixels from the axes' bottom)."""
    pt = DPI / 72  # px per point
    height_px = HEIGHT_PX * (AXES_TOP - AXES_BOTTOM)
    slot_px = WIDTH_PX * (AXES_RIGHT - AXES_LEFT) / len(weeks)
    px_per_pin = height_px / axes.get_ylim()[1]
    points = [None if w.rate is None else w.rate / RATE_TOP * height_px for w in weeks]
    for i, week in enumerate(weeks):
        label = str(week.issued)
        box = _LabelBox(half_w=len(label) * TICK_PT * pt * 0.35 + 2, half_h=TICK_PT * pt / 2 + 1)
        y = box.best_place(
            top_px=week.issued * px_per_pin,
            ceiling_px=height_px,
            point=points[i],
            neighbours=(_near(points, i - 1, -slot_px), _near(points, i + 1, slot_px)),
        )
        axes.text(i, y / px_per_pin, label, ha="center", va="center", fontsize=TICK_PT,
                  zorder=4, gid=TOTAL_GID)  # fmt: skip


def _near(points: list[float | None], index: int, dx: float) -> tuple[float, float] | None:
    """A neighbouring week's rate point, as (x offset in px, height in px), if it has one."""
    if not 0 <= index < len(points) or points[index] is None:
        return None
    return dx, points[index] or 0.0


class _LabelBox:
    """A total's label, centred on its week: where it can go without touching the rate line."""

    PAD_PX = LABEL_PAD_PT * DPI / 72
    MARKER_PX = (MARKER_PT / 2 + MARKER_EDGE_PT) * DPI / 72

    def __init__(self, *, half_w: float, half_h: float) -> None:
        self.half_w, self.half_h = half_w, half_h

    def best_place(
        self,
        *,
        top_px: float,
        ceiling_px: float,
        point: float | None,
        neighbours: tuple[tuple[float, float] | None, ...],
    ) -> float:
        above_bar = top_px + self.PAD_PX + self.half_h
        if point is None:
            return above_bar
        clear = self.MARKER_PX + self.PAD_PX + self.half_h
        candidates = [
            above_bar,
            point + clear,  # above the marker
            point - clear,  # between the bar and the marker
            top_px - self.PAD_PX - self.half_h,  # inside the bar's top
        ]
        fits = [
            y
            for y in candidates
            if self.half_h <= y <= ceiling_px - self.half_h
            and (y >= above_bar or y <= top_px - self.PAD_PX - self.half_h)  # not on the edge
            and abs(y - point) >= clear - 0.5
        ]
        clean = [y for y in fits if not self._crosses_line(y, point, neighbours)]
        return (clean or fits or [above_bar])[0]

    def _crosses_line(
        self, y: float, point: float, neighbours: tuple[tuple[float, float] | None, ...]
    ) -> bool:
        """Does a segment from this week's point to a neighbour's pass through the label?"""
        for neighbour in neighbours:
            if neighbour is None:
                continue
            dx, other = neighbour
            edge = self.half_w if dx > 0 else -self.half_w  # the label's side facing it
            at_edge = point + (other - point) * (edge / dx)
            low, high = sorted((point, at_edge))  # the segment's heights over the label
            if high >= y - self.half_h and low <= y + self.half_h:
                return True
        return False


def _draw_rates(axes: Axes, positions: list[int], report: AdoptionReport) -> None:
    weeks = report.weeks
    rates = [math.nan if w.rate is None else w.rate for w in weeks]
    final = [r if w.window_closed else math.nan for r, w in zip(rates, weeks, strict=True)]
    so_far = [math.nan if w.window_closed else r for r, w in zip(rates, weeks, strict=True)]
    closed = [i for i, w in enumerate(weeks) if w.window_closed]
    if closed and closed[-1] + 1 < len(weeks):
        # The dashed line starts at the last final point, so the two read as one series; the
        # solid line is drawn after it, so that shared point shows filled.
        so_far[closed[-1]] = final[closed[-1]]
    _rate_line(axes, positions, so_far, dashed=True)
    _rate_line(axes, positions, final, dashed=False)
    axes.set_ylim(0, RATE_TOP)
    axes.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    axes.set_ylabel("Registered within 30 days", fontsize=LABEL_PT)
    axes.tick_params(labelsize=TICK_PT, length=0, pad=8)
    for side in ("top", "left"):
        axes.spines[side].set_visible(False)


def _rate_line(axes: Axes | None, xs: list[int], ys: list[float], *, dashed: bool) -> Line2D:
    """One rate series on `axes`, or just its legend handle when `axes` is None."""
    line = Line2D(xs, ys) if axes is None else axes.plot(xs, ys)[0]
    line.set_color(RATE_COLOUR)
    line.set_linewidth(3)
    line.set_linestyle("--" if dashed else "-")
    line.set_marker("o")
    line.set_markersize(MARKER_PT)
    line.set_markeredgewidth(MARKER_EDGE_PT)
    line.set_markerfacecolor("white" if dashed else RATE_COLOUR)
    line.set_zorder(3)
    return line


def _legend(figure: Figure, report: AdoptionReport) -> None:
    solid = _rate_line(None, [], [], dashed=False)
    solid.set_label("Registered within 30 days")
    handles: list[Artist] = [
        Patch(color=EMAILED_COLOUR, label="Emailed"),
        Patch(color=PRINTED_COLOUR, label="Printed"),
        solid,
    ]
    if any(not w.window_closed and w.rate is not None for w in report.weeks):
        dashed = _rate_line(None, [], [], dashed=True)
        dashed.set_label("So far (30 days not over)")
        handles.append(dashed)
    figure.legend(
        handles=handles,
        loc="lower center",
        ncols=len(handles),
        fontsize=TICK_PT,
        frameon=False,
        bbox_to_anchor=(0.5, 0.01),
    )


def _week_labels(weeks: tuple[WeekFigures, ...]) -> list[str]:
    """'7 Sep' per week; the first week and the first week of a new year also get the year."""
    labels = []
    for i, week in enumerate(weeks):
        label = day_month(week.week_start)
        if i and week.week_start.year != weeks[i - 1].week_start.year:  # else in the subtitle
            label += f"\n{week.week_start.year}"
        if not week.complete:
            label += "\n(so far)" if i else " (so far)"
        labels.append(label)
    return labels
