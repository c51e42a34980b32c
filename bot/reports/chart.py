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
from matplotlib.container import BarContainer
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
LABEL_PAD_PT = 4  # a total's label above its bar
INSIDE_PAD_PT = TICK_PT + 14  # ... or inside it, clear of a rate point on the bar's edge
MARKER_PT = 11
AXES_TOP, AXES_BOTTOM = 0.83, 0.2  # of the figure's height
RATE_TOP = 1.05  # the rate axis runs a little past 100 %, so a 100 % point is not clipped
MIN_SLOTS = 6


def render_chart(report: AdoptionReport) -> bytes:
    """The report's chart as a 1600 x 900 PNG."""
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)  # attaches itself to the figure
    figure.subplots_adjust(left=0.07, right=0.92, top=AXES_TOP, bottom=AXES_BOTTOM)
    _titles(figure, report)
    bars = figure.add_subplot()
    rates = bars.twinx()
    positions = list(range(len(report.weeks)))
    _draw_bars(bars, positions, report)
    _draw_rates(rates, positions, report)
    _legend(figure, report)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


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
    width = 0.66
    lower = axes.bar(positions, emailed, width, color=EMAILED_COLOUR, zorder=2)
    upper = axes.bar(positions, printed, width, bottom=emailed, color=PRINTED_COLOUR, zorder=2)
    if not weeks[-1].complete:  # the week under way, faded: its counts are so far
        lower.patches[-1].set_alpha(0.45)
        upper.patches[-1].set_alpha(0.45)
    top = max(totals)
    axes.set_ylim(0, max(top * 1.12, 5))
    _label_totals(axes, upper, weeks)
    # A few weeks are drawn at the width of MIN_SLOTS weeks, centred, not as giant bars.
    margin = max(0, MIN_SLOTS - len(weeks)) / 2
    axes.set_xlim(-0.6 - margin, len(weeks) - 0.4 + margin)
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


def _label_totals(axes: Axes, upper: BarContainer, weeks: tuple[WeekFigures, ...]) -> None:
    """Each week's total above its bar, or inside the bar's top when the rate line's point
    (centred on the week, like the label) would cover it there."""
    pt = DPI / 72  # px per point
    axes_px = HEIGHT_PX * (AXES_TOP - AXES_BOTTOM)
    px_per_pin = axes_px / axes.get_ylim()[1]
    text_px = TICK_PT * pt
    clear_px = text_px / 2 + MARKER_PT / 2 * pt + 4  # label centre to point centre, no overlap
    above, inside = [], []
    for week in weeks:
        top_px = week.issued * px_per_pin
        above_mid = top_px + LABEL_PAD_PT * pt + text_px / 2
        inside_mid = top_px - INSIDE_PAD_PT * pt + text_px / 2
        move = False
        if week.rate is not None and inside_mid - text_px / 2 > 0:
            point = week.rate / RATE_TOP * axes_px
            move = abs(point - above_mid) < clear_px and abs(point - inside_mid) > abs(
                point - above_mid
            )
        above.append("" if move else str(week.issued))
        inside.append(str(week.issued) if move else "")
    axes.bar_label(upper, labels=above, padding=LABEL_PAD_PT, fontsize=TICK_PT)
    axes.bar_label(upper, labels=inside, padding=-INSIDE_PAD_PT, fontsize=TICK_PT)


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
    line.set_markeredgewidth(2.5)
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
