"""Daily history for the rules that need it, cached in the state store and refreshed daily.

On start (and once a day) :class:`HistoryLoader` gives every symbol watched by a rule with
``history_days() != 0`` enough final daily closes: the all-time record for record rules,
windows for change rules. So the bot knows e.g. the ^RUT closing record (2,442.74 on
2021-11-08) before its first live poll.

Per symbol: read the store's cache, fetch from the source only what is missing (from a few
days before the last cached row, so revised closes are picked up; everything when there is no
cache), merge with pandas (one row per date, the newer row wins), drop rows whose session is
not final yet, save back. A failing source is logged and the cached rows are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import pandas as pd

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
    frames = [f for f in (old.to_frame() if old else None, new.to_frame()) if f is not None]
    frame = pd.concat(frames) if len(frames) > 1 else frames[0]
    # concat keeps the order old, new: keeping the last duplicate keeps the newer row.
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    frame = frame[frame["close"].notna()]
    return DailySeries.from_frame(frame)


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
            return self._final_only(symbol_id, spec, cached or DailySeries(), now)
        except Exception:  # a source bug must not stop the other symbols or the bot
            log.exception(
                "history %s: unexpected error from the source; keeping the cache", symbol_id
            )
            return self._final_only(symbol_id, spec, cached or DailySeries(), now)

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
        return merged

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
