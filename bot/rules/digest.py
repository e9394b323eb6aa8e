"""``digest``: a scheduled summary after the close, once per trading day.

At ``at`` (e.g. ``"16:15"``) in the exchange time zone of the first listed symbol's calendar
(XNYS and CME: New York; ``always``: the configured ``timezone``) on that calendar's trading days,
the digest lists for each symbol its last close, the day/MTD/YTD change, the distance to its
record close and to every level configured in a ``cross`` rule on it, and the days since its last
record close; then the current range of the ``rate`` symbol, if one is given.

It fires on ``tick`` observations (the live worker emits one per poll cycle; the backtest emits
one per trading day at ``at``, see :meth:`DigestRule.scheduled_times`). A day's close is used
only once that session has closed by the tick's time — no look-ahead in backtests.

Length (over 400 lines): the longest rule; its loop, its fast path (:mod:`bot.rules.batch`) and
the record and rate trackers it keeps in its state word the same digest and are tested together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import Field

from bot.calendars import MarketCalendar, get_calendar
from bot.clock import Clock
from bot.config import ClockTime, RuleParams, StrList
from bot.model import AlertDraft, DailySeries, History, Observation
from bot.rules.base import RULES, Rule, RuleContext, RuleState
from bot.rules.batch import base_indices, fast_path
from bot.rules.text import fmt_number, fmt_range
from bot.rules.windows import Cursor, Window, parse_day

_MTD, _YTD = Window("mtd"), Window("ytd")


class DigestParams(RuleParams):
    """``type: digest`` options."""

    symbols: StrList = Field(min_length=1)
    at: ClockTime
    #: a rate symbol (e.g. the FRED target range) whose current value closes the digest
    rate: str | None = None

    def watched_symbols(self) -> list[str]:
        return [*self.symbols, *([self.rate] if self.rate else [])]


def _levels_by_symbol(all_rules: Sequence[RuleParams]) -> dict[str, list[float]]:
    """Levels of the ``cross`` rules configured on each symbol (sorted, no duplicates)."""
    found: dict[str, set[float]] = {}
    for params in all_rules:
        if params.type != "cross" or not params.enabled:
            continue
        symbol = getattr(params, "symbol", None)
        all_levels = getattr(params, "all_levels", None)
        if isinstance(symbol, str) and callable(all_levels):
            found.setdefault(symbol, set()).update(all_levels())
    return {symbol: sorted(levels) for symbol, levels in found.items()}


@RULES.register("digest")
class DigestRule(Rule[DigestParams]):
    """A once-a-day summary on trading days at ``at``."""

    type_name: ClassVar[str] = "digest"
    params_model: ClassVar[type[RuleParams]] = DigestParams
    template_fields: ClassVar[frozenset[str]] = frozenset({"date", "summary"})
    observation_kinds: ClassVar[frozenset[str]] = frozenset({"tick"})

    def __init__(self, params: DigestParams, context: RuleContext) -> None:
        super().__init__(params, context)
        first = context.symbols.get(params.symbols[0])
        calendar_name = first.calendar if first is not None else "always"
        self.calendar: MarketCalendar = get_calendar(calendar_name)
        #: the time zone ``at`` is read in
        self.tz: ZoneInfo = context.tz if calendar_name == "always" else self.calendar.tz
        # Precomputed once: the digest is built every trading day of a backtest.
        # The levels line: one %-format string per symbol, filled with each day's distances.
        self._levels: dict[str, tuple[list[float], str]] = {
            symbol: (
                levels,
                "  levels: " + ", ".join(f"{fmt_number(lv)} %+.2f%%" for lv in levels),
            )
            for symbol, levels in _levels_by_symbol(context.all_rules).items()
        }
        self._names = {s: f"{context.name(s)} ({s})" for s in params.watched_symbols()}
        # Each symbol's lines as one %-format template (see _symbol_parts): the same text as
        # _symbol_lines gives in the usual case.
        self._templates = {
            s: self._names[s].replace("%", "%%")
            + " %s on %s: day %+.2f%%, MTD %+.2f%%, YTD %+.2f%%\n%s%+.2f%%, %s"
            + ("\n" + self._levels[s][1] if s in self._levels else "")
            for s in params.symbols
        }
        self._calendars = {
            s: get_calendar(context.symbols[s].calendar)
            for s in params.symbols
            if s in context.symbols
        }

    def history_days(self) -> int | None:
        return None  # the record close needs all of it

    def scheduled_times(self, start: date, end: date) -> list[datetime]:
        """The moments (UTC) the digest is due between the dates: ``at`` on each trading day."""
        at = self.params.at
        days: list[date]
        if self.calendar.name == "always":
            days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
        else:
            days = [session.date for session in self.calendar.sessions_between(start, end)]
        return [datetime.combine(day, at, self.tz).astimezone(UTC) for day in days]

    def evaluate(
        self,
        observations: Sequence[Observation],
        history: History,
        state: Mapping[str, Any] | None,
        clock: Clock,
    ) -> tuple[RuleState, list[AlertDraft]]:
        state = state or {}
        last_day = parse_day(state.get("last_day"))
        # Records and the rate's "since" are kept incrementally: plain objects during the call,
        # ISO strings in the state between calls.
        records = {
            symbol: _RecordTracker.load(
                history.get(symbol), (state.get("records") or {}).get(symbol)
            )
            for symbol in self.params.symbols
        }
        rate = (
            _RateTracker.load(history.get(self.params.rate), state.get("rate"))
            if self.params.rate
            else None
        )
        drafts: list[AlertDraft] = []
        at = self.params.at
        tz = self.tz
        # Session closes of the batch's days, looked up once per call instead of asking the
        # calendar twice per digest (a backtest evaluates ~10,000 ticks in one call).
        closes = _BatchCloses(observations, tz)
        trading = closes.of(self.calendar) if self.calendar.name != "always" else None
        due: list[tuple[Observation, datetime, date]] = []
        for observation in observations:
            local = observation.time.astimezone(tz)
            day = local.date()
            if local.time() < at or (last_day is not None and day <= last_day):
                continue
            if trading is not None and trading[day] is None:
                continue  # not a trading day (no session named ``day``)
            due.append((observation, local, day))
            last_day = day
        if due:
            drafts = self._digests(due, history, records, rate, closes)
        new_state = {
            "last_day": last_day.isoformat() if last_day else None,
            "records": {symbol: tracker.dump() for symbol, tracker in records.items()},
            "rate": rate.dump() if rate is not None else {},
        }
        return new_state, drafts

    # -- the summary ---------------------------------------------------------------------------

    def _digests(
        self,
        due: Sequence[tuple[Observation, datetime, date]],
        history: History,
        records: dict[str, _RecordTracker],
        rate: _RateTracker | None,
        closes: _BatchCloses,
    ) -> list[AlertDraft]:
        """The digests of the due ticks (``(tick, local time, local day)``, in time order).

        Built a symbol at a time (each symbol's part of every digest, then the digests): a
        symbol's part depends only on its own series and record tracker, so this gives the
        texts digest by digest would, with the per-symbol lookups hoisted out of the loop.
        """
        params = self.params
        parts = {
            symbol: self._symbol_parts(symbol, due, history.get(symbol), records[symbol], closes)
            for symbol in dict.fromkeys(params.symbols)  # a symbol listed twice: same part
        }
        texts = [parts[symbol][0] for symbol in params.symbols]
        firsts = parts[params.symbols[0]][1]
        rate_name = self._names[params.rate] if rate is not None and params.rate else None
        drafts: list[AlertDraft] = []
        for position, (observation, local, day) in enumerate(due):
            day_text = day.isoformat()
            header = "Daily digest %s (%02d:%02d %s)" % (  # noqa: UP031 - %-format: 2x faster
                day_text,
                local.hour,
                local.minute,
                local.tzname(),
            )
            lines = [text[position] for text in texts]
            if rate is not None and rate_name is not None:
                lines.append(rate.line(rate_name, day))
            summary = "\n".join(lines)
            drafts.append(
                AlertDraft(
                    key=day_text,
                    symbol=params.symbols[0],
                    time=observation.time,
                    value=firsts[position],
                    text=f"{header}\n{summary}" if lines else header,
                    fields={"date": day_text, "summary": summary},
                )
            )
        return drafts

    def _symbol_parts(
        self,
        symbol: str,
        due: Sequence[tuple[Observation, datetime, date]],
        series: DailySeries,
        record: _RecordTracker,
        closes: _BatchCloses,
    ) -> tuple[list[str], list[float]]:
        """The symbol's lines (one string) in each due digest, and the close they report
        (0.0 without data).

        Short batches (the live loop) word each digest with :meth:`_symbol_lines`. Long ones
        (a backtest) take the fast path: numbers from :meth:`_batch_numbers`, and one %-format
        template per symbol (its name and levels baked in: one formatting call per digest
        instead of a dozen); rows where a base, the record or the close is zero still take
        :meth:`_symbol_lines`, which words those cases.
        """
        session_closes = closes.of(self._calendars.get(symbol, self.calendar))
        cursor = Cursor(series)
        one_day = timedelta(days=1)
        indices: list[int] = []
        for observation, _local, day in due:
            # The cutoff: ``day`` once its session closed by the tick, else the day before
            # (a digest scheduled before the close must not read that close).
            close_time = session_closes.get(day)
            closed = close_time <= observation.time if close_time is not None else False
            indices.append(cursor.on_or_before(day if closed else day - one_day))
        values, dates = series.values, series.dates
        no_data = f"{self._names[symbol]}: no data yet"
        texts: list[str] = []
        reported: list[float] = []
        found = (
            fast_path(len(due), lambda: self._batch_numbers(symbol, series, indices))
            if dates
            else None
        )
        if found is None:  # the live loop: a digest or two at a time
            for index in indices:
                if index < 0:
                    texts.append(no_data)
                    reported.append(0.0)
                    continue
                lines: list[str] = []
                self._symbol_lines(lines, symbol, series, index, record)
                texts.append("\n".join(lines))
                reported.append(values[index])
            return texts, reported
        numbers, usual = found
        template = self._templates[symbol]
        for position, index in enumerate(indices):
            if index < 0:
                texts.append(no_data)
                reported.append(0.0)
                continue
            close, close_day = values[index], dates[index]
            reported.append(close)
            best, best_day = record.advance(index)
            if not (usual[position] and best):
                lines = []
                self._symbol_lines(lines, symbol, series, index, record)
                texts.append("\n".join(lines))
                continue
            days = (close_day - best_day).days
            if days == 0:
                since = "a record close today"
            else:
                since = f"{days:,d} day{'' if days == 1 else 's'} since"
            # numbers[position]: day, MTD, YTD %, then the distance to each level
            day_pct, mtd_pct, ytd_pct, *distances = numbers[position]
            texts.append(
                template
                % (
                    format(close, ",.2f"),
                    close_day.isoformat(),
                    day_pct,
                    mtd_pct,
                    ytd_pct,
                    record.text(),
                    (close / best - 1.0) * 100.0,
                    since,
                    *distances,
                )
            )
        return texts, reported

    def _batch_numbers(
        self, symbol: str, series: DailySeries, indices: Sequence[int]
    ) -> tuple[list[list[float]], list[bool]]:
        """Fast path for long batches: per row index, the day/MTD/YTD % changes and the %
        distances to the symbol's levels, computed with numpy over all the rows at once (the
        same float64 arithmetic as :meth:`_symbol_lines`), and whether the row is usual (its
        close and every base non-zero: :meth:`_symbol_lines` words the other rows itself)."""
        import numpy as np

        ordinals, values = series.arrays()
        rows = np.array(indices, dtype=np.int64)
        at = np.maximum(rows, 0)
        close = values[at]
        day_base = np.where(rows > 0, values[np.maximum(rows - 1, 0)], 0.0)
        columns = [day_base]
        for window in (_MTD, _YTD):  # the closes before the month/year began, as bases() finds
            base = base_indices(window, series, ordinals[at])
            columns.append(np.where(base >= 0, values[np.maximum(base, 0)], 0.0))
        usual = (rows >= 0) & (close != 0)
        for base in columns:
            usual &= base != 0
        levels = self._levels.get(symbol)
        targets = np.array(levels[0] if levels else [], dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            table = np.column_stack(
                [
                    *[(close / base - 1.0) * 100.0 for base in columns],
                    (targets[None, :] / close[:, None] - 1.0) * 100.0,
                ]
            )
        return table.tolist(), usual.tolist()

    def _symbol_lines(
        self,
        lines: list[str],
        symbol: str,
        series: DailySeries,
        index: int,
        record: _RecordTracker,
    ) -> None:
        """Append the symbol's lines.

        This runs for every symbol on every trading day of a backtest (~20,000 times for 40
        years of two symbols), so numbers are formatted with ``%`` (about twice as fast as
        ``format``/f-strings for floats, same text) and the record's part of its line is
        formatted only when the record changes.
        """
        values = series.values
        close, close_day = values[index], series.dates[index]
        day_base = values[index - 1] if index > 0 else 0.0
        mtd_base, ytd_base = record.bases(close_day)
        best, best_day = record.advance(index)
        days = (close_day - best_day).days
        if days == 0:
            since = "a record close today"
        else:
            since = f"{days:,d} day{'' if days == 1 else 's'} since"
        head = f"{self._names[symbol]} {close:,.2f} on {close_day.isoformat()}: "
        if day_base and mtd_base and ytd_base:  # the usual case, without a call per number
            lines.append(
                head
                + "day %+.2f%%, MTD %+.2f%%, YTD %+.2f%%"  # noqa: UP031 - see docstring
                % (
                    (close / day_base - 1.0) * 100.0,
                    (close / mtd_base - 1.0) * 100.0,
                    (close / ytd_base - 1.0) * 100.0,
                )
            )
        else:
            lines.append(
                f"{head}day {_pct(close, day_base)}, MTD {_pct(close, mtd_base)}, "
                f"YTD {_pct(close, ytd_base)}"
            )
        to_record = "%+.2f%%" % ((close / best - 1.0) * 100.0) if best else _pct(close, best)
        lines.append(f"{record.text()}{to_record}, {since}")
        levels = self._levels.get(symbol)
        if levels and close:
            targets, template = levels
            lines.append(template % tuple([(level / close - 1.0) * 100.0 for level in targets]))


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

    def line(self, name: str, day: date) -> str:
        """``Fed funds target range 4.25–4.50% (since 2024-12-19)``."""
        index = self.series.index_on_or_before(day)
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
