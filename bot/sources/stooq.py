"""Stooq CSV: daily bars and a delayed quote.

* Daily history: ``GET {base_url}/q/d/l/?s=<ticker>&i=d`` → ``Date,Open,High,Low,Close,Volume``.
* Latest value: the quote download ``GET {base_url}/q/l/?s=<ticker>&f=sd2t2ohlcv&h&e=csv`` →
  ``Symbol,Date,Time,Open,High,Low,Close,Volume``, one row. The observation is stamped with the
  row's own ``Date`` + ``Time``, never the fetch time, so a frozen Stooq feed stops advancing and
  the sanity checker's stale check fires. Stooq (a Polish site) writes those times in Polish
  local time (a US close shows as 22:00): ``quote_zone`` (default ``Europe/Warsaw``) says how to
  read them. The session date is that moment in the symbol's calendar zone.

Stooq answers some clients with HTTP 200 and a body that is not CSV: ``No data``,
``Exceeded the daily hits limit``, an HTML proof-of-work challenge page, or rows of ``N/D``.
Each is a :class:`SourceError`, never a parse crash or a bogus price; the hit limit also puts
the source into a cool-down.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator

from bot.config import Duration, SourceParams, SymbolConfig
from bot.errors import SourceError
from bot.model import DailySeries, Observation
from bot.sources.base import SOURCES
from bot.sources.csvfile import parse_ohlc_csv
from bot.sources.http import HttpSource, HttpSourceParams, build_url, looks_like_html

STOOQ_COLUMNS = ("Date", "Open", "High", "Low", "Close")
QUOTE_COLUMNS = ("Symbol", "Date", "Time", "Open", "High", "Low", "Close")
QUOTE_PATH = "/q/l/"
#: symbol, date (d2), time (t2), open, high, low, close, volume; ``h`` asks for the header row
QUOTE_FIELDS = "sd2t2ohlcv"
HITS_LIMIT = "exceeded the daily hits limit"
STOOQ_ZONE = "Europe/Warsaw"


class StooqParams(HttpSourceParams):
    """``type: stooq`` options."""

    limit_cooldown: Duration = timedelta(hours=1)
    """Pause after "Exceeded the daily hits limit"."""
    quote_zone: str = STOOQ_ZONE
    """Time zone of the ``Date``/``Time`` columns of Stooq's quote CSV."""

    @field_validator("quote_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class StooqHitsLimit(SourceError):
    """Stooq refused with "Exceeded the daily hits limit" (HTTP 200)."""


def parse_stooq_csv(text: str, *, symbol: str | None = None, url: str | None = None) -> DailySeries:
    """Parse a Stooq daily CSV body into closes by date.

    Rows whose close is ``N/D`` are skipped; a body with no usable row, or any of Stooq's
    non-CSV answers, raises :class:`SourceError` naming ``symbol`` and ``url``.
    """
    body = _check_answer(text, symbol, url)
    header = [part.strip() for part in body.split("\n", 1)[0].split(",")]
    if tuple(header[: len(STOOQ_COLUMNS)]) != STOOQ_COLUMNS:
        raise SourceError(
            f"Stooq sent something that is not its CSV (starts {body[:60]!r})",
            symbol=symbol,
            url=url,
        )
    return parse_ohlc_csv(body, source="Stooq", symbol=symbol, url=url)


def _check_answer(text: str, symbol: str | None, url: str | None) -> str:
    """The stripped body, or the :class:`SourceError` for one of Stooq's non-CSV answers."""
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
    return body


def parse_stooq_quote(
    text: str, zone: ZoneInfo, *, symbol: str | None = None, url: str | None = None
) -> tuple[datetime, float]:
    """``(time in UTC, close)`` of a Stooq quote CSV, the time read from ``Date`` + ``Time``
    in ``zone``. ``N/D`` cells (unknown ticker, no quote yet) raise :class:`SourceError`."""
    body = _check_answer(text, symbol, url)
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    header = tuple(part.strip() for part in lines[0].split(","))
    if header[: len(QUOTE_COLUMNS)] != QUOTE_COLUMNS:
        raise SourceError(
            f"Stooq sent something that is not its quote CSV (starts {body[:60]!r})",
            symbol=symbol,
            url=url,
        )
    if len(lines) < 2:
        raise SourceError("Stooq quote CSV has no row", symbol=symbol, url=url)
    row = dict(zip(header, (cell.strip() for cell in lines[1].split(",")), strict=False))
    if "N/D" in (row.get("Date"), row.get("Time"), row.get("Close")):
        raise SourceError("Stooq has no quote for this ticker (N/D)", symbol=symbol, url=url)
    try:
        local = datetime.strptime(f"{row['Date']} {row['Time']}", "%Y-%m-%d %H:%M:%S")
        close = float(row["Close"])
    except (KeyError, ValueError):
        raise SourceError(
            f"unreadable Stooq quote row {lines[1][:80]!r}", symbol=symbol, url=url
        ) from None
    return local.replace(tzinfo=zone).astimezone(UTC), close


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
        full_url = build_url(url, query)
        try:
            series = parse_stooq_csv(text, symbol=symbol_id, url=full_url)
        except StooqHitsLimit as exc:
            raise self._hits_limit(exc) from None
        if start is not None or end is not None:
            series = _trim(series, start, end)
        return series

    def fetch_daily(
        self, symbol_id: str, spec: SymbolConfig, start: date | None, end: date | None
    ) -> DailySeries:
        """Daily closes between ``start`` and ``end`` (inclusive; ``None`` = unbounded)."""
        return self._download(symbol_id, spec, start, end)

    def fetch_latest(self, symbol_id: str, spec: SymbolConfig) -> Observation:
        """The delayed quote, stamped with its own date and time (see the module docstring)."""
        params = self.params
        zone = ZoneInfo(params.quote_zone if isinstance(params, StooqParams) else STOOQ_ZONE)
        ticker = spec.ticker_for(self.name, symbol_id).lower()
        # ``h`` is a bare flag: written into the URL, since requests would send ``h=``.
        url = f"{self.base_url}{QUOTE_PATH}?s={quote(ticker, safe='')}&f={QUOTE_FIELDS}&h&e=csv"
        text = self.http.get(url, symbol=symbol_id)
        try:
            when, close = parse_stooq_quote(text, zone, symbol=symbol_id, url=url)
        except StooqHitsLimit as exc:
            raise self._hits_limit(exc) from None
        return Observation(
            symbol=symbol_id,
            time=when,
            value=close,
            kind="price",
            session=when.astimezone(_exchange_zone(spec.calendar, zone)).date(),
            source=self.name,
        )

    def _hits_limit(self, exc: StooqHitsLimit) -> StooqHitsLimit:
        """Start the cool-down; the error to raise says until when."""
        params = self.params
        pause = params.limit_cooldown if isinstance(params, StooqParams) else None
        until = self.http.enter_cooldown(
            pause.total_seconds() if pause else None, reason="Stooq daily hits limit"
        )
        return StooqHitsLimit(
            "Stooq refused: exceeded the daily hits limit; source cooling down until "
            f"{until.isoformat(timespec='seconds')}",
            symbol=exc.symbol,
            url=exc.url,
            retryable=True,
        )


def _exchange_zone(calendar: str, default: ZoneInfo) -> ZoneInfo:
    """The zone of the symbol's calendar (the session date is the exchange's date)."""
    from bot.calendars import UnknownCalendarError, get_calendar  # lazily: heavy imports

    try:
        return get_calendar(calendar).tz
    except UnknownCalendarError:  # reported by `check`; date the quote in Stooq's zone
        return default


def _trim(series: DailySeries, start: date | None, end: date | None) -> DailySeries:
    keep = [
        i
        for i, d in enumerate(series.dates)
        if (start is None or d >= start) and (end is None or d <= end)
    ]
    return DailySeries([series.dates[i] for i in keep], [series.values[i] for i in keep])
