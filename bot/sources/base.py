"""The source contract. A source type is one module in ``bot/sources/`` registered by name.

Sources are synchronous (requests); the poller runs them in a bounded thread pool so one poll
of N symbols costs about one round-trip. Everything doubtful raises :class:`SourceError` naming
the symbol and the (redacted) URL — never a bogus number.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import date, datetime
from typing import Any, ClassVar

from bot.clock import Clock
from bot.config import SourceParams, SymbolConfig
from bot.model import DailySeries, Observation
from bot.registry import Registry

USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36 index-alert-bot/0.1"
)


class Source(ABC):
    """Base class of every data source."""

    type_name: ClassVar[str] = ""
    params_model: ClassVar[type[SourceParams]] = SourceParams
    default_base_url: ClassVar[str] = ""
    #: False for a source without daily bars (FOMC statements): the worker neither holds the
    #: rules watching its symbols back for history nor asks it for final closes
    daily_history: ClassVar[bool] = True

    def __init__(self, name: str, params: SourceParams, clock: Clock) -> None:
        self.name = name
        self.params = params
        self.clock = clock

    @property
    def base_url(self) -> str:
        return (self.params.base_url or self.default_base_url).rstrip("/")

    @classmethod
    def symbol_problems(cls, symbol_id: str, spec: SymbolConfig) -> list[str]:
        """Config problems of a symbol served by this source type (e.g. a missing ``series``)."""
        return []

    @abstractmethod
    def fetch_latest(self, symbol_id: str, spec: SymbolConfig) -> Observation:
        """The latest value: an intraday ``price`` (or a ``rate`` for rate series)."""

    @abstractmethod
    def fetch_daily(
        self, symbol_id: str, spec: SymbolConfig, start: date | None, end: date | None
    ) -> DailySeries:
        """Daily closes (and extra columns such as ``lower``/``upper``) between the dates."""

    def close(self) -> None:  # noqa: B027  optional hook, most sources hold nothing
        """Release connections."""

    def attach_store(self, store: Any) -> None:  # noqa: B027  optional hook
        """The worker's store, for a source that caches what it read (the FOMC calendar)."""

    def next_poll(self, symbol_id: str, spec: SymbolConfig, now: datetime) -> datetime | None:
        """When this source wants ``symbol_id`` polled next, if sooner than the symbol's interval
        (``None``: no opinion). The worker polls the symbol once that moment is reached and
        wakes the scheduler for it: e.g. every 2 s around an FOMC release."""
        return None


SOURCES: Registry[Any] = Registry("source type", package="bot.sources")
