"""Drawing a chart: the PNG of a symbol's daily closes with its record, levels and alerts.

:func:`render_chart` draws what :func:`bot.charts.chart_for` gathered (or what a caller passes
itself). matplotlib is imported inside it only (``Figure`` + the Agg canvas, never ``pyplot``:
no global figure registry, no GUI backend, safe in a worker thread), so importing this module
— and starting the bot or running ``check`` — costs nothing.

The picture is made for a phone: 1280×960 pixels (Telegram's photo size), fonts that stay
legible when the picture is shown 400 points wide, thousands separators, a few dated ticks.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date
from typing import Any

from bot.errors import BotError
from bot.model import DailySeries

#: Periods a chart can cover, each ending at the series' last date.
PERIODS: tuple[str, ...] = ("1m", "3m", "6m", "1y", "5y", "max")
_MONTHS = {"1m": 1, "3m": 3, "6m": 6, "1y": 12, "5y": 60}

# 6.4 × 4.8 inches at 200 dpi = 1280 × 960 px: Telegram sends photos at most 1280 px wide,
# so nothing is lost to its resizing; a phone shows it about 3× smaller, hence the big fonts.
_SIZE = (6.4, 4.8)
_DPI = 200
_LINE = "#1f4e99"
_RECORD = "#1a7f37"
_LEVEL = "#c75b00"
_UP, _DOWN = "#1a7f37", "#cf222e"
_MARKERS = ("o", "D", "s", "^", "v", "P", "X")
_MARKER_COLOURS = ("#d62728", "#6f42c1", "#0a9396", "#e6a100", "#8c564b", "#e377c2", "#7f7f7f")


class ChartError(BotError):
    """A chart cannot be drawn: unknown period, no data for the symbol in the window."""


AlertMark = tuple[date, float, str]


def period_start(last: date, period: str) -> date | None:
    """First day of a ``period`` window ending at ``last`` (``None`` for ``max``): the same
    day of the month ``N`` months earlier (clamped to the month's end), plus one day."""
    if period not in PERIODS:
        raise ChartError(f"unknown period {period!r}: use one of {'|'.join(PERIODS)}")
    months = _MONTHS.get(period)
    if months is None:
        return None
    index = last.year * 12 + last.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    day = min(last.day, _month_days(year, month))
    return date.fromordinal(date(year, month, day).toordinal() + 1)


def _month_days(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - date(year, month, 1)).days


def rows_from(series: DailySeries, start: date) -> DailySeries:
    """Rows dated ``start`` or later."""
    i = series.index_before(start) + 1
    return DailySeries(
        series.dates[i:], series.values[i:], {k: v[i:] for k, v in series.columns.items()}
    )


def slice_period(series: DailySeries, period: str) -> DailySeries:
    """The rows of ``series`` in the ``period`` window ending at its last date."""
    last = series.last()
    first = period_start(last[0], period) if last is not None else None
    return series if first is None else rows_from(series, first)


# ---------------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------------


def render_chart(
    series: DailySeries,
    *,
    symbol_name: str,
    record: tuple[date, float] | None,
    levels: Sequence[float],
    alerts: Sequence[tuple[date, float, str]],
    period: str,
) -> bytes:
    """PNG bytes: the daily closes of ``series`` over ``period`` (1m|3m|6m|1y|5y|max, ending at
    the series' last date), the ``record`` close (dashed, green), each of ``levels`` (dotted,
    orange), and a marker per alert ``(day, value, label)`` in the window (one legend entry
    per label, with its count).

    A level or record far outside the window's range is not allowed to squash the line into a
    strip: it is named at the chart's top or bottom edge with its distance instead.
    Raises :class:`ChartError` for an unknown period or an empty window.
    """
    window = slice_period(series, period)
    if not len(window):
        raise ChartError(f"no daily closes for {symbol_name} to chart")
    # Lazily: start-up, `check` and the worker's memory never pay for matplotlib.
    import numpy as np
    from matplotlib import dates as mdates
    from matplotlib import ticker
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    days = np.array(window.dates, dtype="datetime64[D]")
    values = np.array(window.values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if not len(finite):
        raise ChartError(f"no daily closes for {symbol_name} to chart")
    low, high = float(finite.min()), float(finite.max())
    last_index = int(np.flatnonzero(np.isfinite(values))[-1])  # a trailing NaN is no close
    last_day, last_value = window.dates[last_index], float(values[last_index])
    span = high - low or max(abs(high) * 0.01, 0.01)
    decimals = 0 if span >= 50 else 1 if span >= 5 else 2
    # A rate series (FRED: lower/upper columns) moves in steps; closes are a line.
    stepped = "lower" in window.columns
    if stepped:
        decimals = 2  # rates are quoted to the basis point: 5.50, not 5.5

    def fmt(value: float) -> str:
        return f"{value:,.{decimals}f}"

    fig = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    _style(ax)

    drawstyle = "steps-post" if stepped else "default"
    ax.plot(days, values, color=_LINE, linewidth=2.2, drawstyle=drawstyle, zorder=3)

    # What to show: the line's range, stretched to a record/level only if that is close by
    # (within 60% of the line's own range), so a far level does not flatten the line.
    reach = span * 0.6
    lines: list[tuple[float, str, str, str]] = []  # value, label, colour, linestyle
    if record is not None:
        lines.append((record[1], f"record {fmt(record[1])}", _RECORD, "--"))
    for level in levels:
        if record is None or level != record[1]:
            lines.append((float(level), fmt(level), _LEVEL, ":"))
    lines.sort(key=lambda line: line[0])
    shown = [v for v, *_ in lines if low - reach <= v <= high + reach]
    y_low, y_high = min([low, *shown]), max([high, *shown])
    pad = (y_high - y_low or span) * 0.06
    # Room for the note naming a far level at that edge (see below), clear of the line.
    far_up = any(v > high + reach for v, *_ in lines)
    far_down = any(v < low - reach for v, *_ in lines)
    # ... and above the top line for its label (see _label_spot).
    top = 2.5 if far_up else 1.8 if shown else 1.0
    ax.set_ylim(y_low - pad * (2.5 if far_down else 1), y_high + pad * top)
    below = ax.get_ylim()[0]
    ax.fill_between(days, values, below, color=_LINE, alpha=0.08, step=_step(stepped), zorder=2)

    above_notes: list[str] = []
    below_notes: list[str] = []
    y_min, y_max = ax.get_ylim()
    placed: list[tuple[float, float, float]] = []  # x, bottom, top of each label (axes fraction)
    drawn = [(v - y_min) / (y_max - y_min) for v, *_ in lines if low - reach <= v <= high + reach]
    for value, label, colour, style in lines:
        if low - reach <= value <= high + reach:
            ax.axhline(value, color=colour, linestyle=style, linewidth=1.8, zorder=2.5)
            x, above = _label_spot((value - y_min) / (y_max - y_min), placed, drawn)
            ax.annotate(
                label,
                xy=(x, value),
                xycoords=("axes fraction", "data"),
                xytext=(0, 3 if above else -3),
                textcoords="offset points",
                color=colour,
                fontsize=11,
                fontweight="bold",
                ha="left" if x < 0.5 else "right",
                va="bottom" if above else "top",
                zorder=6,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7},
            )
        else:
            distance = (value / last_value - 1) * 100 if last_value else 0.0
            note = f"{label} ({distance:+.1f}%)"
            (above_notes if value > high else below_notes).append(note)
    # Nearest first: the lines are in ascending order, so the notes below are reversed.
    for notes, y, arrow in ((above_notes, 0.985, "▲"), (below_notes[::-1], 0.015, "▼")):
        if notes:
            ax.text(
                0.99,
                y,
                f"{arrow} " + "  ".join(notes),
                transform=ax.transAxes,
                ha="right",
                va="top" if y > 0.5 else "bottom",
                fontsize=11,
                fontweight="bold",
                color=_LEVEL,
                zorder=6,
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8},
            )

    if record is not None and window.dates[0] <= record[0] <= last_day:
        ax.plot(
            [np.datetime64(record[0], "D")],
            [record[1]],
            marker="*",
            markersize=16,
            color=_RECORD,
            markeredgecolor="white",
            linestyle="none",
            zorder=5,
        )

    _draw_alerts(ax, alerts, window.dates[0], last_day, np)

    # The last close: a dot, and in the title with the change over the window.
    ax.plot([days[last_index]], [last_value], marker="o", markersize=7, color=_LINE, zorder=5)
    first_value = float(finite[0])
    # "max" (or a window clipped by the caller) says since when: "+5.7% since Jan 2020".
    first_day = window.dates[0]
    since = f"{first_day:%Y}" if (last_day - first_day).days > 730 else f"{first_day:%b %Y}"
    span_text = f"since {since}" if period == "max" else period
    if stepped:  # a rate's change is in percentage points: +1,400% from 0.25 says nothing
        change = last_value - first_value
        change_text = f"{change:+.2f} pp {span_text}"
        lower = window.columns["lower"][-1]
        latest = (
            f"latest {lower:,.2f}–{last_value:,.2f}"
            if lower == lower
            else f"latest {last_value:,.2f}"
        )
    else:
        change = (last_value / first_value - 1) * 100 if first_value else 0.0
        change_text = f"{change:+,.1f}% {span_text}"
        latest = f"last close {last_value:,.2f}"
    subtitle = f"{latest} on {last_day.isoformat()}"
    ax.set_title(symbol_name, loc="left", fontsize=17, fontweight="bold", pad=26)
    if len(symbol_name) + len(change_text) <= 34:  # both fit on the title line
        ax.set_title(
            change_text,
            loc="right",
            fontsize=15,
            fontweight="bold",
            color=_UP if change >= 0 else _DOWN,
            pad=26,
        )
    else:  # a long name: the change goes on the line below rather than over the name
        subtitle = f"{subtitle}  ·  {change_text}"
    ax.text(
        0.0,
        1.015,
        subtitle,
        transform=ax.transAxes,
        ha="left",
        va="bottom",
        fontsize=12,
        color="#3d444d",
    )

    locator = mdates.AutoDateLocator(minticks=3, maxticks=6)
    # Up to yearly steps of months: a 2–3 year window gets half-yearly or yearly ticks.
    locator.intervald[mdates.MONTHLY] = [1, 2, 3, 4, 6, 12]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))
    ax.yaxis.set_major_locator(ticker.MaxNLocator(nbins=5))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _pos: fmt(v)))
    if len(days) > 1:
        ax.set_xlim(days[0], days[-1])
    ax.margins(x=0.02)

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


