"""Local CSV files (``type: csv``) for replays and backtests.

Formats, detected by the header line:

* Yahoo download: ``Date,Open,High,Low,Close,Adj Close,Volume`` (``null`` cells on no-trade
  days) — ``Close`` is used, not ``Adj Close``: index levels are what alerts talk about;
* Stooq: ``Date,Open,High,Low,Close[,Volume]`` (``N/D`` cells);
* FRED: ``observation_date,SERIES`` or ``DATE,SERIES`` (``.``/empty missing markers).

A symbol names its file with ``file:``; a relative path is resolved against ``base_dir`` (the
config file's directory when built by :func:`bot.sources.poller.build_sources`), else the
working directory.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import ClassVar, Literal

from bot.clock import Clock
from bot.config import SourceParams, SymbolConfig
from bot.errors import SourceError
from bot.model import DailySeries, Observation
from bot.sources.base import SOURCES, Source
from bot.sources.csvrows import (
    CsvSyntaxError,
    longest_row,
    parse_days,
    parse_numbers,
    read_records,
    stripped_column,
)

CsvFormat = Literal["yahoo", "stooq", "fred"]

YAHOO_HEADER = ("Date", "Open", "High", "Low", "Close", "Adj Close", "Volume")
STOOQ_HEADER = ("Date", "Open", "High", "Low", "Close")
FRED_DATE_HEADERS = ("observation_date", "date")
NOT_AVAILABLE = ("", "N/D", "null", "NaN", "nan")
FORMATS_HELP = (
    "Yahoo (Date,Open,High,Low,Close,Adj Close,Volume), Stooq (Date,Open,High,Low,Close,Volume) "
    "or FRED (observation_date,SERIES)"
)


def detect_csv_format(header: str) -> CsvFormat | None:
    """Which daily format a header line is, or ``None`` if none."""
    names = tuple(part.strip().strip('"') for part in header.lstrip("\ufeff").strip().split(","))
    if names == YAHOO_HEADER:
        return "yahoo"
    if names[: len(STOOQ_HEADER)] == STOOQ_HEADER:
        return "stooq"
    if len(names) == 2 and names[0].lower() in FRED_DATE_HEADERS and names[1].lower() != "close":
        return "fred"
    return None


def parse_ohlc_csv(
    text: str, *, source: str, symbol: str | None = None, url: str | None = None
) -> DailySeries:
    """Closes by date of a ``Date,…,Close,…`` CSV (Stooq or Yahoo download layout).

    ``N/D``, ``null`` and empty closes are skipped (no trade that day); other unreadable cells
    raise :class:`SourceError` with the row number; so does a file without one usable row.
    Duplicated dates keep the last row. Cell rules: :mod:`bot.sources.csvrows`.
    """

    def fail(message: str) -> SourceError:
        return SourceError(message, symbol=symbol, url=url)

    try:
        records = read_records(text.removeprefix("\ufeff"))
    except CsvSyntaxError as exc:
        raise fail(f"unreadable {source} CSV: {exc}") from None
    if not records:
        raise fail(f"unreadable {source} CSV: No columns to parse from file")
    names = [name.strip() for name in records[0]]
    rows = records[1:]
    wide = longest_row(rows, len(names))
    if wide is not None:
        raise fail(
            f"unreadable {source} CSV: row {wide[0]} has {wide[1]} fields, the header {len(names)}"
        )
    if "Date" not in names or "Close" not in names:
        raise fail(f"{source} CSV lacks Date/Close columns")
    at_date, at_close = names.index("Date"), names.index("Close")  # the first of each
    raw_dates, raw_closes = stripped_column(rows, at_date), stripped_column(rows, at_close)
    present = [i for i, cell in enumerate(raw_closes) if cell not in NOT_AVAILABLE]
    days = parse_days([raw_dates[i] for i in present])
    values = parse_numbers([raw_closes[i] for i in present])
    if None in days or None in values:
        i = next(i for i, d, v in zip(present, days, values, strict=True) if d is None or v is None)
        raise fail(
            f"{source} CSV row {i + 2}: cannot read "
            f"{raw_dates[i]!r},{raw_closes[i]!r} as a date and a close"
        )
    closes: dict[date, float] = dict(zip(days, values, strict=True))  # type: ignore[arg-type]
    if not closes:
        raise fail(f"{source} CSV has no usable rows (every close is N/D, null or empty)")
    ordered = sorted(closes)  # of duplicated dates the dict kept the last row's close
    return DailySeries(ordered, [closes[day] for day in ordered])


def parse_daily_csv_text(
    text: str, *, symbol: str | None = None, where: str | None = None
) -> DailySeries:
    """Parse daily CSV text in any supported format (see :func:`detect_csv_format`)."""
    from bot.sources.fred import parse_fred_csv

    text = text.lstrip("\ufeff")
    header = text.split("\n", 1)[0].strip()
    kind = detect_csv_format(header)
    if kind is None:
        raise SourceError(
            f"unrecognised CSV header {header[:80]!r}; expected {FORMATS_HELP}",
            symbol=symbol,
            url=where,
        )
    if kind == "fred":
        series_id = header.split(",")[1].strip().strip('"')
        return parse_fred_csv(text, series_id, symbol=symbol, url=where)
    return parse_ohlc_csv(text, source=kind.capitalize(), symbol=symbol, url=where)


def read_daily_csv(path: str | Path, *, symbol: str | None = None) -> DailySeries:
    """Read a daily CSV file (Yahoo, Stooq or FRED format, detected by its header).

    Raises :class:`SourceError` naming the symbol and the file when it cannot be read or parsed.
    """
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SourceError(
            f"cannot read CSV file: {exc.strerror or exc}", symbol=symbol, url=where
        ) from None
    except UnicodeDecodeError:
        raise SourceError("CSV file is not UTF-8 text", symbol=symbol, url=where) from None
    return parse_daily_csv_text(text, symbol=symbol, where=where)


@SOURCES.register("csv")
class CsvSource(Source):
    """Daily closes from a local CSV file (the symbol's ``file:``)."""

    type_name: ClassVar[str] = "csv"
    params_model: ClassVar[type[SourceParams]] = SourceParams
    default_base_url: ClassVar[str] = ""

    def __init__(
        self, name: str, params: SourceParams, clock: Clock, *, base_dir: str | Path | None = None
    ) -> None:
        super().__init__(name, params, clock)
        self.base_dir: Path | None = Path(base_dir) if base_dir is not None else None
        # Re-parse only when the file changes (replays poll the same file many times).
        self._cache: dict[Path, tuple[tuple[int, int], DailySeries]] = {}
        self._lock = threading.Lock()

    @classmethod
    def symbol_problems(cls, symbol_id: str, spec: SymbolConfig) -> list[str]:
        """A csv symbol needs ``file``."""
        if not spec.file:
            return ["a csv symbol needs 'file': the path of a daily CSV (Yahoo, Stooq or FRED)"]
        return []

    def path_for(self, symbol_id: str, spec: SymbolConfig) -> Path:
        """The symbol's file, relative paths resolved against ``base_dir``."""
        if not spec.file:
            raise SourceError("no 'file' configured for the csv source", symbol=symbol_id)
        path = Path(spec.file).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return path

    def _load(self, symbol_id: str, spec: SymbolConfig) -> DailySeries:
        path = self.path_for(symbol_id, spec)
        try:
            stat = path.stat()
        except OSError as exc:
            raise SourceError(
                f"cannot read CSV file: {exc.strerror or exc}", symbol=symbol_id, url=str(path)
            ) from None
        key = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        series = read_daily_csv(path, symbol=symbol_id)
        with self._lock:
            self._cache[path] = (key, series)
        return series

    def fetch_daily(
        self, symbol_id: str, spec: SymbolConfig, start: date | None, end: date | None
    ) -> DailySeries:
        """The file's rows between ``start`` and ``end`` (inclusive)."""
        series = self._load(symbol_id, spec)
        if start is None and end is None:
            return series.until(series.dates[-1]) if len(series) else DailySeries()
        lo = 0 if start is None else series.index_before(start) + 1
        hi = len(series) if end is None else series.index_on_or_before(end) + 1
        return DailySeries(
            series.dates[lo:hi],
            series.values[lo:hi],
            {k: v[lo:hi] for k, v in series.columns.items()},
        )

    def fetch_latest(self, symbol_id: str, spec: SymbolConfig) -> Observation:
        """The last row as a ``price`` observation stamped at its date, 00:00 UTC."""
        series = self._load(symbol_id, spec)
        last = series.last()
        if last is None:
            raise SourceError("CSV file has no rows", symbol=symbol_id)
        day, value = last
        return Observation(
            symbol=symbol_id,
            time=datetime.combine(day, time(0, 0), UTC),
            value=value,
            kind="price",
            session=day,
            source=self.name,
        )
