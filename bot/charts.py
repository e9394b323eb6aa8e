"""Charts as pictures: what a symbol's chart shows, gathered from the config and history.

One path for every picture: ``/chart`` and the **Chart** button in Telegram, ``python -m bot
chart`` and ``python -m bot backtest --chart`` all call :func:`chart_for`, which gathers the
record close, the levels of the rules on the symbol and the alert markers, and hands them to
:func:`~bot.chart_picture.render_chart` (re-exported here), which draws them. Neither module
imports matplotlib until a picture is drawn.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING

from bot.chart_picture import (
    PERIODS,
    AlertMark,
    ChartError,
    period_start,
    render_chart,
    rows_from,
    slice_period,
)
from bot.model import Alert, DailySeries, History

if TYPE_CHECKING:
    from bot.config import Config

__all__ = [
    "PERIODS",
    "AlertMark",
    "ChartError",
    "alert_marks",
    "chart_for",
    "chart_levels",
    "period_start",
    "record_close",
    "render_chart",
    "slice_period",
]

# ---------------------------------------------------------------------------------------------
# Gathering: config + history (+ alerts) -> what to draw
# ---------------------------------------------------------------------------------------------


def chart_for(
    config: Config,
    symbol_id: str,
    history: History,
    alerts: Iterable[Alert | AlertMark] = (),
    period: str = "1y",
    *,
    start: date | None = None,
    end: date | None = None,
) -> bytes:
    """The PNG of ``symbol_id``: its daily closes over ``period`` (ending at ``end`` or the
    last row), optionally starting no earlier than ``start``.

    The record close is the highest close up to the chart's last day (it may lie before the
    window: the line is drawn all the same). Levels are those of the enabled rules on the
    symbol (:func:`chart_levels`). ``alerts`` are :class:`~bot.model.Alert` objects (those of
    rules on this symbol are marked, on that day's close) or ready ``(day, value, label)``
    marks. Raises :class:`ChartError` when there is nothing to draw.
    """
    if period not in PERIODS:
        raise ChartError(f"unknown period {period!r}: use one of {'|'.join(PERIODS)}")
    series = history.get(symbol_id)
    if end is not None:
        series = series.until(end)
    record = record_close(series)
    if start is not None:
        series = rows_from(series, start)
    if not len(series):
        span = (
            f" from {start or 'the first row'} to {end or 'the last row'}" if (start or end) else ""
        )
        raise ChartError(f"no daily closes for {symbol_id}{span}")
    marks = alert_marks(config, symbol_id, series, alerts)
    return render_chart(
        series,
        symbol_name=config.symbol_name(symbol_id),
        record=record,
        levels=chart_levels(config, symbol_id),
        alerts=marks,
        period=period,
    )


def chart_levels(config: Config, symbol_id: str) -> list[float]:
    """Levels of the enabled rules on ``symbol_id`` (sorted, no duplicates): every rule whose
    params have ``symbol == symbol_id`` and a ``levels`` list (via ``all_levels()``, as
    ``cross``) or a numeric ``level`` (as ``near``). A rule type with levels of its own gets
    charted by exposing one of these, without a change here."""
    found: set[float] = set()
    for params in config.rules:
        if not params.enabled or getattr(params, "symbol", None) != symbol_id:
            continue
        all_levels = getattr(params, "all_levels", None)
        if callable(all_levels):
            found.update(float(v) for v in all_levels())
            continue
        level = getattr(params, "level", None)
        if isinstance(level, int | float) and not isinstance(level, bool):
            found.add(float(level))
    return sorted(found)


def alert_marks(
    config: Config,
    symbol_id: str,
    series: DailySeries,
    alerts: Iterable[Alert | AlertMark],
) -> list[AlertMark]:
    """``(day, value, rule id)`` for each alert of a rule *on* ``symbol_id``.

    An alert is placed on its day's close when the series has that day (a ``relative``
    alert's value is a spread, an intraday ``cross`` alert's a price: on a chart of closes the
    marker belongs on the line), else at its own value. Alerts of rules that only mention the
    symbol (a ``digest`` over several symbols, one a day) are not events of this symbol and
    are left out. Ready-made tuples pass through unchanged.
    """
    on_symbol = {p.id for p in config.rules if getattr(p, "symbol", None) == symbol_id}
    closes = dict(zip(series.dates, series.values, strict=True))
    tz = config.tz
    marks: list[AlertMark] = []
    for alert in alerts:
        if not isinstance(alert, Alert):
            marks.append(alert)
            continue
        if alert.symbol != symbol_id or alert.rule_id not in on_symbol:
            continue
        day = alert.day or alert.time.astimezone(tz).date()
        marks.append((day, closes.get(day, alert.value), alert.rule_id))
    return marks


def record_close(series: DailySeries) -> tuple[date, float] | None:
    """The highest close of ``series`` and its (first) date; ``None`` for an empty series."""
    best: tuple[date, float] | None = None
    for day, value in zip(series.dates, series.values, strict=True):
        if value == value and (best is None or value > best[1]):  # value == value: not NaN
            best = (day, value)
    return best