_LABEL_HEIGHT = 0.055  # a level label's height, as a fraction of the plot's height


def _label_spot(
    y: float, placed: list[tuple[float, float, float]], lines: Sequence[float]
) -> tuple[float, bool]:
    """Where the label of the line at ``y`` goes (fractions of the plot's height) so it
    covers no other label and no other line: left of the plot above its line, else below it,
    else the same on the right. Records the choice in ``placed``; returns ``(x, above)``."""
    spots = ((0.01, True), (0.01, False), (0.99, True), (0.99, False))
    for x, above in spots:
        bottom, top = (y, y + _LABEL_HEIGHT) if above else (y - _LABEL_HEIGHT, y)
        if top > 1.0 or bottom < 0.0 or any(bottom < line < top for line in lines):
            continue
        if all(px != x or top <= pb or bottom >= pt for px, pb, pt in placed):
            placed.append((x, bottom, top))
            return x, above
    placed.append((0.01, y, y + _LABEL_HEIGHT))  # crowded: above on the left all the same
    return 0.01, True


def _step(stepped: bool) -> Any:
    return "post" if stepped else None


def _style(ax: Any) -> None:
    ax.tick_params(labelsize=13, length=4)
    ax.grid(True, color="#d0d7de", linewidth=0.8, zorder=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_facecolor("white")


def _draw_alerts(ax: Any, alerts: Sequence[AlertMark], first: date, last: date, np: Any) -> None:
    """One marker style per label; a legend entry ``label ×N`` each (in the window only)."""
    by_label: dict[str, list[tuple[date, float]]] = {}
    for day, value, label in alerts:
        if first <= day <= last:
            by_label.setdefault(label, []).append((day, value))
    for i, (label, points) in enumerate(by_label.items()):
        ax.scatter(
            np.array([d for d, _ in points], dtype="datetime64[D]"),
            [v for _, v in points],
            marker=_MARKERS[i % len(_MARKERS)],
            s=75,
            color=_MARKER_COLOURS[i % len(_MARKER_COLOURS)],
            edgecolors="white",
            linewidths=1.0,
            zorder=7,
            label=f"{label} ×{len(points):,}",
        )
    if by_label:
        # Below the plot: inside it, the legend would hide the level labels or the line.
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(0.0, -0.09),
            ncols=min(len(by_label), 3),
            fontsize=11,
            frameon=False,
            handletextpad=0.2,
            columnspacing=1.0,
        )
