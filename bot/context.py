"""Market context: the facts traders quote, computed from a symbol's daily history.

One pure module, used by ``report``, the ``digest`` rule, template fields and ``record_close``
alerts alike, so the same fact is the same number everywhere. Definitions (README, "report"):

- a **record close** is a close strictly above every earlier close of the loaded history (a tie
  is not a record; the first row is one, having no earlier close);
- ``days_since`` counts calendar days from the record close to the date, ``sessions_since``
  rows of the history after it;
- a **stretch** is the time between two consecutive record closes; ``drought_rank`` ranks the
  current stretch (from the last record close to the date) among every stretch of the history,
  the current one included, by calendar days: 1 = the longest (ties share the better rank);
- ``count_ytd`` counts record closes in the calendar year of the date, up to it;
- changes are percent changes of the close against the last close of the previous period:
  ``1d`` the previous row, ``5d`` five rows back, ``mtd``/``qtd``/``ytd`` the last close before
  the month/quarter/year began, ``prev_month`` the whole previous calendar month (its last close
  against the close before it began), ``1y`` the last close on or before the same date a year
  earlier; ``None`` when the history does not reach back that far;
- ``range_52w``: highest and lowest close of the rows dated after the same date a year earlier
  (the earliest date on ties).

Nothing dated after the date asked for is ever looked at. numpy is imported lazily; a series'
record table is built once (:class:`SeriesFacts`, cached per series) and each question is then
a bisection or a short count.

Length (about 400 lines): one definition per fact, listed above, and the record table they are
all read from; split, the definitions would drift apart.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from bot.model import DailySeries

#: Template fields every rule offers (the facts of the alert's symbol as of the alert), with a
#: sample of their text for ``check``.
TEMPLATE_FIELDS: Mapping[str, str] = {
    "record": "2,442.74",
    "record_date": "2021-11-08",
    "pct_from_record": "-0.03%",
    "days_since_record": "1,120",
    "sessions_since_record": "770",
    "drought_rank": "3rd",
    "records_ytd": "0",
    "history_start": "1987-09-10",
    "day_pct": "+0.50%",
    "five_day_pct": "+1.20%",
    "mtd_pct": "+11.00%",
    "prev_month_pct": "-1.50%",
    "qtd_pct": "+4.00%",
    "ytd_pct": "+20.00%",
    "one_year_pct": "+25.00%",
    "high_52w": "2,466.49",
    "low_52w": "1,913.17",
}

CHANGE_KEYS = ("1d", "5d", "mtd", "prev_month", "qtd", "ytd", "1y")


def template_fields_for(series: DailySeries, at: date) -> dict[str, str]:
    """The :data:`TEMPLATE_FIELDS` of ``series`` as of ``at`` (``n/a`` each without data)."""
    facts = symbol_facts(series, at)
    return facts.template_fields() if facts is not None else dict.fromkeys(TEMPLATE_FIELDS, "n/a")


def ordinal(n: int) -> str:
    """``1`` → ``1st``, ``2`` → ``2nd``, ``11`` → ``11th``, ``23`` → ``23rd``."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,d}{suffix}"


def longest_phrase(rank: int) -> str:
    """``1`` → ``longest``, ``2`` → ``2nd-longest``."""
    return "longest" if rank == 1 else f"{ordinal(rank)}-longest"


@dataclass(frozen=True)
class RecordFacts:
    """The record close as of a date, and the drought since it."""

    value: float
    date: dt.date
    pct_from: float
    days_since: int
    sessions_since: int
    drought_rank: int
    count_ytd: int
    history_start: dt.date

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "date": self.date.isoformat(),
            "pct_from": self.pct_from,
            "days_since": self.days_since,
            "sessions_since": self.sessions_since,
            "drought_rank": self.drought_rank,
            "count_ytd": self.count_ytd,
            "history_start": self.history_start.isoformat(),
        }


@dataclass(frozen=True)
class SymbolFacts:
    """Everything ``report`` says about one price symbol as of ``date``."""

    symbol: str
    name: str
    date: dt.date
    close: float
    record: RecordFacts
    change: dict[str, float | None]
    high_52w: float
    high_52w_date: dt.date
    low_52w: float
    low_52w_date: dt.date

    def to_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "name": self.name,
            "date": self.date.isoformat(),
            "close": self.close,
            "record": self.record.to_json(),
            "change": dict(self.change),
            "range_52w": {
                "high": self.high_52w,
                "high_date": self.high_52w_date.isoformat(),
                "low": self.low_52w,
                "low_date": self.low_52w_date.isoformat(),
            },
        }

    def template_fields(self) -> dict[str, str]:
        """The facts as template fields (text formatted like the default messages)."""
        r = self.record

        def pct(value: float | None) -> str:
            return f"{value:+.2f}%" if value is not None else "n/a"

        fields = {
            "record": f"{r.value:,.2f}",
            "record_date": r.date.isoformat(),
            "pct_from_record": pct(r.pct_from),
            "days_since_record": f"{r.days_since:,d}",
            "sessions_since_record": f"{r.sessions_since:,d}",
            "drought_rank": ordinal(r.drought_rank),
            "records_ytd": f"{r.count_ytd:,d}",
            "history_start": r.history_start.isoformat(),
            "high_52w": f"{self.high_52w:,.2f}",
            "low_52w": f"{self.low_52w:,.2f}",
        }
        names = {"1d": "day_pct", "5d": "five_day_pct", "1y": "one_year_pct"}
        for key in CHANGE_KEYS:
            fields[names.get(key, f"{key}_pct")] = pct(self.change.get(key))
        return fields


