"""Yahoo Finance chart API: ``GET {base_url}/v8/finance/chart/{ticker}``.

Intraday quote: ``range``/``interval`` parameters; the price is ``meta.regularMarketPrice`` at
``meta.regularMarketTime``. Daily history: ``period1``/``period2`` (or ``range=max``) with
``interval=1d``; closes come from ``timestamp`` + ``indicators.quote[0].close``.

Facts from real responses this module relies on:

* the close arrays contain ``null`` for bars without a trade: such rows are skipped;
* ``meta.chartPreviousClose`` is the close *before the requested window*, not yesterday's close,
  so it is never used;
* bars are dated in the exchange's own zone (``meta.exchangeTimezoneName``, never a hard-coded
  zone): index/ETF bars carry the 09:30 open, futures bars may be stamped at midnight New York,
  and converting either to UTC first could land on the wrong day;
* errors come as ``{"chart": {"result": null, "error": {"code", "description"}}}``, with HTTP
  200 or 404; rate limiting and bot detection as HTTP 429 or an HTML page ("sad panda").
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, TypeGuard
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config import SourceParams, SymbolConfig
from bot.errors import SourceError
from bot.model import DailySeries, Observation
from bot.sources.base import SOURCES
from bot.sources.http import HttpSource, HttpSourceParams, build_url


class YahooParams(HttpSourceParams):
    """``type: yahoo`` options."""

    quote_range: str = "1d"
    """``range`` of the intraday quote request (the quote is in ``meta``; keep it small)."""
    quote_interval: str = "1d"
    """``interval`` of the intraday quote request."""


def chart_error_detail(text: str) -> str | None:
    """``code: description`` of a Yahoo ``chart.error`` body, or ``None`` if there is none."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    error = (data.get("chart") or {}).get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None
    code = error.get("code")
    description = error.get("description")
    return ": ".join(str(p) for p in (code, description) if p) or "unknown error"


def parse_chart(text: str, *, symbol: str | None = None, url: str | None = None) -> dict[str, Any]:
    """The ``chart.result[0]`` object of a chart response; :class:`SourceError` otherwise."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SourceError(
            f"invalid JSON from Yahoo (truncated?): {exc.msg} at char {exc.pos}"
            if isinstance(exc, json.JSONDecodeError)
            else f"invalid JSON from Yahoo: {exc}",
            symbol=symbol,
            url=url,
        ) from None
    chart = data.get("chart") if isinstance(data, dict) else None
    if not isinstance(chart, dict):
        raise SourceError("unexpected Yahoo response: no 'chart' object", symbol=symbol, url=url)
    detail = chart_error_detail(text)
    if detail:
        raise SourceError(f"Yahoo error {detail}", symbol=symbol, url=url)
    results = chart.get("result")
    if not isinstance(results, list) or not results or not isinstance(results[0], dict):
        raise SourceError("unexpected Yahoo response: empty chart.result", symbol=symbol, url=url)
    return results[0]


def _meta(result: dict[str, Any], symbol: str | None, url: str | None) -> dict[str, Any]:
    meta = result.get("meta")
    if not isinstance(meta, dict):
        raise SourceError(
            "unexpected Yahoo response: no chart.result[0].meta", symbol=symbol, url=url
        )
    return meta


def exchange_zone(
    result: dict[str, Any], *, symbol: str | None = None, url: str | None = None
) -> ZoneInfo:
    """The exchange's time zone from ``meta.exchangeTimezoneName``."""
    name = _meta(result, symbol, url).get("exchangeTimezoneName")
    if not isinstance(name, str) or not name:
        raise SourceError("Yahoo response lacks meta.exchangeTimezoneName", symbol=symbol, url=url)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SourceError(
            f"Yahoo sent an unknown exchange time zone {name!r}", symbol=symbol, url=url
        ) from None


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


# A quote or bar stamped further ahead than this is not data but garbage (clock skew between
# Yahoo and us is seconds; a bar of "today" in Tokyo is at most a day ahead of UTC midnight).
MAX_FUTURE = timedelta(days=2)


def epoch_time(
    stamp: Any,
    what: str,
    *,
    now: datetime | None = None,
    symbol: str | None = None,
    url: str | None = None,
) -> datetime:
    """A Yahoo epoch-seconds field as a UTC datetime; :class:`SourceError` (one clear line,
    no traceback) for a non-number, an epoch ``datetime`` cannot hold (year 10000, 1e300),
    or, given ``now``, a time more than :data:`MAX_FUTURE` ahead of it (year 2100)."""
    if not _number(stamp) or not math.isfinite(stamp):
        raise SourceError(f"Yahoo sent a non-numeric {what} {stamp!r}", symbol=symbol, url=url)
    try:
        when = datetime.fromtimestamp(stamp, UTC)
    except (OverflowError, OSError, ValueError):
        raise SourceError(
            f"Yahoo sent an out-of-range {what} {stamp!r}", symbol=symbol, url=url
        ) from None
    if now is not None and when > now + MAX_FUTURE:
        raise SourceError(
            f"Yahoo sent a {what} in the future ({when.isoformat()})", symbol=symbol, url=url
        )
    return when


