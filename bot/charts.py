"""STAND-IN for the ``charts`` engineer's module (issue 10): keep THEIR version at merge.

Only the signature is shared: :func:`render_chart` draws a PNG of daily closes with matplotlib
(Agg backend, imported lazily so start-up does not pay for it)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from bot.model import DailySeries

_PERIODS = {"1m": 31, "3m": 92, "6m": 183, "1y": 366, "5y": 1827}


def render_chart(
    series: DailySeries,
    *,
    symbol_name: str,
    record: tuple[date, float] | None,
    levels: Sequence[float],
    alerts: Sequence[tuple[date, float, str]],
    period: str,
) -> bytes:
    """A PNG of ``series``' closes over ``period`` with the record, levels and alert markers."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    dates, values = list(series.dates), list(series.values)
    days = _PERIODS.get(period)
    if days is not None and dates:
        start = dates[-1] - timedelta(days=days)
        keep = [i for i, d in enumerate(dates) if d >= start]
        dates, values = [dates[i] for i in keep], [values[i] for i in keep]
    figure = Figure(figsize=(8, 4.5), dpi=100)
    axes = figure.subplots()
    xs: Any = dates  # matplotlib's date converter takes dates; its stubs say floats
    axes.plot(xs, values, linewidth=2)
    for level in levels:
        axes.axhline(level, linestyle="--", linewidth=1)
    if record is not None:
        axes.axhline(record[1], color="green", linewidth=1)
    for day, value, _label in alerts:
        marked: Any = [day]
        axes.plot(marked, [value], marker="v", color="red")
    axes.set_title(f"{symbol_name} ({period})", fontsize=16)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
