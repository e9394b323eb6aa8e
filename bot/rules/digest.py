"""``digest``: a scheduled summary after the close, once per trading day.

At ``at`` (e.g. ``"16:15"``) in the exchange time zone of the first listed symbol's calendar
(XNYS and CME: New York; ``always``: the configured ``timezone``) on that calendar's trading days,
the digest lists for each symbol its last close, the day/MTD/YTD change, the distance to its
record close and to every level configured in a ``cross`` rule on it, and the days since its last
record close; then the current range of the ``rate`` symbol, if one is given.

It fires on ``tick`` observations (the live worker emits one per poll cycle; the backtest emits
one per trading day at ``at``, see :meth:`DigestRule.scheduled_times`). A day's close is used
only once that session has closed by the tick's time — no look-ahead in backtests.
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
from bot.context import longest_phrase, series_facts
from bot.model import AlertDraft, DailySeries, History, Observation
from bot.rules.base import RULES, Rule, RuleContext, RuleState
from bot.rules.text import fmt_number, fmt_range
from bot.rules.windows import BATCH_MIN, Cursor, Window, base_indices, parse_day

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
    #: ticks, and the rate symbol's observations: a rate change seen by the live poll (a cut
    #: announced today) shows in that day's digest before the daily history has its row
    observation_kinds: ClassVar[frozenset[str]] = frozenset({"tick", "rate"})

    def __init__(self, params: DigestParams, context: RuleContext) -> None:
        super().__init__(params, context)
        first = context.symbols.get(params.symbols[0])
        calendar_name = first.calendar if first is not None else "always"
        self.calendar: MarketCalendar = get_calendar(calendar_name)
        #: the time zone ``at`` is read in
        self.tz: ZoneInfo = context.tz if calendar_name == "always" else self.calendar.tz
        # Precomputed once: the digest is built every trading day of a backtest.
        # Levels per symbol, with their names as written ("2,500").
        self._levels: dict[str, tuple[list[float], list[str]]] = {
            symbol: (levels, [fmt_number(lv) for lv in levels])
            for symbol, levels in _levels_by_symbol(context.all_rules).items()
        }
        self._names = {s: f"{context.name(s)} ({s})" for s in params.watched_symbols()}
        # Each symbol's lines as one %-format template (see _symbol_parts): the same text as
        # _symbol_lines gives in the usual case. A level's distance reads "2,500: 3.80% above":
        # one template per pattern of sides (bit i set: level i above the close), made when
        # first needed — a day's numbers then fill it in one formatting call.
        self._templates: dict[str, dict[int, str]] = {s: {} for s in params.symbols}
        # the due digests of the current call and their days as day ordinals (numpy)
        self._due_days: tuple[Sequence[Any], Any] | None = None
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
        # The newest rate observation seen (live polls): (day, lower, upper).
        seen_rate = _load_seen_rate(state.get("rate_seen"))
        drafts: list[AlertDraft] = []
        at = self.params.at
        tz = self.tz
        ticks = [o for o in observations if o.kind == "tick"]
        # Session closes of the batch's days, looked up once per call instead of asking the
        # calendar twice per digest (a backtest evaluates ~10,000 ticks in one call).
        closes = _BatchCloses(ticks, tz)
        trading = closes.of(self.calendar) if self.calendar.name != "always" else None
        late = _LateData(self, history, closes, len(ticks) >= BATCH_MIN)
        due: list[_Due] = []
        seen_obs: Observation | None = None
        for observation in observations:
            if observation.kind != "tick":
                if observation.kind == "rate" and observation.symbol == self.params.rate:
                    seen_obs = observation  # converted only when a digest is due
                continue
            local = observation.time.astimezone(tz)
            day = local.date()
            if local.time() < at or (last_day is not None and day <= last_day):
                continue
            if trading is not None and trading[day] is None:
                continue  # not a trading day (no session named ``day``)
            if late.waiting(day, observation.time):
                continue  # sessions closed, their closes not in yet: not yesterday's numbers
            if seen_obs is not None:
                seen_rate, seen_obs = _seen_rate_of(seen_obs), None
            due.append((observation, local, day, seen_rate))
            last_day = day
        if due:
            drafts = self._digests(due, history, records, rate, closes)
        new_state: dict[str, Any] = {
            "last_day": last_day.isoformat() if last_day else None,
            "records": {symbol: tracker.dump() for symbol, tracker in records.items()},
            "rate": rate.dump() if rate is not None else {},
        }
        if seen_obs is not None:
            seen_rate = _seen_rate_of(seen_obs)
        if seen_rate is not None:
            new_state["rate_seen"] = [seen_rate[0].isoformat(), seen_rate[1], seen_rate[2]]
        return new_state, drafts

    # -- the summary ---------------------------------------------------------------------------

    def _digests(
        self,
        due: Sequence[_Due],
        history: History,
        records: dict[str, _RecordTracker],
        rate: _RateTracker | None,
        closes: _BatchCloses,
    ) -> list[AlertDraft]:
        """The digests of the due ticks (``(tick, local time, local day, rate seen)``, in time
        order).

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
        no_data = {f"{self._names[symbol]}: no data yet" for symbol in params.symbols}
        rate_name = self._names[params.rate] if rate is not None and params.rate else None
        drafts: list[AlertDraft] = []
        for position, (observation, local, day, seen) in enumerate(due):
            day_text = day.isoformat()
            header = "Daily digest %s (%02d:%02d %s)" % (  # noqa: UP031 - %-format: 2x faster
                day_text,
                local.hour,
                local.minute,
                local.tzname(),
            )
            # None: a symbol whose data ended (stale): not listed
            lines = [line for text in texts if (line := text[position]) is not None]
            if no_data.issuperset(lines):
                continue  # not one close to report (all data ended, or none yet): no digest
            if rate is not None and rate_name is not None:
                lines.append(rate.line(rate_name, day, seen))
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
        self._due_days = None  # not kept past the call
        return drafts

    def _symbol_parts(
        self,
        symbol: str,
        due: Sequence[_Due],
        series: DailySeries,
        record: _RecordTracker,
        closes: _BatchCloses,
    ) -> tuple[list[str | None], list[float]]:
        """The symbol's lines (one string; ``None``: not listed, its data ended) in each due
        digest, and the close they report (0.0 without data).

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
        for observation, _local, day, _seen in due:
            # The cutoff: ``day`` once its session closed by the tick, else the day before
            # (a digest scheduled before the close must not read that close).
            close_time = session_closes.get(day)
            closed = close_time <= observation.time if close_time is not None else False
            indices.append(cursor.on_or_before(day if closed else day - one_day))
        values, dates = series.values, series.dates
        no_data = f"{self._names[symbol]}: no data yet"
        texts: list[str | None] = []
        reported: list[float] = []
        if len(due) < BATCH_MIN or not dates:  # the live loop: a digest or two at a time
            for (_obs, _local, day, _seen), index in zip(due, indices, strict=True):
                if index < 0:
                    texts.append(no_data)
                    reported.append(0.0)
                    continue
                if (day - dates[index]).days > STALE_DAYS:
                    texts.append(None)
                    reported.append(0.0)
                    continue
                lines: list[str] = []
                self._symbol_lines(lines, symbol, series, index, record, day)
                texts.append("\n".join(lines))
                reported.append(values[index])
            return texts, reported
        import numpy as np

        numbers, sides, usual = self._batch_numbers(symbol, series, indices)
        facts = series_facts(series)
        ranks = facts.drought_ranks().tolist()
        # The record standing at each row, from the series' record table (bot.context: the
        # same record as _RecordTracker, without a call per row); the tracker catches up once.
        record_rows = np.array(facts.record_rows, dtype=np.int64)
        rows_array = np.array(indices, dtype=np.int64)
        at_rows = np.maximum(rows_array, 0)
        standing = record_rows[np.searchsorted(record_rows, at_rows, side="right") - 1]
        day_gaps = (facts.ordinals[at_rows] - facts.ordinals[standing]).tolist()
        standing_rows: list[int] = standing.tolist()
        text_row, record_text = -1, ""
        # Per due digest: whether the close is stale (not listed), and its date's marker.
        cached = self._due_days
        if cached is None or cached[0] is not due:  # once per call, shared by the symbols
            days_of_due = [d[2].toordinal() for d in due]
            cached = self._due_days = (due, np.array(days_of_due, dtype=np.int64))
        gaps = np.where(rows_array >= 0, cached[1] - facts.ordinals[at_rows], 0)
        stale: list[bool] = (gaps > STALE_DAYS).tolist()
        markers: list[str] = np.where(
            gaps == 0, "", np.where(gaps == 1, " (yesterday's close)", " (last close)")
        ).tolist()
        templates = self._templates[symbol]
        # One zip over the per-digest columns (cheaper than indexing each by position).
        for index, is_stale, row, ok, days, row_numbers, side, marker, entry in zip(
            indices,
            stale,
            standing_rows,
            usual,
            day_gaps,
            numbers,
            sides,
            markers,
            due,
            strict=True,
        ):
            if index < 0:
                texts.append(no_data)
                reported.append(0.0)
                continue
            if is_stale:
                texts.append(None)
                reported.append(0.0)
                continue
            close, close_day = values[index], dates[index]
            reported.append(close)
            best = values[row]
            if not (ok and best):
                lines = []
                self._symbol_lines(lines, symbol, series, index, record, entry[2])
                texts.append("\n".join(lines))
                continue
            if row != text_row:  # formatted again only when the record changes
                text_row = row
                record_text = f"  record close {best:,.2f} ({dates[row].isoformat()}): "
            if days == 0:
                since = "a record close today"
            else:
                rank = ranks[index]
                phrase = _PHRASES.get(rank)
                if phrase is None:
                    phrase = _phrase(rank)
                since = (
                    "%s days since%s" % (format(days, ",d"), phrase)  # noqa: UP031 - hot path
                    if days != 1
                    else "1 day since" + phrase
                )
            # numbers[position]: day, MTD, YTD %, then |distance| % to each level
            day_pct, mtd_pct, ytd_pct, *distances = row_numbers
            template = templates.get(side)
            if template is None:
                template = templates[side] = self._template(symbol, side)
            texts.append(
                template
                % (
                    format(close, ",.2f"),
                    close_day.isoformat(),
                    marker,
                    day_pct,
                    mtd_pct,
                    ytd_pct,
                    record_text,
                    (close / best - 1.0) * 100.0,
                    since,
                    *distances,
                )
            )
        last = max(indices)
        if last >= 0:
            record.advance(last)  # the tracker's state, as the per-row loop leaves it
        return texts, reported

    def _template(self, symbol: str, sides: int) -> str:
        """The symbol's %-format template for one pattern of level sides (see __init__)."""
        text = (
            self._names[symbol].replace("%", "%%")
            + " %s on %s%s: day %+.2f%%, MTD %+.2f%%, YTD %+.2f%%\n%s%+.2f%%, %s"
        )
        levels = self._levels.get(symbol)
        if levels:
            text += "\n  levels: " + ", ".join(
                f"{name}: %.2f%% {'above' if sides >> i & 1 else 'below'}"
                for i, name in enumerate(levels[1])
            )
        return text

    def _batch_numbers(
        self, symbol: str, series: DailySeries, indices: Sequence[int]
    ) -> tuple[list[list[float]], list[int], list[bool]]:
        """Fast path for long batches: per row index, the day/MTD/YTD % changes and the
        absolute % distances to the symbol's levels, computed with numpy over all the rows at
        once (the same float64 arithmetic as :meth:`_symbol_lines`); the sides of the levels
        (bit i set: level i above the close); and whether the row is usual (its close, every
        base and every distance non-zero: :meth:`_symbol_lines` words the other rows itself)."""
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
            distances = (targets[None, :] / close[:, None] - 1.0) * 100.0
            table = np.column_stack(
                [*[(close / base - 1.0) * 100.0 for base in columns], np.abs(distances)]
            )
        usual &= (distances != 0).all(axis=1)
        bits = (1 << np.arange(len(targets), dtype=np.int64)) if len(targets) < 63 else None
        if bits is None:  # too many levels for a bit mask: the scalar code words them
            usual[:] = False
            sides = np.zeros(len(rows), dtype=np.int64)
        else:
            sides = ((distances > 0) * bits[None, :]).sum(axis=1)
        return table.tolist(), sides.tolist(), usual.tolist()

    def _symbol_lines(
        self,
        lines: list[str],
        symbol: str,
        series: DailySeries,
        index: int,
        record: _RecordTracker,
        day: date,
    ) -> None:
        """Append the symbol's lines in the digest of ``day``.

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
        since = _since(days, series_facts(series).drought_rank(index) if days else 0)
        head = (
            f"{self._names[symbol]} {close:,.2f} on {close_day.isoformat()}"
            f"{_marker(close_day, day)}: "
        )
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
            names = levels[1]
            lines.append(
                "  levels: "
                + ", ".join(
                    f"{name}: {_side((level / close - 1.0) * 100.0)}"
                    for name, level in zip(names, levels[0], strict=True)
                )
            )


#: A symbol whose last close is more than this many days older than the digest is not listed
#: (its data ended: a backtest past its last row), instead of a stale close repeated for months.
STALE_DAYS = 7

#: A due digest: (the tick, its local time, its local day, the newest rate observation seen).
_Due = tuple[Observation, datetime, date, "tuple[date, float | None, float] | None"]


def _marker(close_day: date, day: date) -> str:
    """How a close not of the digest's own day is marked: RTY=F at 16:15 (CME closes at 17:00)
    shows the previous day's close."""
    if close_day == day:
        return ""
    return " (yesterday's close)" if (day - close_day).days == 1 else " (last close)"


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


