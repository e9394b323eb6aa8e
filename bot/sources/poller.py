"""Fetch many symbols at once, with per-symbol source failover.

Sources are synchronous (requests); a bounded thread pool runs the symbols of one poll
concurrently, so a poll of N symbols costs about one round trip instead of N. A symbol with
``source: [yahoo, stooq]`` tries its sources in order; the log says which one served and
:attr:`Observation.source` records it. Failures never escape as exceptions from
:meth:`Poller.fetch_latest_many`: each symbol maps to an observation or to its last error.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from bot.clock import Clock, SystemClock
from bot.config import Config, SymbolConfig
from bot.errors import SourceError
from bot.model import DailySeries, Observation
from bot.sources.base import SOURCES, Source
from bot.sources.csvfile import CsvSource
from bot.sources.fred import FredSource
from bot.sources.http import CoolingDown, HttpSource, Sleep

log = logging.getLogger(__name__)

T = TypeVar("T")


def build_sources(config: Config, clock: Clock, *, sleep: Sleep = time.sleep) -> dict[str, Source]:
    """One instance per configured source, through the :data:`SOURCES` registry.

    HTTP sources get the (injectable) retry ``sleep``; csv sources resolve relative ``file:``
    paths against the config file's directory.
    """
    sources: dict[str, Source] = {}
    for name, params in config.sources.items():
        cls = SOURCES.get(params.type)
        if issubclass(cls, HttpSource):
            sources[name] = cls(name, params, clock, sleep=sleep)
        elif issubclass(cls, CsvSource):
            sources[name] = cls(name, params, clock, base_dir=Path(config.path).resolve().parent)
        else:
            sources[name] = cls(name, params, clock)
        source = sources[name]
        if isinstance(source, FredSource):
            source.sanity = config.sanity  # FRED rows are checked against its rate band
    return sources


# While a session's daily bar is not published yet, the worker asks for it on every poll. Asking
# again sooner than this brings nothing new; it is longer than the default 60 s poll interval
# (a shorter back-off would save no request) and short next to the bar's publication lag.
NO_BAR_BACKOFF = timedelta(minutes=5)


class Poller:
    """Fetches observations and daily history from configured sources, with failover."""

    def __init__(
        self,
        sources: Mapping[str, Source],
        *,
        concurrency: int = 4,
        clock: Clock | None = None,
        no_bar_backoff: timedelta = NO_BAR_BACKOFF,
    ) -> None:
        self.sources = dict(sources)
        self.concurrency = max(1, concurrency)
        # The sources' clock unless told otherwise: the back-off must run on the same time.
        self.clock: Clock = clock or next(
            (source.clock for source in self.sources.values()), SystemClock()
        )
        self.no_bar_backoff = no_bar_backoff
        # (symbol, start, end) -> (asked at, answer) of daily requests whose answer lacked `end`
        self._no_bar: dict[tuple[str, date | None, date], tuple[datetime, DailySeries]] = {}
        self._lock = threading.Lock()
        self._crashes_seen: set[tuple[str, str]] = set()
        # One pool for the poller's life (made on first use): a pool per cycle started and
        # joined ``concurrency`` threads every poll.
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def from_config(cls, config: Config, clock: Clock, *, sleep: Sleep = time.sleep) -> Poller:
        """A poller over :func:`build_sources` with ``poll.concurrency`` workers."""
        return cls(
            build_sources(config, clock, sleep=sleep),
            concurrency=config.poll.concurrency,
            clock=clock,
        )

    def _with_failover(
        self,
        symbol_id: str,
        spec: SymbolConfig,
        what: str,
        call: Callable[[Source], T],
        *,
        level: int = logging.WARNING,
    ) -> T:
        """Try each of the symbol's sources in order; return the first success or raise the
        last error. Unexpected exceptions (bugs in a source) become :class:`SourceError` too,
        so one bad source never takes down a poll.

        Logging: exactly one line per failed source (symbol, source, URL, cause; the last one
        says when every source failed) at ``level``; retries inside a source log at DEBUG
        only, and a source skipped for its cool-down (no request sent) at INFO.
        """
        names = list(spec.source)
        last_error: SourceError | None = None
        failed: list[str] = []
        for index, name in enumerate(names):
            source = self.sources.get(name)
            if source is None:
                last_error = SourceError(f"source {name!r} is not configured", symbol=symbol_id)
            else:
                try:
                    result = call(source)
                except SourceError as exc:
                    last_error = exc
                except Exception as exc:  # a bug in one source must not stop the others
                    self._log_crash(symbol_id, name, what, exc)
                    last_error = SourceError(
                        f"source {name} failed unexpectedly: {type(exc).__name__}: {exc}",
                        symbol=symbol_id,
                    )
                else:
                    if failed:
                        log.info(
                            "%s: %s served by %s (failover after %s failed)",
                            symbol_id,
                            what,
                            name,
                            ", ".join(failed),
                        )
                    else:
                        log.debug("%s: %s served by %s", symbol_id, what, name)
                    return result
            failed.append(name)
            if index + 1 < len(names):
                outcome = f"trying {names[index + 1]}"
            elif len(names) > 1:
                outcome = f"every source failed ({', '.join(names)})"
            else:
                outcome = ""
            log.log(
                logging.INFO if isinstance(last_error, CoolingDown) else level,
                "%s: %s from source %s failed: %s%s",
                symbol_id,
                what,
                name,
                _without_symbol(last_error),
                f"; {outcome}" if outcome else "",
            )
        assert last_error is not None  # SymbolConfig.source has at least one entry
        raise last_error

    def _log_crash(self, symbol_id: str, name: str, what: str, exc: Exception) -> None:
        """A bug in a source: a traceback the first time (per source and exception type), so
        it fails loudly once; after that the WARNING line above, the traceback at DEBUG."""
        key = (name, type(exc).__name__)
        with self._lock:
            first = key not in self._crashes_seen
            self._crashes_seen.add(key)
        if first:
            log.error(
                "%s: source %s crashed fetching %s (a bug; traceback shown once)",
                symbol_id,
                name,
                what,
                exc_info=exc,
            )
        else:
            log.debug("%s: source %s crashed fetching %s", symbol_id, name, what, exc_info=exc)

    def fetch_latest(self, symbol_id: str, spec: SymbolConfig) -> Observation:
        """The latest observation of one symbol (failover across its sources).

        ``Observation.source`` names the source that served. Raises :class:`SourceError`
        (the last source's error) when all fail.
        """

        def call(source: Source) -> Observation:
            observation = source.fetch_latest(symbol_id, spec)
            if observation.symbol != symbol_id or observation.source != source.name:
                observation = dataclasses.replace(observation, symbol=symbol_id, source=source.name)
            return observation

        return self._with_failover(symbol_id, spec, "quote", call)

    def fetch_latest_many(
        self, requests: Sequence[tuple[str, SymbolConfig]]
    ) -> dict[str, Observation | SourceError]:
        """Latest observations of many symbols, fetched concurrently (``concurrency`` threads).

        Returns ``{symbol_id: Observation | SourceError}`` in request order; never raises for
        a source failure.
        """
        if not requests:
            return {}

        def one(symbol_id: str, spec: SymbolConfig) -> Observation | SourceError:
            try:
                return self.fetch_latest(symbol_id, spec)
            except SourceError as exc:
                return exc

        pool = self._thread_pool()
        futures = [(symbol_id, pool.submit(one, symbol_id, spec)) for symbol_id, spec in requests]
        return {symbol_id: future.result() for symbol_id, future in futures}

    def _thread_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.concurrency, thread_name_prefix="poll"
                )
            return self._pool

    def fetch_daily(
        self, symbol_id: str, spec: SymbolConfig, start: date | None, end: date | None
    ) -> DailySeries:
        """Daily history of one symbol (failover across its sources); raises the last
        :class:`SourceError` when all fail.

        An answer without a bar for ``end`` ("not published yet") is remembered for
        ``no_bar_backoff``: the same request within that time returns it again (a copy)
        without asking the source.
        """
        key = (symbol_id, start, end) if end is not None else None
        now = self.clock.now()
        if key is not None:
            with self._lock:
                cached = self._no_bar.get(key)
            if cached is not None and now - cached[0] < self.no_bar_backoff:
                log.debug("%s: no daily bar for %s yet; not asking again so soon", symbol_id, end)
                return _copy(cached[1])
        # INFO: both callers (history loader, worker) log the final error at WARNING with
        # their context; the per-source lines stay visible for diagnosing a failover.
        series = self._with_failover(
            symbol_id,
            spec,
            "daily history",
            lambda s: s.fetch_daily(symbol_id, spec, start, end),
            level=logging.INFO,
        )
        if key is not None and end is not None:
            last = series.last()
            with self._lock:
                if last is None or last[0] < end:
                    self._no_bar[key] = (now, _copy(series))
                else:
                    self._no_bar.pop(key, None)
                # forget entries whose back-off is over (one per symbol and day at most)
                for old in [
                    k for k, (at, _) in self._no_bar.items() if now - at >= self.no_bar_backoff
                ]:
                    del self._no_bar[old]
        return series

    def next_poll(self, symbol_id: str, spec: SymbolConfig, now: datetime) -> datetime | None:
        """The symbol's first source's wish for its next poll (see :meth:`Source.next_poll`)."""
        source = self.sources.get(spec.source[0])
        if source is None:
            return None
        try:
            return source.next_poll(symbol_id, spec, now)
        except Exception:  # a bug in a hint must not stop polling: the interval still applies
            log.exception("%s: source %s failed to say when to poll next", symbol_id, source.name)
            return None

    def has_daily_history(self, spec: SymbolConfig) -> bool:
        """Whether the symbol's first source serves daily bars (see ``Source.daily_history``)."""
        source = self.sources.get(spec.source[0])
        return source is None or source.daily_history

    def attach_store(self, store: object) -> None:
        """Hand the store to every source (for those that cache what they read)."""
        for source in self.sources.values():
            source.attach_store(store)

    def close(self) -> None:
        """Close every source's connections and the poll threads."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        for source in self.sources.values():
            try:
                source.close()
            except Exception:  # closing is best effort; keep closing the others
                log.debug("closing source %s failed", source.name, exc_info=True)


def _copy(series: DailySeries) -> DailySeries:
    # callers append to the series they get (the worker's history): never hand out the cache
    return DailySeries(series.dates, series.values, series.columns)


def _without_symbol(error: SourceError) -> str:
    """``error``'s text without its leading symbol (the log line starts with it already)."""
    text = str(error)
    if error.symbol and text.startswith(f"{error.symbol} "):
        return text[len(error.symbol) + 1 :]
    if error.symbol and text.startswith(f"{error.symbol}: "):
        return text[len(error.symbol) + 2 :]
    return text
