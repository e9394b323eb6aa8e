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
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import TypeVar

from bot.clock import Clock
from bot.config import Config, SymbolConfig
from bot.errors import SourceError
from bot.model import DailySeries, Observation
from bot.sources.base import SOURCES, Source
from bot.sources.csvfile import CsvSource
from bot.sources.fred import FredSource
from bot.sources.http import HttpSource, Sleep

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


class Poller:
    """Fetches observations and daily history from configured sources, with failover."""

    def __init__(self, sources: Mapping[str, Source], *, concurrency: int = 4) -> None:
        self.sources = dict(sources)
        self.concurrency = max(1, concurrency)

    @classmethod
    def from_config(cls, config: Config, clock: Clock, *, sleep: Sleep = time.sleep) -> Poller:
        """A poller over :func:`build_sources` with ``poll.concurrency`` workers."""
        return cls(build_sources(config, clock, sleep=sleep), concurrency=config.poll.concurrency)

    def _with_failover(
        self,
        symbol_id: str,
        spec: SymbolConfig,
        what: str,
        call: Callable[[Source], T],
    ) -> T:
        """Try each of the symbol's sources in order; return the first success or raise the
        last error. Unexpected exceptions (bugs in a source) become :class:`SourceError` too,
        so one bad source never takes down a poll."""
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
                    log.exception("%s: source %s crashed fetching %s", symbol_id, name, what)
                    last_error = SourceError(
                        f"source {name} failed unexpectedly: {type(exc).__name__}: {exc}",
                        symbol=symbol_id,
                    )
                else:
                    if failed:
                        log.warning(
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
                log.warning(
                    "%s: source %s failed (%s); trying %s",
                    symbol_id,
                    name,
                    last_error,
                    names[index + 1],
                )
        assert last_error is not None  # SymbolConfig.source has at least one entry
        if len(names) > 1:
            log.warning(
                "%s: every source failed (%s); last error: %s",
                symbol_id,
                ", ".join(names),
                last_error,
            )
        else:
            log.warning("%s: %s", symbol_id, last_error)
        raise last_error

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

        workers = min(self.concurrency, len(requests))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll") as pool:
            futures = [
                (symbol_id, pool.submit(one, symbol_id, spec)) for symbol_id, spec in requests
            ]
            return {symbol_id: future.result() for symbol_id, future in futures}

    def fetch_daily(
        self, symbol_id: str, spec: SymbolConfig, start: date | None, end: date | None
    ) -> DailySeries:
        """Daily history of one symbol (failover across its sources); raises the last
        :class:`SourceError` when all fail."""
        return self._with_failover(
            symbol_id, spec, "daily history", lambda s: s.fetch_daily(symbol_id, spec, start, end)
        )

    def close(self) -> None:
        """Close every source's connections."""
        for source in self.sources.values():
            try:
                source.close()
            except Exception:  # closing is best effort; keep closing the others
                log.debug("closing source %s failed", source.name, exc_info=True)