def _seen_rate_of(observation: Observation) -> tuple[date, float | None, float]:
    """(day, lower, upper) of a rate observation."""
    fields = observation.fields or {}
    day = observation.session or observation.time.astimezone(UTC).date()
    return day, fields.get("lower"), float(fields.get("upper", observation.value))


def _load_seen_rate(saved: Any) -> tuple[date, float | None, float] | None:
    if not isinstance(saved, list) or len(saved) != 3:
        return None
    day = parse_day(saved[0])
    if day is None:
        return None
    return day, (float(saved[1]) if saved[1] is not None else None), float(saved[2])


class _LateData:
    """Whether a digest must wait: sessions of its symbols closed by the tick, yet none of
    their closes for the day is in the history (data lag) — a digest then would be a copy of
    yesterday's under today's date. Symbols whose data ended (stale) do not count."""

    __slots__ = ("_checks",)

    def __init__(
        self, rule: DigestRule, history: History, closes: _BatchCloses, long: bool
    ) -> None:
        # Per symbol: its series, a cursor, its session closes, and (long batches: a
        # backtest) the set of its row dates, so the usual answer is one set lookup.
        self._checks = [
            (
                series,
                Cursor(series),
                closes.of(rule._calendars.get(symbol, rule.calendar)),
                set(series.dates) if long else None,
            )
            for symbol in dict.fromkeys(rule.params.symbols)
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

    def line(
        self, name: str, day: date, seen: tuple[date, float | None, float] | None = None
    ) -> str:
        """``Fed funds target range 4.25–4.50% (since 2024-12-19)``.

        ``seen``: the newest rate observation the live poll delivered, ``(day, lower, upper)``;
        it wins over the history when it is newer than the history's last row up to ``day`` and
        says something else (a cut announced today, before the daily history has its row).
        """
        index = self.series.index_on_or_before(day)
        if (
            seen is not None
            and seen[0] <= day
            and (index < 0 or seen[0] > self.series.dates[index])
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
