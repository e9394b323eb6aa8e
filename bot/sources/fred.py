"""FRED (St. Louis Fed) series as CSV: ``GET {base_url}/graph/fredgraph.csv?id=SERIES``.

No API key. Two header styles exist (``DATE,SERIES`` from the older service,
``observation_date,SERIES`` today) and two missing-value markers (``.`` and an empty field).
A symbol's ``series`` is one id or a mapping of names to ids; the Fed's target range is
``{lower: DFEDTARL, upper: DFEDTARU}``, fetched separately and joined by date.

Observations are *daily* values published with a lag (the target range is posted the next
business day): ``fetch_latest`` returns the newest published row as a ``rate`` observation
stamped at that date's 00:00 UTC, never "now".

Implausible rows are dropped, each with a WARNING naming the series, date and value, before
duplicates are resolved and before the newest row is picked — so a garbage row can neither
become "the latest" nor win a duplicated date (the last *valid* row wins): a rate outside
``sanity.min_rate``..``sanity.max_rate``, a row dated after today, a lower bound above the upper.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import ClassVar, cast

from bot.config import Duration, SanityConfig, SourceParams, SymbolConfig
from bot.errors import SourceError
from bot.model import DailySeries, Observation
from bot.sanity import latest_day
from bot.sources.base import SOURCES
from bot.sources.csvrows import (
    CsvSyntaxError,
    longest_row,
    parse_days,
    parse_numbers,
    read_records,
    stripped_column,
)
from bot.sources.http import HttpSource, HttpSourceParams, build_url, looks_like_html

log = logging.getLogger(__name__)

DATE_HEADERS = ("observation_date", "DATE")
MISSING = ("", ".")
DEFAULT_FRED_URL = "https://fred.stlouisfed.org"


class FredParams(HttpSourceParams):
    """``type: fred`` options."""

    timeout: Duration = timedelta(seconds=30)
    """FRED is slow to start a download; a longer default than other sources."""
    latest_window: Duration = timedelta(days=45)
    """How far back ``fetch_latest`` asks for (``cosd``): enough to span publication lags."""


def _fail(message: str, symbol: str | None, url: str | None) -> SourceError:
    return SourceError(message, symbol=symbol, url=url)


def parse_fred_rows(
    text: str,
    series_id: str,
    *,
    symbol: str | None = None,
    url: str | None = None,
    sanity: SanityConfig | None = None,
    now: datetime | None = None,
) -> tuple[list[date], list[float]]:
    """Parse fredgraph CSV text into ``(dates, values)`` in date order (missing rows dropped).

    Rows outside the plausible band of ``sanity`` (default: the defaults) and, given ``now``,
    rows dated after today are dropped with a WARNING each; of duplicated dates the last valid
    row is kept. Cell rules: :mod:`bot.sources.csvrows`."""
    if not text.strip():
        raise _fail("empty FRED response", symbol, url)
    if looks_like_html(text):
        raise _fail("FRED sent an HTML page instead of CSV", symbol, url)
    text = text.lstrip("\ufeff")
    header = text.split("\n", 1)[0].strip()
    names = [part.strip() for part in header.split(",")]
    expected = f"'observation_date,{series_id}' or 'DATE,{series_id}'"
    if (
        len(names) != 2
        or names[0].lower() not in {h.lower() for h in DATE_HEADERS}
        or names[1].upper() != series_id.upper()
    ):
        raise _fail(f"unexpected FRED CSV header {header[:80]!r}; expected {expected}", symbol, url)
    try:
        rows = read_records(text, skip_initial_space=True)[1:]  # the header checked above
    except CsvSyntaxError as exc:
        raise _fail(f"unreadable FRED CSV: {exc}", symbol, url) from None
    wide = longest_row(rows, 2)
    if wide is not None:
        raise _fail(f"unreadable FRED CSV: row {wide[0]} has {wide[1]} fields, not 2", symbol, url)
    raw_dates, raw_values = stripped_column(rows, 0), stripped_column(rows, 1)
    days = parse_days(raw_dates)
    if None in days:  # checked on rows with a missing value too, before any value
        i = days.index(None)
        raise _fail(f"FRED CSV row {i + 2}: bad date {raw_dates[i]!r}", symbol, url)
    kept = [i for i, cell in enumerate(raw_values) if cell not in MISSING]
    values = parse_numbers([raw_values[i] for i in kept])
    if None in values:
        i = kept[values.index(None)]
        raise _fail(
            f"FRED CSV row {i + 2}: bad value {raw_values[i]!r} for {series_id}", symbol, url
        )
    known_days = cast("list[date]", days)  # None ruled out above
    known_values = cast("list[float]", values)
    present = [(known_days[i], value) for i, value in zip(kept, known_values, strict=True)]
    valid = _plausible_rows(present, series_id, symbol, sanity or SanityConfig(), now)
    by_day = dict(valid)  # the last (valid) of duplicated dates, in date order below
    ordered = sorted(by_day)
    return ordered, [by_day[day] for day in ordered]


def _plausible_rows(
    rows: list[tuple[date, float]],
    series_id: str,
    symbol: str | None,
    sanity: SanityConfig,
    now: datetime | None,
) -> list[tuple[date, float]]:
    """``rows`` without those outside the rate band or dated in the future, each logged."""
    last = latest_day(now, sanity) if now is not None else None
    if rows:  # the common all-plausible case, checked at C speed
        days, values = zip(*rows, strict=True)
        if (
            sanity.min_rate <= min(values)
            and max(values) <= sanity.max_rate
            and (last is None or max(days) <= last)
        ):
            return rows
    kept: list[tuple[date, float]] = []
    for day, value in rows:
        is_future = last is not None and day > last
        if not is_future and sanity.min_rate <= value <= sanity.max_rate:
            kept.append((day, value))
            continue
        why = (
            "dated in the future"
            if is_future
            else f"outside the plausible band {sanity.min_rate:g}..{sanity.max_rate:g}%"
        )
        log.warning(
            "%srejected FRED row %s %s = %g: %s",
            f"{symbol}: " if symbol else "",
            series_id,
            day,
            value,
            why,
        )
    return kept


def parse_fred_csv(
    text: str,
    series_id: str,
    *,
    symbol: str | None = None,
    url: str | None = None,
    sanity: SanityConfig | None = None,
    now: datetime | None = None,
) -> DailySeries:
    """Parse one fredgraph CSV (either header style) into a :class:`DailySeries`.

    Rows marked missing (``.`` or empty) are dropped; anything else unreadable, an HTML page or
    a header naming another series raises :class:`SourceError` naming ``symbol`` and ``url``.
    """
    days, values = parse_fred_rows(text, series_id, symbol=symbol, url=url, sanity=sanity, now=now)
    return DailySeries(days, values)


def series_ids(spec: SymbolConfig) -> dict[str, str]:
    """The symbol's series as ``{column: series id}`` (a single id is column ``value``)."""
    if isinstance(spec.series, Mapping):
        return dict(spec.series)
    return {"value": spec.series} if spec.series else {}


