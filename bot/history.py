"""Daily history for the rules that need it, cached in the state store and refreshed daily.

On start (and once a day) :class:`HistoryLoader` gives every symbol watched by a rule with
``history_days() != 0`` enough final daily closes: the all-time record for record rules,
windows for change rules. So the bot knows e.g. the ^RUT closing record (2,442.74 on
2021-11-08) before its first live poll.

Per symbol: read the store's cache, fetch from the source only what is missing (from a few
days before the last cached row, so revised closes are picked up; everything when there is no
cache), merge (one row per date, the newer row wins), drop rows whose session is
not final yet, save back. A failing source is logged and the cached rows are kept.

Length (~400 lines): the loader and the keeper that retries it share one policy (what to fetch,
when a row is final, deadlines and back-off); split, the policy would be read in two places.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from bot.calendars import MarketCalendar, get_calendar
from bot.clock import Clock, SystemClock
from bot.config import Config, SanityConfig, SymbolConfig
from bot.errors import SourceError, StoreError
from bot.model import DailySeries, History
from bot.sanity import clean_daily
from bot.store.base import Store

log = logging.getLogger(__name__)

#: ``fetch_daily(symbol_id, spec, start, end)`` → daily rows between the dates (inclusive).
#: The poller provides one that fails over between the symbol's sources.
FetchDaily = Callable[[str, SymbolConfig, date | None, date | None], DailySeries]

#: Start date asked for when a rule needs "all available" history.
ALL_HISTORY_START = date(1970, 1, 1)


@dataclass(frozen=True)
class LoadResult:
    """One symbol's history and whether it meets the rules' need (see ``try_load_symbol``)."""

    series: DailySeries
    loaded: bool
    error: str | None = None  # why the source failed, when it did (for the feed monitor)


class _NeedsHistory(Protocol):
    def symbols(self) -> list[str]: ...

    def history_days(self) -> int | None: ...


def history_needs(rules: Iterable[_NeedsHistory]) -> dict[str, int | None]:
    """Symbol id → days of history its rules need: the maximum over the rules watching it,
    ``None`` (all available) if any of them wants everything. Symbols needing 0 are left out."""
    needs: dict[str, int | None] = {}
    for rule in rules:
        days = rule.history_days()
        if days == 0:
            continue
        for symbol in rule.symbols():
            if symbol in needs:
                current = needs[symbol]
                needs[symbol] = None if current is None or days is None else max(current, days)
            else:
                needs[symbol] = days
    return needs


def merge_series(old: DailySeries | None, new: DailySeries) -> DailySeries:
    """``old`` and ``new`` combined: one row per date, ``new`` winning where both have one.

    Columns present in only one side are kept (missing cells are NaN); rows without a finite
    close are dropped because no rule can use them.
    """
    # Plain Python, not pandas: the live worker never imports pandas (about 40 MB of resident
    # memory saved; its CSV parsers use the csv module), and a merge is a few thousand rows.
    nan = float("nan")
    names = list(dict.fromkeys([*(old.columns if old else {}), *new.columns]))
    rows: dict[date, tuple[float, dict[str, float]]] = {}
    for series in (old, new):  # in this order: the newer row wins a date both have
        if series is None:
            continue
        columns = series.columns
        for i, day in enumerate(series.dates):
            rows[day] = (series.values[i], {c: values[i] for c, values in columns.items()})
    dates = sorted(day for day, (close, _) in rows.items() if close == close)  # NaN: dropped
    return DailySeries(
        dates,
        [rows[day][0] for day in dates],
        {c: [float(rows[day][1].get(c, nan)) for day in dates] for c in names},
    )


class HistoryLoader:
    """Loads, refreshes and caches the daily history of the symbols rules need.

    ``days`` are calendar days back from today (rules add room for weekends and holidays);
    the cache is never trimmed, so more rows than asked may come back.
    """

    def __init__(
        self,
        store: Store,
        fetch_daily: FetchDaily,
        *,
        config: Config | None = None,
        symbols: Mapping[str, SymbolConfig] | None = None,
        clock: Clock | None = None,
        settle: timedelta | None = None,
        overlap_days: int = 5,
        refresh_every: timedelta = timedelta(days=1),
        calendar_for: Callable[[str], MarketCalendar] = get_calendar,
    ) -> None:
        """``config`` supplies the symbols and ``poll.settle`` (``symbols``/``settle`` override
        it); ``clock`` is used when :meth:`load` gets no ``now``; ``overlap_days`` calendar days
        before the last cached row are fetched again to pick up revised closes."""
        if overlap_days < 0:
            raise ValueError("overlap_days must not be negative")
        self.store = store
        self.fetch_daily = fetch_daily
        self.symbols: Mapping[str, SymbolConfig] = (
            symbols if symbols is not None else (config.symbols if config is not None else {})
        )
        if settle is None:
            settle = config.poll.settle if config is not None else timedelta(minutes=10)
        self.settle = settle
        self.clock: Clock = clock or SystemClock()
        self.overlap_days = overlap_days
        self.refresh_every = refresh_every
        self.calendar_for = calendar_for
        self.sanity = config.sanity if config is not None else SanityConfig()

    # -- scheduling --------------------------------------------------------------------------

    def refresh_due(self, last_refresh: datetime | None, now: datetime) -> bool:
        """Whether the daily refresh is due: never done, or done ``refresh_every`` ago."""
        return last_refresh is None or now - last_refresh >= self.refresh_every

    # -- loading -----------------------------------------------------------------------------

    def load(
        self,
        needs: Mapping[str, int | None],
        now: datetime | None = None,
        into: History | None = None,
    ) -> History:
        """History for every symbol in ``needs`` (see :func:`history_needs`) as of ``now``
        (default: the clock's time).

        Updates ``into`` in place when given, else returns a new History. Never raises for a
        failing source: that symbol keeps its cached rows.
        """
        now = now if now is not None else self.clock.now()
        history = into if into is not None else History()
        for symbol_id, days in needs.items():
            if days == 0:
                continue
            spec = self.symbols.get(symbol_id)
            if spec is None:
                log.warning("history: symbol %s is not configured; skipped", symbol_id)
                continue
            history.set(symbol_id, self.load_symbol(symbol_id, spec, days, now))
        return history

    def load_symbol(
        self, symbol_id: str, spec: SymbolConfig, days: int | None, now: datetime
    ) -> DailySeries:
        """Final daily rows of one symbol covering ``days`` trading days (``None``: all)."""
        return self.try_load_symbol(symbol_id, spec, days, now).series

    def try_load_symbol(
        self, symbol_id: str, spec: SymbolConfig, days: int | None, now: datetime
    ) -> LoadResult:
        """Like :meth:`load_symbol`, and whether the rows meet the need (``loaded``): fetched
        from the source, or a cache that already covers the span and every final session.
        Rules must not be seeded from a series that is not loaded (see ``bot.worker``)."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        today = now.astimezone(UTC).date()
        wanted_from = _wanted_start(today, days)
        cached = self.store.load_history(symbol_id)
        rates = bool(spec.series)  # a FRED symbol: rate rows, not closes
        if cached is not None:  # rows cached before they were checked are checked too
            cached = clean_daily(symbol_id, cached, now, self.sanity, rates=rates)
        if cached is not None and len(cached) == 0:
            cached = None
        covered_key = f"history:{symbol_id}:from"
        covered_from = _parse_date(self.store.get_value(covered_key))

        if cached is None or covered_from is None or wanted_from < covered_from:
            # No cache, or the rules now want older rows than were ever fetched: all of it.
            start = wanted_from
        else:
            start = max(cached.dates[-1] - timedelta(days=self.overlap_days), wanted_from)

        try:
            fetched = self.fetch_daily(symbol_id, spec, start, today)
        except SourceError as exc:
            log.warning(
                "history %s: source failed, keeping %s cached rows: %s",
                symbol_id,
                len(cached) if cached else 0,
                exc,
            )
            result = self._from_cache(symbol_id, spec, cached, covered_from, wanted_from, now)
            return replace(result, error=str(exc))
        except Exception as exc:  # a source bug must not stop the other symbols or the bot
            log.exception(
                "history %s: unexpected error from the source; keeping the cache", symbol_id
            )
            result = self._from_cache(symbol_id, spec, cached, covered_from, wanted_from, now)
            return replace(result, error=f"{type(exc).__name__}: {exc}")

        fetched = clean_daily(symbol_id, fetched, now, self.sanity, rates=rates)
        merged = merge_series(cached, fetched)
        merged = self._final_only(
            symbol_id, spec, clean_daily(symbol_id, merged, now, self.sanity, rates=rates), now
        )
        log.info(
            "history %s: %s rows cached, %s fetched from %s, %s kept",
            symbol_id,
            len(cached) if cached else 0,
            len(fetched),
            start,
            len(merged),
        )
        try:
            self.store.save_history(symbol_id, merged)
            if covered_from is None or start < covered_from:
                self.store.set_value(covered_key, start.isoformat())
        except StoreError as exc:
            # The rows are still good for this run; next refresh tries to cache them again.
            log.warning("history %s: could not cache the rows: %s", symbol_id, exc)
        # An empty answer with nothing cached is no history (a record seeded from it would be
        # the first live close): the need is not met.
        return LoadResult(merged, loaded=len(merged) > 0)

    def _from_cache(
        self,
        symbol_id: str,
        spec: SymbolConfig,
        cached: DailySeries | None,
        covered_from: date | None,
        wanted_from: date,
        now: datetime,
    ) -> LoadResult:
        """The cached rows after a failed fetch; loaded only if they miss nothing: they reach
        back to ``wanted_from`` and forward to the last session that is final at ``now``."""
        series = self._final_only(symbol_id, spec, cached or DailySeries(), now)
        if not len(series) or covered_from is None or covered_from > wanted_from:
            return LoadResult(series, loaded=False)
        last_final = self.calendar_for(spec.calendar).last_session_closed_by(now - self.settle)
        complete = last_final is None or series.dates[-1] >= last_final.date
        return LoadResult(series, loaded=complete)

    def _final_only(
        self, symbol_id: str, spec: SymbolConfig, series: DailySeries, now: datetime
    ) -> DailySeries:
        """``series`` without trailing rows whose session close is not final at ``now``."""
        calendar = self.calendar_for(spec.calendar)
        keep = len(series)
        while keep and not calendar.close_is_final(series.dates[keep - 1], now, self.settle):
            keep -= 1
        if keep == len(series):
            return series
        log.debug(
            "history %s: dropping %s partial row(s) from %s",
            symbol_id,
            len(series) - keep,
            series.dates[keep],
        )
        return DailySeries(
            series.dates[:keep],
            series.values[:keep],
            {k: v[:keep] for k, v in series.columns.items()},
        )


def _wanted_start(today: date, days: int | None) -> date:
    """The first date to ask for: ``days`` calendar days back, or everything for ``None``."""
    if days is None:
        return ALL_HISTORY_START
    return max(ALL_HISTORY_START, today - timedelta(days=days))


def _parse_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


class HistoryKeeper:
    """The live worker's history: which symbols' history is loaded, loading them concurrently
    and retrying failed loads with capped exponential back-off (minutes, not a day).

    A symbol is *loaded* once :meth:`HistoryLoader.try_load_symbol` said so; until then the
    rules that need it stay unseeded (``bot.worker``). Loads run in threads; their results are
    applied only by :meth:`collect`, which the worker calls between evaluations, so history
    never changes under a running evaluation. Intervals use ``clock.monotonic()``.
    """

    def __init__(
        self,
        loader: HistoryLoader,
        clock: Clock,
        *,
        retry: timedelta = timedelta(minutes=1),
        max_retry: timedelta = timedelta(minutes=30),
    ) -> None:
        self.loader = loader
        self.clock = clock
        self.retry = retry
        self.max_retry = max_retry
        self.history = History()
        self.loaded: set[str] = set()
        self._tasks: dict[str, asyncio.Task[LoadResult]] = {}
        self._failures: dict[str, int] = {}
        self._next_try: dict[str, float] = {}
        self._last_load: dict[str, float] = {}
        self._arrived: set[str] = set()
        self.errors: dict[str, str] = {}  # symbol → last load error, while its loads fail

    def failures(self, symbol_id: str) -> int:
        """Failed loads of ``symbol_id`` in a row (0 once it loaded)."""
        return self._failures.get(symbol_id, 0)

    def forget(self, symbol_id: str) -> None:
        """Treat ``symbol_id`` as never loaded (its spec or its rules' need changed on a
        config reload): its rules wait until it is loaded again, which starts at once."""
        self.loaded.discard(symbol_id)
        for memo in (self._failures, self._next_try, self._last_load, self.errors):
            memo.pop(symbol_id, None)

    def backoff(self, failures: int) -> float:
        """Seconds before the next try after ``failures`` failed loads in a row (capped
        before it is computed, so a long outage never overflows)."""
        cap = self.max_retry.total_seconds()
        base = self.retry.total_seconds()
        if base <= 0:
            return 0.0
        steps = min(max(failures - 1, 0), 32)
        return float(min(cap, base * 2**steps))

    def start(self, needs: Mapping[str, int | None]) -> None:
        """Start loading every symbol of ``needs`` that is due: never tried, a failed load
        whose back-off is over, or a loaded one not refreshed for ``refresh_every``."""
        mono = self.clock.monotonic()
        refresh = self.loader.refresh_every.total_seconds()
        for symbol_id, days in needs.items():
            if symbol_id in self._tasks or days == 0:
                continue
            spec = self.loader.symbols.get(symbol_id)
            if spec is None:
                continue
            if symbol_id in self._next_try:
                if mono < self._next_try[symbol_id]:
                    continue
            elif symbol_id in self._last_load and mono - self._last_load[symbol_id] < refresh:
                continue
            now = self.clock.now()
            self._tasks[symbol_id] = asyncio.create_task(
                asyncio.to_thread(self.loader.try_load_symbol, symbol_id, spec, days, now),
                name=f"history-{symbol_id}",
            )

    async def wait(self, timeout: float | None = None) -> None:
        """Wait (at most ``timeout`` seconds) for the loads in flight, then :meth:`collect`."""
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        self.collect()

    def take_arrived(self) -> set[str]:
        """:meth:`collect`, then the symbols that became loaded since the last call."""
        self.collect()
        arrived, self._arrived = self._arrived, set()
        return arrived

    def loading(self) -> list[str]:
        """Symbols whose load is in flight."""
        return list(self._tasks)

    def collect(self) -> None:
        """Apply finished loads (symbols that became loaded go to :meth:`take_arrived`)."""
        arrived = self._arrived
        for symbol_id, task in list(self._tasks.items()):
            if not task.done():
                continue
            del self._tasks[symbol_id]
            mono = self.clock.monotonic()
            try:
                result = task.result()
            except Exception as exc:  # try_load_symbol logs source errors; a bug lands here
                log.error("history %s: load failed: %r", symbol_id, exc)
                result = LoadResult(
                    DailySeries(), loaded=False, error=f"{type(exc).__name__}: {exc}"
                )
            current = self.history.get(symbol_id)
            if result.loaded:
                # Closes seen live meanwhile (appended by the worker) stay: merge, loaded wins.
                live = current if len(current) else None
                self.history.set(symbol_id, merge_series(live, result.series))
                self._last_load[symbol_id] = mono
                self._failures.pop(symbol_id, None)
                self._next_try.pop(symbol_id, None)
                self.errors.pop(symbol_id, None)
                if symbol_id not in self.loaded:
                    self.loaded.add(symbol_id)
                    arrived.add(symbol_id)
                continue
            failures = self._failures.get(symbol_id, 0) + 1
            self._failures[symbol_id] = failures
            self.errors[symbol_id] = result.error or "no usable rows"
            wait = self.backoff(failures)
            self._next_try[symbol_id] = mono + wait
            if symbol_id not in self.loaded and len(result.series):
                # Partial rows (no rule reads them while unseeded); live closes win over them.
                self.history.set(symbol_id, merge_series(result.series, current))
            log.warning(
                "history %s not loaded (%d failed tries); next try in %s",
                symbol_id,
                failures,
                timedelta(seconds=round(wait)),
            )
