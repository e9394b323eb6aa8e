"""``digest``: a scheduled summary after the close, once per trading day.

At ``at`` (e.g. ``"16:15"``) in the exchange time zone of the first listed symbol's calendar
(XNYS and CME: New York; ``always``: the configured ``timezone``) on that calendar's trading days,
the digest lists for each symbol its last close, the day/MTD/YTD change, the distance to its
record close and to every level configured in a ``cross`` rule on it, and the days since its last
record close; then the current range of the ``rate`` symbol, if one is given, and the latest odds
of each ``rate_odds`` rule named in ``odds`` (its state as the engine hands it over: ``peers``).

It fires on ``tick`` observations (the live worker emits one per poll cycle; the backtest emits
one per trading day at ``at``, see :meth:`DigestRule.scheduled_times`). A day's close is used
only once that session has closed by the tick's time — no look-ahead in backtests.

Length (over 400 lines): the longest rule; its loop and its fast path (:mod:`bot.rules.batch`)
word the same digest and are tested together (helpers in :mod:`bot.rules.digest_parts`).
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
from bot.context import series_facts
from bot.model import AlertDraft, DailySeries, History, Observation
from bot.rules.base import RULES, Rule, RuleContext, RuleState
from bot.rules.batch import BATCH_MIN, base_indices, fast_path
from bot.rules.digest_parts import (
    _PHRASES,
    STALE_DAYS,
    _BatchCloses,
    _Due,
    _LateData,
    _load_seen_rate,
    _marker,
    _pct,
    _phrase,
    _RateTracker,
    _RecordTracker,
    _seen_rate_of,
    _side,
    _since,
)
from bot.rules.text import fmt_number
from bot.rules.windows import Cursor, Window, parse_day

_MTD, _YTD = Window("mtd"), Window("ytd")


class DigestParams(RuleParams):
    """``type: digest`` options."""

    symbols: StrList = Field(min_length=1)
    at: ClockTime
    #: a rate symbol (e.g. the FRED target range) whose current value closes the digest
    rate: str | None = None
    #: ``rate_odds`` rules whose latest odds follow (as of the start of the poll cycle)
    odds: StrList = Field(default_factory=list)

    def watched_symbols(self) -> list[str]:
        return [*self.symbols, *([self.rate] if self.rate else [])]

    def watched_rules(self) -> list[tuple[str, str, str | None]]:
        return [("odds", rule_id, "rate_odds") for rule_id in self.odds]


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
        # per calendar name: the due digests of the current call and their cutoff days
        self._cutoffs: dict[str, tuple[Sequence[Any], list[date]]] = {}
        rate = params.rate
        self._rate_symbols = frozenset(
            [
                *([rate] if rate else []),
                *(
                    symbol
                    for other in context.all_rules
                    if rate
                    and other.type == "rate_change"
                    and other.enabled
                    and getattr(other, "confirm", None) == rate
                    and isinstance(symbol := getattr(other, "symbol", None), str)
                ),
            ]
        )
        self._calendars = {
            s: get_calendar(context.symbols[s].calendar)
            for s in params.symbols
            if s in context.symbols
        }

    def wants(self, observation: Observation) -> bool:
        """Ticks, and rate observations of the ``rate`` symbol or of a symbol announcing the
        same range earlier (a ``rate_change`` rule's ``symbol`` that the ``rate`` symbol
        ``confirm``s: the FOMC statement, hours before FRED's row)."""
        if observation.kind == "rate":
            return observation.symbol in self._rate_symbols
        return observation.kind == "tick"

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
        late = _LateData(
            self.params.symbols,
            lambda symbol: self._calendars.get(symbol, self.calendar),
            history,
            closes,
            len(ticks) >= BATCH_MIN,
        )
        due: list[_Due] = []
        seen_obs: Observation | None = None
        last_rate_obs: Observation | None = None
        rate_rows = history.get(self.params.rate).dates if self.params.rate else []
        rate_last = rate_rows[-1] if rate_rows else None
        for observation in observations:
            if observation.kind != "tick":
                if observation.kind == "rate" and observation.symbol in self._rate_symbols:
                    seen_obs = observation  # converted only when a digest is due
                    last_rate_obs = observation
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
                if (
                    rate_last is not None
                    and seen_obs.session is not None
                    and seen_obs.session < rate_last
                ):
                    # Dated before the history's last row (a backtest's rows, one a day): the
                    # history has it already and rules; not converted (_seen_rate_of's
                    # "newer than" day is never after the observation's own day).
                    seen_rate = None
                else:
                    seen_rate = _seen_rate_of(seen_obs, seen_obs.symbol != self.params.rate)
                    if rate_last is not None and seen_rate[3] < rate_last:
                        seen_rate = None  # the history has that row already: it rules
                seen_obs = None
            due.append((observation, local, day, seen_rate))
            last_day = day
        if due:
            drafts = self._digests(due, history, records, rate, closes)
        new_state: dict[str, Any] = {
            "last_day": last_day.isoformat() if last_day else None,
            "records": {symbol: tracker.dump() for symbol, tracker in records.items()},
            "rate": rate.dump() if rate is not None else {},
        }
        if last_rate_obs is not None:
            seen_rate = _seen_rate_of(last_rate_obs, last_rate_obs.symbol != self.params.rate)
        if seen_rate is not None:
            new_state["rate_seen"] = [
                seen_rate[0].isoformat(),
                seen_rate[1],
                seen_rate[2],
                seen_rate[3].isoformat(),
            ]
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
        odds = self._odds_lines()  # one reading of the peers per call: the same in each digest
        drafts: list[AlertDraft] = []
        # Each digest's symbol lines: the columns of ``texts`` (one zip, not a loop each).
        for (observation, local, day, seen), row, first in zip(
            due, zip(*texts, strict=True), firsts, strict=True
        ):
            # None: a symbol whose data ended (stale): not listed
            lines: list[str] = [line for line in row if line is not None]
            if no_data.issuperset(lines):
                continue  # not one close to report (all data ended, or none yet): no digest
            day_text = day.isoformat()
            header = "Daily digest %s (%02d:%02d %s)" % (  # noqa: UP031 - %-format: 2x faster
                day_text,
                local.hour,
                local.minute,
                local.tzname(),
            )
            if rate is not None and rate_name is not None:
                lines.append(rate.line(rate_name, day, seen))
            lines.extend(odds)
            # One join: the rate line's en dash makes the text a 2-byte string, and every
            # ASCII piece joined into it is widened; the summary is then a plain slice.
            text = "\n".join([header, *lines])
            drafts.append(
                AlertDraft(
                    key=day_text,
                    symbol=params.symbols[0],
                    time=observation.time,
                    value=first,
                    text=text,
                    fields={"date": day_text, "summary": text[len(header) + 1 :]},
                )
            )
        self._due_days = None  # not kept past the call
        self._cutoffs.clear()
        return drafts

    def _odds_lines(self) -> list[str]:
        """The lines of the ``odds`` rules, from their states as the engine handed them over."""
        from bot.rules.rate_odds import odds_lines

        lines: list[str] = []
        for rule_id in self.params.odds:
            summary = (self.peers.get(rule_id) or {}).get("summary")
            lines.extend(odds_lines(rule_id, summary if isinstance(summary, str) else None))
        return lines

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
        cutoffs = self._cutoff_days(due, closes, self._calendars.get(symbol, self.calendar))
        values, dates = series.values, series.dates
        indices = (
            fast_path(len(due), lambda: self._batch_indices(series, cutoffs)) if dates else None
        )
        if indices is None:
            cursor = Cursor(series)
            indices = [cursor.on_or_before(day) for day in cutoffs]
        no_data = f"{self._names[symbol]}: no data yet"
        texts: list[str | None] = []
        reported: list[float] = []
        found = (
            fast_path(len(due), lambda: self._batch_numbers(symbol, series, indices))
            if dates
            else None
        )
        if found is None:  # the live loop: a digest or two at a time
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

        numbers, sides, usual = found
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
        close_ages: list[int] = gaps.tolist()  # days from the close to the digest's day
        templates = self._templates[symbol]
        # One zip over the per-digest columns (cheaper than indexing each by position).
        for index, age, row, ok, days, row_numbers, side, entry in zip(
            indices,
            close_ages,
            standing_rows,
            usual,
            day_gaps,
            numbers,
            sides,
            due,
            strict=True,
        ):
            if index < 0:
                texts.append(no_data)
                reported.append(0.0)
                continue
            if age > STALE_DAYS:
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
                    "%s days since%s"  # noqa: UP031 - hot path
                    % (str(days) if days < 1000 else format(days, ",d"), phrase)
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
                    _marker(age) if age else "",
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

    def _cutoff_days(
        self, due: Sequence[_Due], closes: _BatchCloses, calendar: MarketCalendar
    ) -> list[date]:
        """Per due digest, the last day whose close it may report: the digest's day once that
        session closed by the tick, else the day before (a digest scheduled before the close
        must not read that close). Computed once per calendar and call: symbols share it."""
        cached = self._cutoffs.get(calendar.name)
        if cached is not None and cached[0] is due:
            return cached[1]
        session_closes = closes.of(calendar)
        one_day = timedelta(days=1)
        days = []
        for observation, _local, day, _seen in due:
            close_time = session_closes.get(day)
            closed = close_time is not None and close_time <= observation.time
            days.append(day if closed else day - one_day)
        self._cutoffs[calendar.name] = (due, days)
        return days

    @staticmethod
    def _batch_indices(series: DailySeries, cutoffs: Sequence[date]) -> list[int]:
        """Fast path: :meth:`Cursor.on_or_before` of every cutoff day at once (one bisection
        per day over the series' day ordinals, in numpy)."""
        import numpy as np

        days = np.fromiter((d.toordinal() for d in cutoffs), np.int64, len(cutoffs))
        rows: list[int] = (np.searchsorted(series.arrays()[0], days, side="right") - 1).tolist()
        return rows

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
            f"{_marker((day - close_day).days)}: "
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
