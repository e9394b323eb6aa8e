"""Poller: concurrent polls, failover between sources, and building sources from the config."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.config import SourceParams, SymbolConfig, parse_config
from bot.errors import ConfigError, SourceError
from bot.model import DailySeries, Observation
from bot.sources.base import Source
from bot.sources.csvfile import CsvSource
from bot.sources.fred import FredSource
from bot.sources.poller import Poller, build_sources
from bot.sources.stooq import StooqParams, StooqSource
from bot.sources.yahoo import YahooParams, YahooSource
from tests.fakes.stooq import StooqFake, stooq_csv
from tests.fakes.yahoo import Reply, YahooFake, chart_response

NOW = datetime(2025, 1, 10, 18, 0, tzinfo=UTC)
BOTH = SymbolConfig(source=["yahoo", "stooq"], ticker="^RUT", calendar="XNYS")


@pytest.fixture
def yahoo_fake() -> Iterator[YahooFake]:
    with YahooFake() as fake:
        yield fake


@pytest.fixture
def stooq_fake() -> Iterator[StooqFake]:
    with StooqFake() as fake:
        yield fake


def sources(yahoo_url: str, stooq_url: str, clock: FakeClock | None = None) -> dict[str, Source]:
    clock = clock or FakeClock(NOW)
    common = {"timeout": 2, "attempts": 1}
    yahoo = YahooParams.model_validate({"type": "yahoo", "base_url": yahoo_url, **common})
    stooq = StooqParams.model_validate({"type": "stooq", "base_url": stooq_url, **common})
    return {
        "yahoo": YahooSource("yahoo", yahoo, clock, sleep=lambda _: None),
        "stooq": StooqSource("stooq", stooq, clock, sleep=lambda _: None),
    }


# -- failover ----------------------------------------------------------------------------------


def test_first_source_failing_means_the_second_serves_and_the_log_says_so(
    yahoo_fake: YahooFake, stooq_fake: StooqFake, caplog: pytest.LogCaptureFixture
) -> None:
    yahoo_fake.chart("^RUT", Reply("Internal Server Error", status=500))
    stooq_fake.daily("^rut", stooq_csv([(date(2025, 1, 10), 2250.25)]))
    poller = Poller(sources(yahoo_fake.base_url, stooq_fake.base_url))

    with caplog.at_level(logging.INFO, logger="bot.sources.poller"):
        result = poller.fetch_latest_many([("RUT", BOTH)])

    observation = result["RUT"]
    assert isinstance(observation, Observation)
    assert (observation.value, observation.source) == (2250.25, "stooq")
    assert "RUT: quote served by stooq (failover after yahoo failed)" in caplog.text
    assert "RUT: source yahoo failed" in caplog.text and "HTTP 500" in caplog.text


def test_second_source_is_not_asked_when_the_first_serves(
    yahoo_fake: YahooFake, stooq_fake: StooqFake
) -> None:
    yahoo_fake.quote("^RUT", 2251.0)
    observation = Poller(sources(yahoo_fake.base_url, stooq_fake.base_url)).fetch_latest(
        "RUT", BOTH
    )
    assert (observation.value, observation.source) == (2251.0, "yahoo")
    assert stooq_fake.count() == 0


def test_all_sources_failing_returns_the_last_error(
    yahoo_fake: YahooFake, stooq_fake: StooqFake, caplog: pytest.LogCaptureFixture
) -> None:
    yahoo_fake.chart("^RUT", Reply("", status=503))
    stooq_fake.daily("^rut", "No data")
    poller = Poller(sources(yahoo_fake.base_url, stooq_fake.base_url))
    with caplog.at_level(logging.WARNING, logger="bot.sources.poller"):
        result = poller.fetch_latest_many([("RUT", BOTH)])
    error = result["RUT"]
    assert isinstance(error, SourceError)
    assert error.symbol == "RUT"
    assert "Stooq has no data" in str(error)
    assert "every source failed" in caplog.text


def test_source_in_cooldown_is_skipped_without_a_request(
    yahoo_fake: YahooFake, stooq_fake: StooqFake
) -> None:
    yahoo_fake.chart("^RUT", Reply("", status=429, headers={"Retry-After": "600"}))
    stooq_fake.daily("^rut", stooq_csv([(date(2025, 1, 10), 2250.25)]))
    poller = Poller(sources(yahoo_fake.base_url, stooq_fake.base_url))
    for _ in range(3):
        assert poller.fetch_latest("RUT", BOTH).source == "stooq"
    assert yahoo_fake.count() == 1  # only the request that got the 429
    assert stooq_fake.count() == 3


def test_daily_history_fails_over_too(yahoo_fake: YahooFake, stooq_fake: StooqFake) -> None:
    yahoo_fake.chart("^RUT", Reply("<html><title>Oops</title></html>", status=200))
    stooq_fake.daily("^rut", stooq_csv([(date(2025, 1, 9), 2240.0), (date(2025, 1, 10), 2250.25)]))
    series = Poller(sources(yahoo_fake.base_url, stooq_fake.base_url)).fetch_daily(
        "RUT", BOTH, date(2025, 1, 1), date(2025, 1, 10)
    )
    assert series.values == [2240.0, 2250.25]


class _Broken(Source):
    """A source with a bug: the poller must contain it."""

    def fetch_latest(self, symbol_id: str, spec: SymbolConfig) -> Observation:
        raise KeyError("regularMarketPrice")

    def fetch_daily(
        self, symbol_id: str, spec: SymbolConfig, start: date | None, end: date | None
    ) -> DailySeries:
        raise ZeroDivisionError


def test_a_crashing_source_becomes_a_source_error_and_others_still_serve(
    yahoo_fake: YahooFake, caplog: pytest.LogCaptureFixture
) -> None:
    yahoo_fake.quote("^GSPC", 5900.0)
    clock = FakeClock(NOW)
    all_sources = sources(yahoo_fake.base_url, "http://127.0.0.1:9", clock)
    all_sources["broken"] = _Broken("broken", SourceParams(type="broken"), clock)
    poller = Poller(all_sources)
    result = poller.fetch_latest_many(
        [
            ("BAD", SymbolConfig(source=["broken"])),
            ("SPX", SymbolConfig(source=["yahoo"], ticker="^GSPC")),
        ]
    )
    assert isinstance(result["BAD"], SourceError)
    assert "KeyError" in str(result["BAD"])
    assert isinstance(result["SPX"], Observation)
    assert list(result) == ["BAD", "SPX"]


def test_unknown_source_name_is_a_source_error() -> None:
    result = Poller({}).fetch_latest_many([("RUT", SymbolConfig(source=["nowhere"]))])
    assert isinstance(result["RUT"], SourceError)
    assert "not configured" in str(result["RUT"])


# -- concurrency -------------------------------------------------------------------------------


def test_symbols_of_one_poll_are_fetched_concurrently(yahoo_fake: YahooFake) -> None:
    # A functional check that the poll is concurrent: 8 answers delayed 0.3 s each would take
    # 2.4 s one after another; the bound below leaves a wide margin for slow CI machines.
    tickers = [f"T{i}" for i in range(8)]
    for ticker in tickers:
        yahoo_fake.chart(ticker, Reply(chart_response(price=100.0, symbol=ticker), delay=0.3))
    poller = Poller(sources(yahoo_fake.base_url, "http://127.0.0.1:9"), concurrency=8)
    requests = [(t, SymbolConfig(source=["yahoo"], ticker=t)) for t in tickers]

    started = time.perf_counter()
    result = poller.fetch_latest_many(requests)
    elapsed = time.perf_counter() - started

    assert all(isinstance(r, Observation) for r in result.values())
    assert yahoo_fake.max_in_flight >= 2
    assert elapsed < len(tickers) * 0.3 * 0.6


def test_concurrency_is_bounded(yahoo_fake: YahooFake) -> None:
    tickers = [f"T{i}" for i in range(6)]
    for ticker in tickers:
        yahoo_fake.chart(ticker, Reply(chart_response(price=100.0, symbol=ticker), delay=0.05))
    poller = Poller(sources(yahoo_fake.base_url, "http://127.0.0.1:9"), concurrency=2)
    result = poller.fetch_latest_many(
        [(t, SymbolConfig(source=["yahoo"], ticker=t)) for t in tickers]
    )
    assert len(result) == 6
    assert yahoo_fake.max_in_flight <= 2


# -- building from the config ------------------------------------------------------------------

CONFIG = """
sources:
  yahoo: {type: yahoo, attempts: 2, backoff: 2s}
  stooq: {type: stooq, base_url: "http://127.0.0.1:9"}
  fred: {type: fred}
  files: {type: csv}
