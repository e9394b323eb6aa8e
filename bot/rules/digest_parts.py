"""Helpers of the ``digest`` rule (bot/rules/digest.py): the wording of its parts, the record
and rate trackers kept between digests, session closes per batch, and the late-data check.

No rule is registered here; the digest imports what it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.calendars import MarketCalendar
from bot.context import longest_phrase
from bot.model import DailySeries, History, Observation
from bot.rules.text import fmt_range
from bot.rules.windows import Cursor, parse_day

#: A symbol whose last close is more than this many days older than the digest is not listed
#: (its data ended: a backtest past its last row), instead of a stale close repeated for months.
STALE_DAYS = 7

#: A due digest: (the tick, its local time, its local day, the newest rate observation seen).
_Due = tuple[Observation, datetime, date, "SeenRate | None"]


def _marker(age: int) -> str:
    """How a close ``age`` days older than the digest is marked (RTY=F at 16:15: CME closes at
    17:00, so its latest close is the previous day's)."""
    if age == 0:
        return ""
    return " (yesterday's close)" if age == 1 else " (last close)"


_PHRASES: dict[int, str] = {}  # rank → " (3rd-longest stretch)", formatted once
#: A stretch since the record is ranked in the digest only among the longest this many: the
#: 67th-longest of 600 says nothing a trader would quote.
RANKED = 10


def _phrase(rank: int) -> str:
    phrase = _PHRASES[rank] = f" ({longest_phrase(rank)} stretch)" if rank <= RANKED else ""
    return phrase


def _since(days: int, rank: int) -> str:
    """``a record close today`` / ``1,120 days since (3rd-longest stretch)``."""
    if days == 0:
        return "a record close today"
    phrase = _PHRASES.get(rank)
    if phrase is None:
        phrase = _phrase(rank)
    if days == 1:
        return "1 day since" + phrase
    return "%s days since%s" % (format(days, ",d"), phrase)  # noqa: UP031 - hot path


def _side(distance_pct: float) -> str:
    """A level's distance from the close, with its direction: ``3.80% above``."""
    if distance_pct > 0:
        return "%.2f%% above" % distance_pct  # noqa: UP031 - hot path, see _symbol_lines
    if distance_pct < 0:
        return "%.2f%% below" % -distance_pct
    return "at the close"


#: A rate seen live: (its day, lower, upper, the last history day it is newer than).
SeenRate = tuple[date, float | None, float, date]


def _seen_rate_of(observation: Observation, announced: bool = False) -> SeenRate:
    """The :data:`SeenRate` of a rate observation: newer than the history's rows before its
    day; ``announced`` (a statement, the FOMC's on day D) also newer than the rate symbol's
    own row of D, which still holds the old range."""
    fields = observation.fields or {}
    day = observation.session or observation.time.astimezone(UTC).date()
    newer_than = day if announced else day - timedelta(days=1)
    return day, fields.get("lower"), float(fields.get("upper", observation.value)), newer_than


def _load_seen_rate(saved: Any) -> SeenRate | None:
    if not isinstance(saved, list) or len(saved) not in (3, 4):
        return None
    day = parse_day(saved[0])
    if day is None:
        return None
    newer_than = parse_day(saved[3]) if len(saved) == 4 else day - timedelta(days=1)
    if newer_than is None:
        return None
    lower = float(saved[1]) if saved[1] is not None else None
    return day, lower, float(saved[2]), newer_than


class _LateData:
    """Whether a digest must wait: sessions of its symbols closed by the tick, yet none of
    their closes for the day is in the history (data lag) — a digest then would be a copy of
    yesterday's under today's date. Symbols whose data ended (stale) do not count."""

    __slots__ = ("_checks",)

    def __init__(
        self,
        symbols: Sequence[str],
        calendar_of: Callable[[str], MarketCalendar],
        history: History,
        closes: _BatchCloses,
        long: bool,
    ) -> None:
        # Per symbol: its series, a cursor, its session closes, and (long batches: a
        # backtest) the set of its row dates, so the usual answer is one set lookup.
        self._checks = [
            (
                series,
                Cursor(series),
                closes.of(calendar_of(symbol)),
                set(series.dates) if long else None,
            )
            for symbol in dict.fromkeys(symbols)
            if (series := history.get(symbol)).dates
        ]

    def waiting(self, day: date, moment: datetime) -> bool:
        closed = False
        for series, cursor, session_closes, row_days in self._checks:
            close_time = session_closes.get(day)
            if close_time is None or close_time > moment:
                continue
            if row_days is not None and day in row_days:
                return False
            index = cursor.on_or_before(day)
            if index < 0:
                continue
            last = series.dates[index]
            if last == day:
                return False
            if (day - last).days <= STALE_DAYS:
                closed = True
        return closed


def _pct(value: float, base: float) -> str:
    return f"{(value / base - 1.0) * 100.0:+.2f}%" if base else "n/a"


class _SessionCloses(dict[date, datetime | None]):
    """``day`` → close of the session named ``day`` (``None``: no session), for one calendar.

    Filled with the sessions of a batch's span in one schedule lookup; any other day asked is
    looked up on the calendar once and remembered.
    """

    __slots__ = ("calendar",)

    def __init__(self, calendar: MarketCalendar, first: date, last: date) -> None:
        super().__init__((s.date, s.close) for s in calendar.sessions_between(first, last))
        self.calendar = calendar

    def __missing__(self, day: date) -> datetime | None:
        session = self.calendar.session_on(day)
        close = self[day] = session.close if session is not None else None
        return close


class _BatchCloses:
    """Session closes per calendar over the local days a batch of ticks spans.

    The digest asks, per tick, whether the day trades and whether each symbol's session has
    closed; asking the calendar each time cost more than the rest of a backtest's digest.
    """

    __slots__ = ("_by_name", "_first", "_last")

    def __init__(self, observations: Sequence[Observation], tz: ZoneInfo) -> None:
        if observations:  # time-ordered; a day outside the span is looked up on demand
            self._first = observations[0].time.astimezone(tz).date()
            self._last = observations[-1].time.astimezone(tz).date()
        else:
            self._first, self._last = date.max, date.min
        self._by_name: dict[str, _SessionCloses] = {}

    def of(self, calendar: MarketCalendar) -> _SessionCloses:
        """The calendar's closes (``closes[day]``; ``None`` when no session is named ``day``)."""
        found = self._by_name.get(calendar.name)
        if found is None:
            found = self._by_name[calendar.name] = _SessionCloses(calendar, self._first, self._last)
        return found


class _RecordTracker:
    """The record close of a series through a row, advanced row by row (amortised O(1))."""

    __slots__ = (
        "_text",
        "_text_of",
        "day",
        "month",
        "month_base",
        "series",
        "through",
        "value",
        "year",
        "year_base",
    )

    def __init__(self, series: DailySeries, value: float | None, day: date | None, through: int):
        self.series = series
        self.value = value
        self.day = day
        self.through = through  # index of the last row folded in; -1: none
        # MTD/YTD base closes of the month/year last asked (looked up once per period).
        self.month: tuple[int, int] | None = None
        self.month_base = 0.0
        self.year: int | None = None
        self.year_base = 0.0
        # "  record close 2,442.74 (2021-11-08): " for the record in ``_text_of``.
        self._text = ""
        self._text_of: tuple[float | None, date | None] = (None, None)

    def text(self) -> str:
        """The digest line's start for the current record (formatted again only when the
        record changes: a few hundred times in 40 years, not every day)."""
        if self._text_of != (self.value, self.day) or not self._text:
            self._text_of = (self.value, self.day)
            day = self.day.isoformat() if self.day is not None else "None"
            self._text = f"  record close {self.value:,.2f} ({day}): "
        return self._text

    def bases(self, day: date) -> tuple[float, float]:
        """The closes before ``day``'s month and year began (0.0 when history is too short)."""
        series = self.series
        if self.month != (day.year, day.month):
            self.month = (day.year, day.month)
            i = series.index_before(day.replace(day=1))
            self.month_base = series.values[i] if i >= 0 else 0.0
        if self.year != day.year:
            self.year = day.year
            i = series.index_before(date(day.year, 1, 1))
            self.year_base = series.values[i] if i >= 0 else 0.0
        return self.month_base, self.year_base

    @classmethod
    def load(cls, series: DailySeries, saved: Mapping[str, Any] | None) -> _RecordTracker:
        through_day = parse_day((saved or {}).get("through"))
        if saved is None or through_day is None or saved.get("record") is None:
            return cls(series, None, None, -1)
        return cls(
            series,
            float(saved["record"]),
            date.fromisoformat(saved["date"]),
            series.index_on_or_before(through_day),
        )

    def advance(self, index: int) -> tuple[float, date]:
        """The record close of rows ``..index``."""
        values, dates = self.series.values, self.series.dates
        if self.value is None or self.day is None:
            window = values[: index + 1]
            best = max(window)
            self.value, self.day, self.through = best, dates[window.index(best)], index
            return best, self.day
        best, best_day = self.value, self.day
        for i in range(self.through + 1, index + 1):
            if values[i] > best:
                best, best_day = values[i], dates[i]
        self.value, self.day = best, best_day
        self.through = max(self.through, index)
        return best, best_day

    def dump(self) -> dict[str, Any]:
        if self.value is None or self.day is None or self.through < 0:
            return {}
        return {
            "record": self.value,
            "date": self.day.isoformat(),
            "through": self.series.dates[self.through].isoformat(),
        }


class _RateTracker:
    """The current rate (range) and the day it took effect, advanced row by row."""

    __slots__ = ("_text_of", "lower", "series", "since", "text", "through", "upper")

    def __init__(self, series: DailySeries) -> None:
        self.series = series
        self.lower = series.columns.get("lower")
        self.upper = series.columns.get("upper") or series.values
        self.since: date | None = None
        self.through = -1
        self.text: str | None = None  # the line for row ``through``
        self._text_of: tuple[Any, ...] = ()  # what ``text`` says: (name, row, since)

    @classmethod
    def load(cls, series: DailySeries, saved: Mapping[str, Any] | None) -> _RateTracker:
        tracker = cls(series)
        through = parse_day((saved or {}).get("through"))
        since = parse_day((saved or {}).get("since"))
        if through is not None and since is not None:
            tracker.through = series.index_on_or_before(through)
            tracker.since = since if tracker.through >= 0 else None
        return tracker

    def _row(self, i: int) -> tuple[float | None, float]:
        return (self.lower[i] if self.lower is not None else None, self.upper[i])

    def line(self, name: str, day: date, seen: SeenRate | None = None) -> str:
        """``Fed funds target range 4.25–4.50% (since 2024-12-19)``.

        ``seen``: the newest rate observation the live poll delivered (:data:`SeenRate`); it
        wins over the history when it is newer than the history's last row up to ``day`` and
        says something else (a cut announced today, before the daily history has its row).
        """
        index = self.series.index_on_or_before(day)
        if (
            seen is not None
            and seen[0] <= day
            and (index < 0 or self.series.dates[index] <= seen[3])
            and (index < 0 or (seen[1], seen[2]) != self._row(index))
        ):
            return f"{name} {fmt_range(seen[1], seen[2])} (since {seen[0].isoformat()})"
        if index < 0:
            return f"{name}: no data yet"
        if index == self.through and self.text is not None:
            return self.text  # unchanged since the last digest (rates move a few times a year)
        current = self._row(index)
        if self.since is None or self.through < 0 or self.through > index:
            i = index  # walk back to where the current value began (once)
            while i > 0 and self._row(i - 1) == current:
                i -= 1
            self.since = self.series.dates[i]
        else:
            for i in range(self.through + 1, index + 1):
                if self._row(i) != self._row(i - 1):
                    self.since = self.series.dates[i]
        self.through = index
        # A daily rate series gets a new row every day, mostly the same range: format the line
        # again only when what it says changes (always for a zero bound: 0.0 == -0.0, but they
        # print differently).
        key = (name, current, self.since)
        if self._text_of != key or self.text is None or 0.0 in current:
            self._text_of = key
            self.text = f"{name} {fmt_range(*current)} (since {self.since.isoformat()})"
        return self.text

    def dump(self) -> dict[str, Any]:
        if self.since is None or self.through < 0:
            return {}
        return {
            "through": self.series.dates[self.through].isoformat(),
            "since": self.since.isoformat(),
        }
