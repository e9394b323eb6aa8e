"""HistoryLoader: cache in the store, incremental refresh, merging, partial rows, failures.

The store is an in-memory implementation of our own Store contract and the source is a fake
``fetch_daily`` callable (our own interface) that serves rows from a dict and records calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.config import (
    Config,
    DeliveryConfig,
    PollConfig,
    SanityConfig,
    StateConfig,
    SymbolConfig,
    TelegramConfig,
)
from bot.errors import SourceError, StoreError
from bot.history import (
    ALL_HISTORY_START,
    HistoryKeeper,
    HistoryLoader,
    history_needs,
    merge_series,
)
from bot.model import Alert, DailySeries, History
from bot.store.base import Delivery, Store

SETTLE = timedelta(minutes=10)
RUT = SymbolConfig(source=["yahoo"], ticker="^RUT", calendar="XNYS")
RTY = SymbolConfig(source=["yahoo"], ticker="RTY=F", calendar="CME")
FED = SymbolConfig(source=["fred"], series="DFEDTARU", calendar="always")
SYMBOLS = {"^RUT": RUT, "RTY=F": RTY, "FED": FED}


class MemoryStore(Store):
    """Only history and key/values behave; the rest of the contract is not used here."""

    def __init__(self) -> None:
        self.histories: dict[str, DailySeries] = {}
        self.values: dict[str, Any] = {}
        self.saves: list[str] = []
        self.fail_saves = False

    def load_history(self, symbol: str) -> DailySeries | None:
        series = self.histories.get(symbol)
        return None if series is None else series.until(date.max)  # a copy, like a database

    def save_history(self, symbol: str, series: DailySeries) -> None:
        if self.fail_saves:
            raise StoreError("database is locked")
        self.saves.append(symbol)
        self.histories[symbol] = series.until(date.max)

    def get_value(self, key: str) -> Any | None:
        return self.values.get(key)

    def set_value(self, key: str, value: Any) -> None:
        self.values[key] = value

    def migrate(self) -> None:
        pass

    def close(self) -> None:
        pass

    def load_states(self) -> dict[str, dict[str, Any]]:
        raise NotImplementedError

    def commit(
        self,
        states: Mapping[str, Mapping[str, Any]],
        deliveries: Sequence[tuple[Alert, Sequence[str]]],
        now: datetime,
    ) -> list[str]:
        raise NotImplementedError

    def evaluate_and_commit(self, evaluate: Any, now: datetime) -> Any:
        raise NotImplementedError

    def claim(self, worker: str, now: datetime, lease: timedelta, limit: int) -> list[Delivery]:
        raise NotImplementedError

    def mark_sent(
        self, alert_id: str, chat: str, now: datetime, message_ids: Sequence[int]
    ) -> None:
        raise NotImplementedError

    def mark_failed(self, alert_id: str, chat: str, now: datetime, error: str) -> None:
        raise NotImplementedError

    def retry_later(self, alert_id: str, chat: str, not_before: datetime, error: str) -> None:
        raise NotImplementedError

    def deliveries(self, status: str | None = None) -> list[tuple[Delivery, str]]:
        raise NotImplementedError


@dataclass
class FakeSource:
    """A daily-bars source: rows per symbol; records every call; can be told to fail."""

    rows: dict[str, dict[date, float]] = field(default_factory=dict)
    calls: list[tuple[str, date | None, date | None]] = field(default_factory=list)
    error: Exception | None = None

    def __call__(
        self, symbol_id: str, spec: SymbolConfig, start: date | None, end: date | None
    ) -> DailySeries:
        self.calls.append((symbol_id, start, end))
        if self.error is not None:
            raise self.error
        picked = sorted(
            (d, v)
            for d, v in self.rows.get(symbol_id, {}).items()
            if (start is None or d >= start) and (end is None or d <= end)
        )
        return DailySeries([d for d, _ in picked], [v for _, v in picked])


def rut_rows() -> dict[date, float]:
    """A few real ^RUT closes around the record, plus late November 2024."""
    return {
        date(2021, 11, 4): 2404.20,
        date(2021, 11, 5): 2437.34,
        date(2021, 11, 8): 2442.74,  # the closing record
        date(2021, 11, 9): 2409.99,
        date(2024, 11, 22): 2406.67,
        date(2024, 11, 25): 2434.73,
        date(2024, 11, 26): 2424.27,
        date(2024, 11, 27): 2425.66,
        date(2024, 11, 29): 2434.93,
    }


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


def make_loader(store: Store, source: FakeSource, **kwargs: Any) -> HistoryLoader:
    return HistoryLoader(store, source, symbols=SYMBOLS, settle=SETTLE, **kwargs)


# -- acceptance: load, cache, refresh ---------------------------------------------------------


def test_first_load_fetches_everything_and_knows_the_record() -> None:
    store, source = MemoryStore(), FakeSource({"^RUT": rut_rows()})
    loader = make_loader(store, source)
    now = utc(2024, 11, 29, 19, 0)  # after the 13:00 New York early close + settle

    history = loader.load({"^RUT": None}, now)

    assert source.calls == [("^RUT", ALL_HISTORY_START, date(2024, 11, 29))]
    series = history.get("^RUT")
    best = max(range(len(series)), key=lambda i: series.values[i])
    assert (series.dates[best], series.values[best]) == (date(2021, 11, 8), 2442.74)
    assert series.last() == (date(2024, 11, 29), 2434.93)
    cached = store.histories["^RUT"]
    assert cached.dates == series.dates and cached.values == series.values


def test_second_load_fetches_only_from_a_few_days_before_the_last_cached_row() -> None:
    store, source = MemoryStore(), FakeSource({"^RUT": rut_rows()})
    loader = make_loader(store, source, overlap_days=5)
    loader.load({"^RUT": None}, utc(2024, 11, 29, 19))
    source.rows["^RUT"][date(2024, 12, 2)] = 2442.03

    history = loader.load({"^RUT": None}, utc(2024, 12, 2, 22))

    assert source.calls[1] == ("^RUT", date(2024, 11, 24), date(2024, 12, 2))
    series = history.get("^RUT")
    assert series.dates[0] == date(2021, 11, 4)  # the cache kept the old rows
    assert series.last() == (date(2024, 12, 2), 2442.03)
    assert len(series) == len(rut_rows()) + 1


def test_window_needs_fetch_only_that_many_days() -> None:
    store, source = MemoryStore(), FakeSource({"^RUT": rut_rows()})
    loader = make_loader(store, source)
    history = loader.load({"^RUT": 30}, utc(2024, 11, 29, 19))
    assert source.calls == [("^RUT", date(2024, 10, 30), date(2024, 11, 29))]
    assert history.get("^RUT").dates[0] == date(2024, 11, 22)


def test_wanting_more_history_than_ever_fetched_fetches_it_all() -> None:
    store, source = MemoryStore(), FakeSource({"^RUT": rut_rows()})
    loader = make_loader(store, source)
    loader.load({"^RUT": 30}, utc(2024, 11, 29, 19))
    # A record rule was added: the 30-day cache is not enough, so everything is fetched.
    history = loader.load({"^RUT": None}, utc(2024, 11, 29, 20))
    assert source.calls[1] == ("^RUT", ALL_HISTORY_START, date(2024, 11, 29))
    assert history.get("^RUT").dates[0] == date(2021, 11, 4)
    # ... and from then on incrementally again.
    loader.load({"^RUT": None}, utc(2024, 11, 30, 12))
    assert source.calls[2][1] == date(2024, 11, 24)


def test_symbols_needing_no_history_are_not_fetched() -> None:
    store, source = MemoryStore(), FakeSource({"^RUT": rut_rows()})
    history = make_loader(store, source).load({"^RUT": 0}, utc(2024, 11, 29, 19))
    assert source.calls == []
    assert "^RUT" not in history


def test_unconfigured_symbol_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    store, source = MemoryStore(), FakeSource()
    with caplog.at_level(logging.WARNING, logger="bot.history"):
        history = make_loader(store, source).load({"NOPE": None}, utc(2024, 11, 29, 19))
    assert source.calls == [] and "NOPE" not in history
    assert "NOPE" in caplog.text


def test_load_updates_a_given_history_in_place_and_uses_the_clock() -> None:
    store, source = MemoryStore(), FakeSource({"^RUT": rut_rows()})
    clock = FakeClock(utc(2024, 11, 29, 19))
    loader = HistoryLoader(store, source, symbols=SYMBOLS, clock=clock)
    live = History()
    assert loader.load({"^RUT": None}, into=live) is live
    assert live.get("^RUT").last() == (date(2024, 11, 29), 2434.93)
    assert source.calls[0][2] == date(2024, 11, 29)


# -- failure modes ----------------------------------------------------------------------------


def test_source_failure_keeps_the_cache_and_logs_the_symbol(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, source = MemoryStore(), FakeSource({"^RUT": rut_rows()})
    loader = make_loader(store, source)
    first = loader.load({"^RUT": None}, utc(2024, 11, 29, 19)).get("^RUT")
    source.error = SourceError("HTTP 503", symbol="^RUT", url="https://example.test/chart")
    store.saves.clear()

    with caplog.at_level(logging.WARNING, logger="bot.history"):
        second = loader.load({"^RUT": None}, utc(2024, 12, 2, 22)).get("^RUT")

    assert second.dates == first.dates and second.values == first.values
    assert store.saves == []  # nothing new to cache
    assert "^RUT" in caplog.text and "HTTP 503" in caplog.text


def test_unexpected_source_error_keeps_the_cache_and_other_symbols_still_load(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    store.histories["^RUT"] = DailySeries([date(2024, 11, 27)], [2425.66])

    def fetch(
        symbol_id: str, spec: SymbolConfig, start: date | None, end: date | None
    ) -> DailySeries:
        if symbol_id == "^RUT":
            raise KeyError("chart")  # a parser bug, not a SourceError
        return DailySeries([date(2024, 11, 28)], [4.75])

    loader = HistoryLoader(store, fetch, symbols=SYMBOLS, settle=SETTLE)
    with caplog.at_level(logging.ERROR, logger="bot.history"):
        history = loader.load({"^RUT": None, "FED": None}, utc(2024, 11, 29, 19))
    assert history.get("^RUT").last() == (date(2024, 11, 27), 2425.66)
    assert history.get("FED").last() == (date(2024, 11, 28), 4.75)
    assert "^RUT" in caplog.text


def test_source_failure_without_cache_gives_an_empty_series() -> None:
    store, source = MemoryStore(), FakeSource(error=SourceError("timeout", symbol="^RUT"))
    history = make_loader(store, source).load({"^RUT": None}, utc(2024, 11, 29, 19))
    assert len(history.get("^RUT")) == 0
    assert "^RUT" not in store.histories
    # Nothing was covered, so the next attempt fetches everything again.
    source.error = None
    source.rows["^RUT"] = rut_rows()
    make_loader(store, source).load({"^RUT": None}, utc(2024, 11, 29, 19))
    assert source.calls[-1][1] == ALL_HISTORY_START


def test_store_save_failure_still_returns_the_rows(caplog: pytest.LogCaptureFixture) -> None:
    store, source = MemoryStore(), FakeSource({"^RUT": rut_rows()})
    store.fail_saves = True
    with caplog.at_level(logging.WARNING, logger="bot.history"):
        history = make_loader(store, source).load({"^RUT": None}, utc(2024, 11, 29, 19))
    assert history.get("^RUT").last() == (date(2024, 11, 29), 2434.93)
    assert "database is locked" in caplog.text and "^RUT" in caplog.text


# -- only final closes ------------------------------------------------------------------------


def test_partial_last_row_is_dropped_until_the_early_close_is_final() -> None:
    store, source = MemoryStore(), FakeSource({"^RUT": rut_rows()})
    loader = make_loader(store, source)
    # 2024-11-29 closes at 13:00 New York = 18:00 UTC; final at 18:10 UTC.
    during = loader.load({"^RUT": None}, utc(2024, 11, 29, 18, 5)).get("^RUT")
    assert during.last() == (date(2024, 11, 27), 2425.66)
    assert store.histories["^RUT"].last() == (date(2024, 11, 27), 2425.66)  # not cached

    after = loader.load({"^RUT": None}, utc(2024, 11, 29, 18, 10)).get("^RUT")
    assert after.last() == (date(2024, 11, 29), 2434.93)


def test_partial_rows_follow_each_symbols_calendar() -> None:
    store = MemoryStore()
    source = FakeSource(
        {
            # CME: Monday's session (2024-12-02) is running on Sunday evening.
            "RTY=F": {date(2024, 11, 29): 2440.0, date(2024, 12, 2): 2450.0},
            # always: a value dated today is final only after midnight UTC + settle.
            "FED": {date(2024, 11, 30): 4.75, date(2024, 12, 1): 4.75},
        }
    )
    loader = make_loader(store, source)
    history = loader.load({"RTY=F": None, "FED": None}, utc(2024, 12, 1, 23, 30))
    assert history.get("RTY=F").last() == (date(2024, 11, 29), 2440.0)
    assert history.get("FED").last() == (date(2024, 11, 30), 4.75)


def test_a_row_on_a_holiday_is_kept_once_that_day_is_over() -> None:
    # Futures files carry rows on exchange holidays; they are not partial once the day ended.
    store = MemoryStore()
    source = FakeSource({"^RUT": {date(2024, 11, 27): 2425.66, date(2024, 11, 28): 2425.66}})
    history = make_loader(store, source).load({"^RUT": None}, utc(2024, 11, 29, 6))
    assert history.get("^RUT").last() == (date(2024, 11, 28), 2425.66)


# -- merging ----------------------------------------------------------------------------------


def test_refresh_merges_one_row_per_date_with_the_newer_value() -> None:
    store, source = MemoryStore(), FakeSource({"^RUT": rut_rows()})
    loader = make_loader(store, source)
    loader.load({"^RUT": None}, utc(2024, 11, 29, 19))
    # The source revised Wednesday's close after it was cached.
    source.rows["^RUT"][date(2024, 11, 27)] = 2425.99

    series = loader.load({"^RUT": None}, utc(2024, 11, 30, 12)).get("^RUT")

    assert series.dates.count(date(2024, 11, 27)) == 1
    assert series.dates == sorted(set(series.dates))
    assert series.value_on_or_before(date(2024, 11, 27)) == (date(2024, 11, 27), 2425.99)
    assert store.histories["^RUT"].values == series.values


def test_merge_series_keeps_columns_and_drops_rows_without_a_close() -> None:
    old = DailySeries([date(2024, 1, 2), date(2024, 1, 3)], [5.5, 5.5], {"lower": [5.25, 5.25]})
    new = DailySeries(
        [date(2024, 1, 3), date(2024, 1, 4), date(2024, 1, 5)],
        [5.0, 5.0, float("nan")],
        {"lower": [4.75, 4.75, 4.75], "upper": [5.0, 5.0, 5.0]},
    )
    merged = merge_series(old, new)
    assert merged.dates == [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)]
    assert merged.values == [5.5, 5.0, 5.0]
    assert merged.columns["lower"] == [5.25, 4.75, 4.75]
    assert merged.columns["upper"][1:] == [5.0, 5.0]
    assert merged.columns["upper"][0] != merged.columns["upper"][0]  # NaN: not known then


def test_merge_series_with_nothing_cached_and_nothing_fetched() -> None:
    assert len(merge_series(None, DailySeries())) == 0
    only = merge_series(None, DailySeries([date(2024, 1, 3)], [1.0]))
    assert only.dates == [date(2024, 1, 3)]


# -- needs and refresh schedule ---------------------------------------------------------------


@dataclass
class FakeRule:
    watched: list[str]
    days: int | None

    def symbols(self) -> list[str]:
        return self.watched

    def history_days(self) -> int | None:
        return self.days


def test_history_needs_takes_the_maximum_and_none_means_all() -> None:
    needs = history_needs(
        [
            FakeRule(["^RUT"], 30),
            FakeRule(["^RUT", "^GSPC"], 400),
            FakeRule(["RTY=F"], 10),
            FakeRule(["RTY=F"], None),
            FakeRule(["RTY=F"], 20),
            FakeRule(["FED"], 0),
        ]
    )
    assert needs == {"^RUT": 400, "^GSPC": 400, "RTY=F": None}


def test_refresh_is_due_once_a_day() -> None:
    loader = make_loader(MemoryStore(), FakeSource())
    now = utc(2024, 11, 29, 19)
    assert loader.refresh_due(None, now)
    assert not loader.refresh_due(now - timedelta(hours=23, minutes=59), now)
    assert loader.refresh_due(now - timedelta(days=1), now)


def test_naive_now_is_refused() -> None:
    loader = make_loader(MemoryStore(), FakeSource({"^RUT": rut_rows()}))
    with pytest.raises(ValueError, match="timezone-aware"):
        loader.load({"^RUT": None}, datetime(2024, 11, 29, 19))


def test_config_supplies_symbols_and_settle() -> None:
    config = Config(
        path="config.yaml",
        timezone="America/New_York",
        telegram=TelegramConfig(),
        state=StateConfig(url="sqlite:///state.sqlite"),
        sources={},
        symbols=SYMBOLS,
        poll=PollConfig(settle=timedelta(hours=1)),
        sanity=SanityConfig(),
        delivery=DeliveryConfig(),
        rules=[],
    )
    store, source = MemoryStore(), FakeSource({"^RUT": rut_rows()})
    loader = HistoryLoader(store=store, fetch_daily=source, config=config)
    assert loader.settle == timedelta(hours=1)
    # 18:30 UTC is 30 minutes after the early close: not final with a 1-hour settle.
    series = loader.load({"^RUT": None}, utc(2024, 11, 29, 18, 30)).get("^RUT")
    assert series.last() == (date(2024, 11, 27), 2425.66)


# -- loaded or not: what seeds rules (bot.worker keeps rules unseeded until loaded) ----------


def test_a_fetch_is_loaded_a_failure_without_cache_or_an_empty_answer_is_not() -> None:
    store, source = MemoryStore(), FakeSource({"^RUT": rut_rows()})
    loader = make_loader(store, source)
    assert loader.try_load_symbol("^RUT", RUT, None, utc(2024, 11, 29, 22)).loaded
    empty = make_loader(MemoryStore(), FakeSource({}))
    assert not empty.try_load_symbol("^RUT", RUT, None, utc(2024, 11, 29, 22)).loaded
    failing = make_loader(MemoryStore(), FakeSource(error=SourceError("503", symbol="^RUT")))
    assert not failing.try_load_symbol("^RUT", RUT, None, utc(2024, 11, 29, 22)).loaded


def test_after_a_failure_a_cache_is_loaded_only_if_it_misses_no_final_session() -> None:
    store, source = MemoryStore(), FakeSource({"^RUT": rut_rows()})
    loader = make_loader(store, source)
    loader.load({"^RUT": None}, utc(2024, 11, 29, 22))  # cached up to Friday 2024-11-29
    source.error = SourceError("HTTP 503", symbol="^RUT")
    # Saturday: nothing final since Friday: the cache is complete.
    assert loader.try_load_symbol("^RUT", RUT, None, utc(2024, 11, 30, 12)).loaded
    # Monday evening: Monday's close is missing from the cache: not loaded.
    result = loader.try_load_symbol("^RUT", RUT, None, utc(2024, 12, 2, 22))
    assert not result.loaded and result.series.last() == (date(2024, 11, 29), 2434.93)


def test_keeper_retries_a_failed_load_after_minutes_with_capped_back_off() -> None:
    """A failed load is tried again after the back-off (1 min, doubling, capped at 30 min),
    not a day later; the cap is applied before the power, so attempt 1,000 does not overflow."""
    clock = FakeClock(utc(2024, 11, 29, 22))
    source = FakeSource({"^RUT": rut_rows()}, error=SourceError("HTTP 503", symbol="^RUT"))
    keeper = HistoryKeeper(make_loader(MemoryStore(), source), clock)

    async def scenario() -> list[set[str]]:
        arrived = []
        # fails at 0 s (next try at 60 s), fails at 60 s (next at 60 + 120), loads at 180 s
        for step in (0, 59, 60, 179, 180):
            clock.set(utc(2024, 11, 29, 22) + timedelta(seconds=step))
            if step == 180:
                source.error = None
            keeper.start({"^RUT": None})
            await keeper.wait()
            arrived.append(keeper.take_arrived())
        return arrived

    arrived = asyncio.run(scenario())
    assert len(source.calls) == 3
    assert arrived == [set(), set(), set(), set(), {"^RUT"}] and keeper.loaded == {"^RUT"}
    assert keeper.backoff(1) == 60 and keeper.backoff(2) == 120
    assert keeper.backoff(1000) == 30 * 60