@dataclass(frozen=True)
class RateFacts:
    """A rate symbol (the Fed target range) as of ``date``."""

    symbol: str
    name: str
    date: dt.date
    lower: float | None
    upper: float
    since: dt.date
    #: the last change before ``date``: its date and size in basis points (of the upper bound)
    last_change_date: dt.date | None
    last_change_bp: int | None
    #: every change in the calendar year of ``date``: ``(date, bp)``
    changes_ytd: list[tuple[dt.date, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "name": self.name,
            "date": self.date.isoformat(),
            "lower": self.lower,
            "upper": self.upper,
            "since": self.since.isoformat(),
            "last_change": (
                {"date": self.last_change_date.isoformat(), "bp": self.last_change_bp}
                if self.last_change_date is not None
                else None
            ),
            "changes_ytd": [{"date": d.isoformat(), "bp": bp} for d, bp in self.changes_ytd],
            "changes_ytd_bp": sum(bp for _, bp in self.changes_ytd),
        }


class SeriesFacts:
    """A series' record closes, found once (O(n) numpy), then asked about any row."""

    __slots__ = (
        "_gap_array",
        "_ranks",
        "_sorted",
        "_sorted_count",
        "gaps",
        "ordinals",
        "record_rows",
        "series",
        "values",
    )

    def __init__(self, series: DailySeries) -> None:
        import numpy as np

        ordinals, values = series.arrays()
        self.series = series
        self.ordinals = ordinals
        self.values = values
        if len(values):
            earlier = np.maximum.accumulate(values)
            mask = np.empty(len(values), dtype=bool)
            mask[0] = True
            mask[1:] = values[1:] > earlier[:-1]  # strictly above every earlier close
            rows = np.flatnonzero(mask)
        else:
            rows = np.zeros(0, dtype=np.int64)
        #: row indices of the record closes, in order
        self.record_rows: list[int] = rows.tolist()
        #: calendar days of each completed stretch: gaps[k] = record k+1 - record k
        self._gap_array = np.diff(ordinals[rows]) if len(rows) else np.zeros(0, dtype=np.int64)
        self.gaps: list[int] = self._gap_array.tolist()
        self._ranks: Any = None
        self._sorted: list[int] = []
        self._sorted_count = 0

    def records_through(self, index: int) -> int:
        """How many record closes rows ``..index`` hold."""
        return bisect.bisect_right(self.record_rows, index)

    def record_at(self, index: int) -> int:
        """Row of the record close standing at row ``index`` (the last one on or before)."""
        return self.record_rows[self.records_through(index) - 1]

    def stretch_rank(self, records: int, days: int) -> int:
        """Rank of a stretch of ``days`` among the stretches completed between the first
        ``records`` record closes, itself included (1 = the longest; ties share the rank)."""
        k = max(records - 1, 0)
        # sorted(gaps[:k]), grown one insertion at a time: record alerts of a backtest ask for
        # k = 1, 2, 3 … (a restart at a smaller k sorts the prefix again)
        if k < self._sorted_count:
            self._sorted, self._sorted_count = sorted(self.gaps[:k]), k
        while self._sorted_count < k:
            bisect.insort(self._sorted, self.gaps[self._sorted_count])
            self._sorted_count += 1
        return 1 + len(self._sorted) - bisect.bisect_right(self._sorted, days)

    def drought_rank(self, index: int) -> int:
        """``drought_rank`` of the stretch open at row ``index``."""
        records = self.records_through(index)
        days = int(self.ordinals[index]) - int(self.ordinals[self.record_rows[records - 1]])
        return self.stretch_rank(records, days)

    def drought_ranks(self) -> Any:
        """``drought_rank`` of every row (numpy int array), built once per series: one sorted
        insertion and one search per record stretch, not a count per row."""
        if self._ranks is None:
            import numpy as np

            n = len(self.values)
            ranks = np.ones(n, dtype=np.int64)
            record_rows = self.record_rows
            completed: list[int] = []  # sorted
            for k, start in enumerate(record_rows):
                stop = record_rows[k + 1] if k + 1 < len(record_rows) else n
                if k > 0:
                    bisect.insort(completed, self.gaps[k - 1])
                days = self.ordinals[start:stop] - self.ordinals[start]
                ranks[start:stop] = (
                    1 + len(completed) - np.searchsorted(completed, days, side="right")
                )
            self._ranks = ranks
        return self._ranks


_CACHE: OrderedDict[int, tuple[Any, SeriesFacts]] = OrderedDict()
_CACHE_SIZE = 64


def series_facts(series: DailySeries) -> SeriesFacts:
    """The :class:`SeriesFacts` of ``series``, cached while the series is unchanged (its numpy
    arrays are rebuilt by any change, which is what the cache entry is checked against)."""
    ordinals = series.arrays()[0]
    entry = _CACHE.get(id(series))
    if entry is not None and entry[0] is ordinals and entry[1].series is series:
        _CACHE.move_to_end(id(series))
        return entry[1]
    facts = SeriesFacts(series)
    _CACHE[id(series)] = (ordinals, facts)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return facts


def _pct(close: float, values: Sequence[float], index: int) -> float | None:
    if index < 0 or not values[index]:
        return None
    return (close / values[index] - 1.0) * 100.0


def _year_back(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def changes(series: DailySeries, index: int) -> dict[str, float | None]:
    """The percent changes of row ``index``'s close (see the module docstring)."""
    values = series.values
    day = series.dates[index]
    close = values[index]
    month_start = day.replace(day=1)
    quarter_start = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    prev_month_start = (month_start - timedelta(days=1)).replace(day=1)
    prev_month_end = series.index_before(month_start)
    prev_month_base = series.index_before(prev_month_start)
    prev_month: float | None = None
    if prev_month_end >= 0 and series.dates[prev_month_end] >= prev_month_start:
        prev_month = _pct(values[prev_month_end], values, prev_month_base)
    return {
        "1d": _pct(close, values, index - 1),
        "5d": _pct(close, values, index - 5),
        "mtd": _pct(close, values, series.index_before(month_start)),
        "prev_month": prev_month,
        "qtd": _pct(close, values, series.index_before(quarter_start)),
        "ytd": _pct(close, values, series.index_before(date(day.year, 1, 1))),
        "1y": _pct(close, values, series.index_on_or_before(_year_back(day))),
    }


def symbol_facts(
    series: DailySeries, at: date | None = None, symbol: str = "", name: str = ""
) -> SymbolFacts | None:
    """The facts of a price series as of the last row dated ``at`` or earlier (default: its
    last row); ``None`` when there is no such row. Rows after ``at`` are never read."""
    index = len(series) - 1 if at is None else series.index_on_or_before(at)
    if index < 0:
        return None
    facts = series_facts(series)
    values, dates = series.values, series.dates
    day, close = dates[index], values[index]
    records = facts.records_through(index)
    record_row = facts.record_rows[records - 1]
    record_value, record_day = values[record_row], dates[record_row]
    year_first = bisect.bisect_left(
        facts.record_rows, series.index_before(date(day.year, 1, 1)) + 1
    )
    record = RecordFacts(
        value=record_value,
        date=record_day,
        pct_from=(close / record_value - 1.0) * 100.0 if record_value else 0.0,
        days_since=(day - record_day).days,
        sessions_since=index - record_row,
        drought_rank=facts.drought_rank(index),
        count_ytd=records - year_first,
        history_start=dates[0],
    )
    first = series.index_on_or_before(_year_back(day)) + 1
    window = facts.values[first : index + 1]
    high_at = first + int(window.argmax())
    low_at = first + int(window.argmin())
    return SymbolFacts(
        symbol=symbol,
        name=name or symbol,
        date=day,
        close=close,
        record=record,
        change=changes(series, index),
        high_52w=values[high_at],
        high_52w_date=dates[high_at],
        low_52w=values[low_at],
        low_52w_date=dates[low_at],
    )


def rate_facts(
    series: DailySeries, at: date | None = None, symbol: str = "", name: str = ""
) -> RateFacts | None:
    """The facts of a rate series (``upper``/``lower`` columns, or the value alone) as of the
    last row dated ``at`` or earlier; ``None`` when there is no such row."""
    index = len(series) - 1 if at is None else series.index_on_or_before(at)
    if index < 0:
        return None
    upper = series.columns.get("upper") or series.values
    lower = series.columns.get("lower")
    dates = series.dates

    def row(i: int) -> tuple[float | None, float]:
        return (lower[i] if lower is not None else None, upper[i])

    current = row(index)
    year_start = date(dates[index].year, 1, 1)
    since = dates[0]
    last_date: date | None = None
    last_bp: int | None = None
    this_year: list[tuple[date, int]] = []
    for i in range(index, 0, -1):  # backwards: rates change a few times a year
        if row(i) != row(i - 1):
            bp = round((upper[i] - upper[i - 1]) * 100)
            if last_date is None:
                since = last_date = dates[i]
                last_bp = bp
            if dates[i] < year_start:
                break
            this_year.append((dates[i], bp))
    return RateFacts(
        symbol=symbol,
        name=name or symbol,
        date=dates[index],
        lower=current[0],
        upper=current[1],
        since=since,
        last_change_date=last_date,
        last_change_bp=last_bp,
        changes_ytd=this_year[::-1],
    )