symbols:
  RUT: {source: [yahoo, stooq], ticker: "^RUT", calendar: XNYS}
  FED: {source: fred, series: {lower: DFEDTARL, upper: DFEDTARU}}
  OLD: {source: files, file: data/rut.csv}
poll: {concurrency: 3}
"""


def test_build_sources_from_config(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rut.csv").write_text("Date,Open,High,Low,Close,Volume\n")
    config = parse_config(CONFIG, str(tmp_path / "config.yaml"), {})
    built = build_sources(config, FakeClock(NOW), sleep=lambda _: None)
    assert isinstance(built["yahoo"], YahooSource)
    assert isinstance(built["stooq"], StooqSource)
    assert isinstance(built["fred"], FredSource)
    assert isinstance(built["files"], CsvSource)
    assert built["yahoo"].base_url == "https://query1.finance.yahoo.com"
    assert built["stooq"].base_url == "http://127.0.0.1:9"
    assert built["yahoo"].http.params.attempts == 2  # type: ignore[attr-defined]
    files = built["files"]
    assert isinstance(files, CsvSource)
    assert files.path_for("OLD", config.symbols["OLD"]) == tmp_path.resolve() / "data/rut.csv"
    assert Poller.from_config(config, FakeClock(NOW)).concurrency == 3


def test_config_reports_source_specific_symbol_problems(tmp_path: Path) -> None:
    text = CONFIG.replace(", series: {lower: DFEDTARL, upper: DFEDTARU}", "").replace(
        ", file: data/rut.csv", ""
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "config.yaml", {})
    messages = str(caught.value)
    assert "config.yaml:9: symbols.FED: a fred symbol needs 'series'" in messages
    assert "config.yaml:10: symbols.OLD: a csv symbol needs 'file'" in messages


def test_unknown_source_option_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"sources\.yahoo\.atempts: unknown key"):
        parse_config(CONFIG.replace("attempts: 2", "atempts: 2"), "config.yaml", {})
