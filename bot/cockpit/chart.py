"""The pictures of ``/chart``, the **Chart** button and ``chart: true`` alerts: a symbol's daily
closes with its record close, configured levels and the alerts that fired on it."""

from __future__ import annotations

import asyncio
from datetime import date

from bot.charts import chart_levels
from bot.cockpit.status import record_of
from bot.model import DailySeries
from bot.worker import Worker


async def series_of(worker: Worker, symbol: str) -> DailySeries | None:
    """The daily history of ``symbol``: the worker's loaded one, else the store's cache."""
    history = worker.history
    if symbol in history and len(history.get(symbol)):
        return history.get(symbol)
    return await asyncio.to_thread(worker.store.load_history, symbol)


def alert_marks(worker: Worker, symbol: str) -> list[tuple[date, float, str]]:
    """(day, value, rule id) of each alert on ``symbol`` that was sent (once per alert)."""
    try:
        rows = worker.store.outbox("sent")
    except NotImplementedError:
        return []
    seen: dict[str, tuple[date, float, str]] = {}
    for row in rows:
        alert = row.alert
        if alert.symbol == symbol and alert.id not in seen:
            day = alert.day or alert.time.astimezone(worker.config.tz).date()
            seen[alert.id] = (day, alert.value, alert.rule_id)
    return list(seen.values())


async def chart_png(worker: Worker, symbol: str, period: str) -> bytes | None:
    """The PNG of ``symbol`` over ``period`` (None without history)."""
    series = await series_of(worker, symbol)
    if series is None or not len(series):
        return None
    alerts = await asyncio.to_thread(alert_marks, worker, symbol)
    from bot.charts import render_chart  # matplotlib: loaded with the first chart only

    return await asyncio.to_thread(
        render_chart,
        series,
        symbol_name=worker.config.symbol_name(symbol),
        record=record_of(series),
        levels=chart_levels(worker.config, symbol),
        alerts=alerts,
        period=period,
    )