def parse_quote(
    result: dict[str, Any],
    *,
    symbol: str,
    source: str = "",
    url: str | None = None,
    now: datetime | None = None,
) -> Observation:
    """The intraday quote in ``meta`` as a ``price`` observation.

    ``session`` is the quote's date in the exchange's zone. Non-finite or non-positive prices
    pass through on purpose: the sanity checker rejects (and logs) them in one place. A quote
    time that is not a usable epoch (or, given ``now``, lies in the future) is an error.
    """
    meta = _meta(result, symbol, url)
    price = meta.get("regularMarketPrice")
    stamp = meta.get("regularMarketTime")
    if not _number(price):
        raise SourceError(
            f"Yahoo response lacks a numeric meta.regularMarketPrice (got {price!r})",
            symbol=symbol,
            url=url,
        )
    if not _number(stamp) or not math.isfinite(stamp):
        raise SourceError(
            f"Yahoo response lacks a numeric meta.regularMarketTime (got {stamp!r})",
            symbol=symbol,
            url=url,
        )
    zone = exchange_zone(result, symbol=symbol, url=url)
    when = epoch_time(stamp, "meta.regularMarketTime", now=now, symbol=symbol, url=url)
    return Observation(
        symbol=symbol,
        time=when,
        value=float(price),
        kind="price",
        session=when.astimezone(zone).date(),
        source=source,
    )


def parse_daily_bars(
    result: dict[str, Any],
    *,
    symbol: str | None = None,
    url: str | None = None,
    start: date | None = None,
    end: date | None = None,
    now: datetime | None = None,
) -> DailySeries:
    """Daily closes from ``timestamp`` + ``indicators.quote[0].close``.

    Rows whose close is ``null`` (or not finite) are skipped. Each bar is dated in the exchange
    zone; when Yahoo repeats a day (the live bar next to the last full one) the later row wins.
    ``start``/``end`` (inclusive) filter by that date.
    """
    zone = exchange_zone(result, symbol=symbol, url=url)
    stamps = result.get("timestamp")
    if stamps is None:
        return DailySeries()  # Yahoo omits "timestamp" when the window holds no bars
    try:
        closes = result["indicators"]["quote"][0]["close"]
    except (KeyError, IndexError, TypeError):
        raise SourceError(
            "Yahoo response lacks indicators.quote[0].close", symbol=symbol, url=url
        ) from None
    if not isinstance(stamps, list) or not isinstance(closes, list) or len(stamps) != len(closes):
        raise SourceError(
            "Yahoo response has timestamp and close arrays of different lengths",
            symbol=symbol,
            url=url,
        )
    rows: dict[date, float] = {}
    for stamp, close in zip(stamps, closes, strict=True):
        if close is None or not _number(close) or not math.isfinite(close):
            continue
        # Negative epochs are fine: index history starts before 1970.
        moment = epoch_time(stamp, "bar timestamp", now=now, symbol=symbol, url=url)
        day = moment.astimezone(zone).date()
        if (start is not None and day < start) or (end is not None and day > end):
            continue
        rows[day] = float(close)
    days = sorted(rows)
    return DailySeries(days, [rows[d] for d in days])


@SOURCES.register("yahoo")
class YahooSource(HttpSource):
    """Yahoo Finance chart API (intraday quotes and daily history)."""

    type_name: ClassVar[str] = "yahoo"
    params_model: ClassVar[type[SourceParams]] = YahooParams
    default_base_url: ClassVar[str] = "https://query1.finance.yahoo.com"

    def chart_url(self, ticker: str) -> str:
        """The chart endpoint of ``ticker`` (``^`` and ``=`` percent-encoded)."""
        return f"{self.base_url}/v8/finance/chart/{quote(ticker, safe='')}"

    def _chart(self, symbol_id: str, spec: SymbolConfig, query: dict[str, str]) -> tuple[Any, str]:
        url = self.chart_url(spec.ticker_for(self.name, symbol_id))
        text = self.http.get(url, symbol=symbol_id, params=query, error_detail=chart_error_detail)
        full_url = build_url(url, query)
        return parse_chart(text, symbol=symbol_id, url=full_url), full_url

    def fetch_latest(self, symbol_id: str, spec: SymbolConfig) -> Observation:
        """The intraday quote (``meta.regularMarketPrice`` at ``regularMarketTime``)."""
        params = self.params
        assert isinstance(params, YahooParams)
        query = {"range": params.quote_range, "interval": params.quote_interval}
        result, url = self._chart(symbol_id, spec, query)
        return parse_quote(
            result, symbol=symbol_id, source=self.name, url=url, now=self.clock.now()
        )

    def fetch_daily(
        self, symbol_id: str, spec: SymbolConfig, start: date | None, end: date | None
    ) -> DailySeries:
        """Daily closes dated in the exchange zone, ``start``..``end`` inclusive.

        The request window is padded by a day or two on each side (a bar stamped 00:00 in
        Tokyo is the previous day in UTC) and trimmed locally by exchange-local date.
        """
        query: dict[str, str] = {"interval": "1d"}
        if start is None:
            query["range"] = "max"
        else:
            first = datetime.combine(start - timedelta(days=1), datetime.min.time(), UTC)
            last_day = end if end is not None else self.clock.now().date()
            last = datetime.combine(last_day + timedelta(days=2), datetime.min.time(), UTC)
            query["period1"] = str(int(first.timestamp()))
            query["period2"] = str(int(last.timestamp()))
        result, url = self._chart(symbol_id, spec, query)
        return parse_daily_bars(
            result, symbol=symbol_id, url=url, start=start, end=end, now=self.clock.now()
        )
