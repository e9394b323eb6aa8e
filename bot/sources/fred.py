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

import io
import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import pandas as pd

from bot.config import Duration, SanityConfig, SourceParams, SymbolConfig
from bot.errors import SourceError
from bot.model import DailySeries, Observation
from bot.sanity import latest_day
from bot.sources.base import SOURCES
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


def parse_fred_frame(
    text: str,
    series_id: str,
    *,
    symbol: str | None = None,
    url: str | None = None,
    sanity: SanityConfig | None = None,
    now: datetime | None = None,
) -> pd.Series:
    """Parse fredgraph CSV text into a float Series indexed by ``date`` (missing rows dropped).

    Rows outside the plausible band of ``sanity`` (default: the defaults) and, given ``now``,
    rows dated after today are dropped with a WARNING each; of duplicated dates the last valid
    row is kept."""
    import pandas as pd  # lazily: `check` and `--help` never need it

    if not text.strip():
        raise _fail("empty FRED response", symbol, url)
    if looks_like_html(text):
        raise _fail("FRED sent an HTML page instead of CSV", symbol, url)
    header = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    names = [part.strip() for part in header.split(",")]
    expected = f"'observation_date,{series_id}' or 'DATE,{series_id}'"
    if (
        len(names) != 2
        or names[0].lower() not in {h.lower() for h in DATE_HEADERS}
        or names[1].upper() != series_id.upper()
    ):
        raise _fail(f"unexpected FRED CSV header {header[:80]!r}; expected {expected}", symbol, url)
    try:
        frame = pd.read_csv(
            io.StringIO(text.lstrip("\ufeff")),
            dtype=str,
            keep_default_na=False,  # "." and "" are FRED's missing markers, handled below
            skipinitialspace=True,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise _fail(f"unreadable FRED CSV: {exc}", symbol, url) from None
    if frame.shape[1] != 2:
        raise _fail(f"FRED CSV should have 2 columns, has {frame.shape[1]}", symbol, url)
    raw_dates = frame.iloc[:, 0].str.strip()
    raw_values = frame.iloc[:, 1].str.strip()
    present = ~raw_values.isin(MISSING)
    dates = pd.to_datetime(raw_dates, format="%Y-%m-%d", errors="coerce")
    values = pd.to_numeric(raw_values.where(present), errors="coerce")
    bad_date = dates.isna()
    if bad_date.any():
        row = int(bad_date.to_numpy().nonzero()[0][0])
        raise _fail(f"FRED CSV row {row + 2}: bad date {raw_dates.iloc[row]!r}", symbol, url)
    bad_value = present & values.isna()
    if bad_value.any():
        row = int(bad_value.to_numpy().nonzero()[0][0])
        raise _fail(
            f"FRED CSV row {row + 2}: bad value {raw_values.iloc[row]!r} for {series_id}",
            symbol,
            url,
        )
    series = pd.Series(values.to_numpy(dtype=float), index=dates.dt.date, name=series_id)
    series = series[present.to_numpy()]
    series = _plausible_rows(series, series_id, symbol, sanity or SanityConfig(), now)
    # Keep the last (valid) of duplicated dates and date order, as DailySeries requires.
    series = series[~series.index.duplicated(keep="last")].sort_index()
    return series


def _plausible_rows(
    series: pd.Series,
    series_id: str,
    symbol: str | None,
    sanity: SanityConfig,
    now: datetime | None,
) -> pd.Series:
    """``series`` without rows outside the rate band or dated in the future, each logged."""
    import pandas as pd  # lazily: `check` and `--help` never need it

    bad = (series < sanity.min_rate) | (series > sanity.max_rate)
    future = pd.Series(False, index=series.index)
    if now is not None:
        last = latest_day(now, sanity)
        future = pd.Series([day > last for day in series.index], index=series.index)
    rejected = bad.to_numpy() | future.to_numpy()
    if not rejected.any():
        return series
    for day, value, is_future in zip(
        series.index[rejected], series[rejected], future.to_numpy()[rejected], strict=True
    ):
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
    return series[~rejected]


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
    series = parse_fred_frame(text, series_id, symbol=symbol, url=url, sanity=sanity, now=now)
    return DailySeries(list(series.index), series.tolist())


def series_ids(spec: SymbolConfig) -> dict[str, str]:
    """The symbol's series as ``{column: series id}`` (a single id is column ``value``)."""
    if isinstance(spec.series, Mapping):
        return dict(spec.series)
    return {"value": spec.series} if spec.series else {}


def value_column(columns: Mapping[str, str]) -> str:
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

    def _fetch_frame(
        self, symbol_id: str, spec: SymbolConfig, start: date | None, end: date | None
    ) -> pd.DataFrame:
        import pandas as pd  # lazily: `check` and `--help` never need it

        ids = series_ids(spec)
        if not ids:
            raise SourceError("no FRED 'series' configured", symbol=symbol_id)
        url = f"{self.base_url}/graph/fredgraph.csv"
        columns: dict[str, pd.Series] = {}
        for column, series_id in ids.items():
            query = {"id": series_id}
            # cosd/coed narrow the download; the rows are trimmed locally as well.
            if start is not None:
                query["cosd"] = start.isoformat()
            if end is not None:
                query["coed"] = end.isoformat()
            text = self.http.get(url, symbol=symbol_id, params=query)
            columns[column] = parse_fred_frame(
                text,
                series_id,
                symbol=symbol_id,
                url=build_url(url, query),
                sanity=self.sanity,
                now=self.clock.now(),
            )
        # Inner join: a date counts only once every series has published it.
        frame = pd.concat(columns, axis=1, join="inner").sort_index()
        if "lower" in frame.columns and "upper" in frame.columns:
            inverted = frame["lower"] > frame["upper"]
            for day in frame.index[inverted.to_numpy()]:
                log.warning(
                    "%s: rejected FRED row %s: lower bound %g%% is above the upper bound %g%%",
                    symbol_id,
                    day,
                    frame.at[day, "lower"],
                    frame.at[day, "upper"],
                )
            frame = frame[~inverted]
        if start is not None:
            frame = frame[frame.index >= start]
        if end is not None:
            frame = frame[frame.index <= end]
        return frame

    def fetch_daily(
        self, symbol_id: str, spec: SymbolConfig, start: date | None, end: date | None
    ) -> DailySeries:
        """Daily rows; ``values`` is ``upper`` (or the single series), and with a mapping every
        named series is a column too (``lower``, ``upper``)."""
        frame = self._fetch_frame(symbol_id, spec, start, end)
        ids = series_ids(spec)
        main = value_column(ids)
        extra = {} if not isinstance(spec.series, Mapping) else {c: frame[c].tolist() for c in ids}
        return DailySeries(list(frame.index), frame[main].tolist(), extra)

    def fetch_latest(self, symbol_id: str, spec: SymbolConfig) -> Observation:
        """The newest published row as a ``rate`` observation (time: its date, 00:00 UTC)."""
        params = self.params
        window = params.latest_window if isinstance(params, FredParams) else timedelta(days=45)
        start = (self.clock.now() - window).date()
        frame = self._fetch_frame(symbol_id, spec, start, None)
        if frame.empty:
            raise SourceError(
                f"FRED has no observation since {start.isoformat()}", symbol=symbol_id
            )
        ids = series_ids(spec)
        day: date = frame.index[-1]
        row = frame.iloc[-1]
        fields = {c: float(row[c]) for c in ids} if isinstance(spec.series, Mapping) else None
        return Observation(
            symbol=symbol_id,
            time=datetime.combine(day, time(0, 0), UTC),
            value=float(row[value_column(ids)]),
            kind="rate",
            session=day,
            fields=fields,
            source=self.name,
        )
