"""Stooq daily CSV: ``GET {base_url}/q/d/l/?s=<ticker>&i=d`` → ``Date,Open,High,Low,Close,Volume``.

Stooq is an end-of-day source: its rows carry a date, no time. During a session the last row
is the current day, updated with a delay; ``fetch_latest`` returns that row's close as a
``price`` observation. Because there is no time of day, a row dated today (UTC) is stamped with
the fetch time, and an older row with its date at 00:00 UTC (so the sanity checker can tell a
frozen file from a live one only at day granularity — prefer it as a fallback).

Stooq answers some clients with HTTP 200 and a body that is not CSV: ``No data``,
``Exceeded the daily hits limit``, an HTML proof-of-work challenge page, or rows of ``N/D``.
Each is a :class:`SourceError`, never a parse crash or a bogus price; the hit limit also puts
the source into a cool-down.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import ClassVar

from bot.config import Duration, SourceParams, SymbolConfig
from bot.errors import SourceError
from bot.model import DailySeries, Observation
from bot.sources.base import SOURCES
from bot.sources.csvfile import parse_ohlc_csv
from bot.sources.http import HttpSource, HttpSourceParams, build_url, looks_like_html

STOOQ_COLUMNS = ("Date", "Open", "High", "Low", "Close")
HITS_LIMIT = "exceeded the daily hits limit"


class StooqParams(HttpSourceParams):
    """``type: stooq`` options."""

    latest_window: Duration = timedelta(days=14)
    """How many days ``fetch_latest`` downloads (``d1``): the full history is megabytes."""
    limit_cooldown: Duration = timedelta(hours=1)
    """Pause after "Exceeded the daily hits limit"."""


class StooqHitsLimit(SourceError):
    """Stooq refused with "Exceeded the daily hits limit" (HTTP 200)."""


def parse_stooq_csv(text: str, *, symbol: str | None = None, url: str | None = None) -> DailySeries:
    """Parse a Stooq daily CSV body into closes by date.

    Rows whose close is ``N/D`` are skipped; a body with no usable row, or any of Stooq's
    non-CSV answers, raises :class:`SourceError` naming ``symbol`` and ``url``.
    """
    body = text.lstrip("\ufeff").strip()
    lowered = body[:200].lower()
    if not body:
        raise SourceError("empty response from Stooq", symbol=symbol, url=url)
    if looks_like_html(body):
        raise SourceError(
            "Stooq sent an HTML page (proof-of-work/bot challenge) instead of CSV",
            symbol=symbol,
            url=url,
        )
    if HITS_LIMIT in lowered:
        raise StooqHitsLimit(
            "Stooq refused: exceeded the daily hits limit", symbol=symbol, url=url, retryable=True
        )
    if lowered.startswith("no data"):
        raise SourceError("Stooq has no data for this ticker", symbol=symbol, url=url)
    header = [part.strip() for part in body.split("\n", 1)[0].split(",")]
    if tuple(header[: len(STOOQ_COLUMNS)]) != STOOQ_COLUMNS:
        raise SourceError(
            f"Stooq sent something that is not its CSV (starts {body[:60]!r})",
            symbol=symbol,
            url=url,
        )
    return parse_ohlc_csv(body, source="Stooq", symbol=symbol, url=url)


@SOURCES.register("stooq")
class StooqSource(HttpSource):
    """Stooq end-of-day CSV (daily history; last row as a delayed quote)."""

    type_name: ClassVar[str] = "stooq"
    params_model: ClassVar[type[SourceParams]] = StooqParams
    default_base_url: ClassVar[str] = "https://stooq.com"

    def _download(
        self, symbol_id: str, spec: SymbolConfig, start: date | None, end: date | None
    ) -> DailySeries:
        url = f"{self.base_url}/q/d/l/"
        query = {"s": spec.ticker_for(self.name, symbol_id).lower(), "i": "d"}
        if start is not None:
            query["d1"] = start.strftime("%Y%m%d")
        if end is not None:
            query["d2"] = end.strftime("%Y%m%d")
        text = self.http.get(url, symbol=symbol_id, params=query)
        try:
            series = parse_stooq_csv(text, symbol=symbol_id, url=build_url(url, query))
        except StooqHitsLimit:
            params = self.params
            pause = params.limit_cooldown if isinstance(params, StooqParams) else None
            self.http.enter_cooldown(
                pause.total_seconds() if pause else None, reason="Stooq daily hits limit"
            )
            raise
        if start is not None or end is not None:
            series = _trim(series, start, end)
        return series

    def fetch_daily(
        self, symbol_id: str, spec: SymbolConfig, start: date | None, end: date | None
    ) -> DailySeries:
        """Daily closes between ``start`` and ``end`` (inclusive; ``None`` = unbounded)."""
        return self._download(symbol_id, spec, start, end)

    def fetch_latest(self, symbol_id: str, spec: SymbolConfig) -> Observation:
        """The last row's close: end-of-day data (delayed intraday for the current day)."""
        params = self.params
        window = params.latest_window if isinstance(params, StooqParams) else timedelta(days=14)
        now = self.clock.now()
        series = self._download(symbol_id, spec, (now - window).date(), None)
        last = series.last()
        if last is None:
            raise SourceError(
                f"Stooq has no rows since {(now - window).date().isoformat()}", symbol=symbol_id
            )
        day, close = last
        # No time of day in the file: today's row is "as of now", older rows as of their date.
        when = now if day >= now.date() else datetime.combine(day, time(0, 0), UTC)
        return Observation(
            symbol=symbol_id, time=when, value=close, kind="price", session=day, source=self.name
        )


def _trim(series: DailySeries, start: date | None, end: date | None) -> DailySeries:
    keep = [
        i
        for i, d in enumerate(series.dates)
        if (start is None or d >= start) and (end is None or d <= end)
    ]
    return DailySeries([series.dates[i] for i in keep], [series.values[i] for i in keep])