def value_column(columns: Mapping[str, object]) -> str:
    """The column rules see as the value: ``upper`` if present, else the first one."""
    return "upper" if "upper" in columns else next(iter(columns))


@SOURCES.register("fred")
class FredSource(HttpSource):
    """FRED series (e.g. the Fed funds target range) as daily ``rate`` observations."""

    type_name: ClassVar[str] = "fred"
    params_model: ClassVar[type[SourceParams]] = FredParams
    default_base_url: ClassVar[str] = DEFAULT_FRED_URL
    #: the plausible rate band and clock skew rows are checked with (``build_sources`` sets
    #: the configured ``sanity:``)
    sanity: SanityConfig = SanityConfig()

    @classmethod
    def symbol_problems(cls, symbol_id: str, spec: SymbolConfig) -> list[str]:
        """A FRED symbol needs ``series``: one id, or a mapping such as ``{lower:, upper:}``."""
        if not spec.series:
            return [
                "a fred symbol needs 'series': a FRED series id such as DFEDTARU, or a mapping "
                "such as {lower: DFEDTARL, upper: DFEDTARU}"
            ]
        if isinstance(spec.series, Mapping) and not all(spec.series.values()):
            return ["every entry of 'series' needs a FRED series id"]
        return []

    def _fetch_rows(
        self, symbol_id: str, spec: SymbolConfig, start: date | None, end: date | None
    ) -> tuple[list[date], dict[str, list[float]]]:
        """``(dates, {column: values})``: the dates every series has published, in order."""
        ids = series_ids(spec)
        if not ids:
            raise SourceError("no FRED 'series' configured", symbol=symbol_id)
        url = f"{self.base_url}/graph/fredgraph.csv"
        parsed: dict[str, dict[date, float]] = {}
        for column, series_id in ids.items():
            query = {"id": series_id}
            # cosd/coed narrow the download; the rows are trimmed locally as well.
            if start is not None:
                query["cosd"] = start.isoformat()
            if end is not None:
                query["coed"] = end.isoformat()
            text = self.http.get(url, symbol=symbol_id, params=query)
            days, values = parse_fred_rows(
                text,
                series_id,
                symbol=symbol_id,
                url=build_url(url, query),
                sanity=self.sanity,
                now=self.clock.now(),
            )
            parsed[column] = dict(zip(days, values, strict=True))
        # Inner join: a date counts only once every series has published it.
        first, *others = parsed.values()
        dates = sorted(day for day in first if all(day in other for other in others))
        if "lower" in parsed and "upper" in parsed:
            lower, upper = parsed["lower"], parsed["upper"]
            for day in dates:
                if lower[day] > upper[day]:
                    log.warning(
                        "%s: rejected FRED row %s: lower bound %g%% is above the upper bound %g%%",
                        symbol_id,
                        day,
                        lower[day],
                        upper[day],
                    )
            dates = [day for day in dates if lower[day] <= upper[day]]
        dates = [
            day for day in dates if (start is None or day >= start) and (end is None or day <= end)
        ]
        return dates, {column: [by_day[day] for day in dates] for column, by_day in parsed.items()}

    def fetch_daily(
        self, symbol_id: str, spec: SymbolConfig, start: date | None, end: date | None
    ) -> DailySeries:
        """Daily rows; ``values`` is ``upper`` (or the single series), and with a mapping every
        named series is a column too (``lower``, ``upper``)."""
        dates, columns = self._fetch_rows(symbol_id, spec, start, end)
        main = value_column(columns)
        extra = columns if isinstance(spec.series, Mapping) else {}
        return DailySeries(dates, columns[main], extra)

    def fetch_latest(self, symbol_id: str, spec: SymbolConfig) -> Observation:
        """The newest published row as a ``rate`` observation (time: its date, 00:00 UTC)."""
        params = self.params
        window = params.latest_window if isinstance(params, FredParams) else timedelta(days=45)
        start = (self.clock.now() - window).date()
        dates, columns = self._fetch_rows(symbol_id, spec, start, None)
        if not dates:
            raise SourceError(
                f"FRED has no observation since {start.isoformat()}", symbol=symbol_id
            )
        day = dates[-1]
        fields = (
            {c: v[-1] for c, v in columns.items()} if isinstance(spec.series, Mapping) else None
        )
        return Observation(
            symbol=symbol_id,
            time=datetime.combine(day, time(0, 0), UTC),
            value=columns[value_column(columns)][-1],
            kind="rate",
            session=day,
            fields=fields,
            source=self.name,
        )
