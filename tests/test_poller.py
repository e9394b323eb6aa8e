"""Poller: concurrent polls, failover between sources, and building sources from the config."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import build_worker
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
from tests.fakes.stooq import StooqFake, stooq_csv, stooq_quote_csv
from tests.fakes.yahoo import (
    RawHttpServer,
    Reply,
    YahooFake,
    chart_response,
    http_head,
    keep_alive,
)

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
    stooq_fake.quote("^rut", stooq_quote_csv(NOW, 2250.25))
    poller = Poller(sources(yahoo_fake.base_url, stooq_fake.base_url))

    with caplog.at_level(logging.INFO, logger="bot.sources.poller"):
        result = poller.fetch_latest_many([("RUT", BOTH)])

    observation = result["RUT"]
    assert isinstance(observation, Observation)
    assert (observation.value, observation.source) == (2250.25, "stooq")
    assert "RUT: quote served by stooq (failover after yahoo failed)" in caplog.text
    assert "RUT: quote from source yahoo failed: http://127.0.0.1:" in caplog.text
    assert "HTTP 500" in caplog.text and "; trying stooq" in caplog.text


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
    stooq_fake.quote("^rut", "No data")
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
    stooq_fake.quote("^rut", stooq_quote_csv(NOW, 2250.25))
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
    # Every answer is held at the server until all 8 requests are in flight at once: a poller
    # fetching one after another never gets there (the wait below fails instead of timing).
    tickers = [f"T{i}" for i in range(8)]
    for ticker in tickers:
        yahoo_fake.chart(ticker, Reply(chart_response(price=100.0, symbol=ticker), delay=30))
    poller = Poller(sources(yahoo_fake.base_url, "http://127.0.0.1:9"), concurrency=8)
    requests = [(t, SymbolConfig(source=["yahoo"], ticker=t)) for t in tickers]

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(poller.fetch_latest_many, requests)
        deadline = time.monotonic() + 10
        while yahoo_fake.in_flight < len(tickers) and time.monotonic() < deadline:
            time.sleep(0.01)
        all_at_once = yahoo_fake.in_flight
        yahoo_fake.release()
        result = future.result(timeout=10)

    assert all_at_once == len(tickers)
    assert all(isinstance(r, Observation) for r in result.values())


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


# -- one line per failure ----------------------------------------------------------------------


def bot_records(
    caplog: pytest.LogCaptureFixture, level: int = logging.INFO
) -> list[logging.LogRecord]:
    """What an operator sees at ``level``: the bot's own records (not the fake server's)."""
    return [r for r in caplog.records if r.name.startswith("bot") and r.levelno >= level]


def yahoo_only(yahoo_url: str, **params: object) -> Poller:
    settings = {"type": "yahoo", "base_url": yahoo_url, "timeout": 2, "attempts": 3, **params}
    source = YahooSource(
        "yahoo", YahooParams.model_validate(settings), FakeClock(NOW), sleep=lambda _: None
    )
    return Poller({"yahoo": source})


RUT = SymbolConfig(source=["yahoo"], ticker="^RUT", calendar="XNYS")


def test_a_failed_fetch_is_one_warning_naming_symbol_source_url_and_cause(
    yahoo_fake: YahooFake, caplog: pytest.LogCaptureFixture
) -> None:
    yahoo_fake.chart("^RUT", Reply("Service Unavailable", status=503))
    poller = yahoo_only(yahoo_fake.base_url)
    with caplog.at_level(logging.DEBUG, logger="bot"):
        result = poller.fetch_latest_many([("RUT", RUT)])
    assert isinstance(result["RUT"], SourceError)
    assert yahoo_fake.count() == 3  # the retries happened ...
    (line,) = bot_records(caplog)  # ... but an operator reads one line
    assert line.levelno == logging.WARNING
    text = line.getMessage()
    assert text.startswith("RUT: quote from source yahoo failed: http://127.0.0.1:"), text
    assert "/v8/finance/chart/%5ERUT" in text and "HTTP 503" in text
    assert "gave up after 3 attempts" in text
    assert line.exc_info is None
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 2 and all(r.levelno == logging.DEBUG for r in retries)


def test_failover_logs_one_line_per_failed_source(
    yahoo_fake: YahooFake, stooq_fake: StooqFake, caplog: pytest.LogCaptureFixture
) -> None:
    yahoo_fake.chart("^RUT", Reply("", status=503))
    stooq_fake.quote("^rut", "No data")
    poller = Poller(sources(yahoo_fake.base_url, stooq_fake.base_url))
    with caplog.at_level(logging.INFO, logger="bot"):
        poller.fetch_latest_many([("RUT", BOTH)])
    lines = [r.getMessage() for r in bot_records(caplog)]
    assert len(lines) == 2, lines
    assert lines[0].startswith("RUT: quote from source yahoo failed:")
    assert lines[0].endswith("; trying stooq")
    assert lines[1].startswith("RUT: quote from source stooq failed:")
    assert lines[1].endswith("every source failed (yahoo, stooq)")


@pytest.mark.parametrize(
    ("stamp", "message"),
    [
        (10**12, "out-of-range meta.regularMarketTime"),  # year 33658: datetime cannot hold it
        (1e300, "out-of-range meta.regularMarketTime"),
        (4102444800, "meta.regularMarketTime in the future (2100-01-01"),  # year 2100
    ],
)
def test_an_out_of_range_yahoo_timestamp_is_one_line_without_traceback(
    yahoo_fake: YahooFake, caplog: pytest.LogCaptureFixture, stamp: float, message: str
) -> None:
    body = chart_response()
    body["chart"]["result"][0]["meta"]["regularMarketTime"] = stamp
    yahoo_fake.chart("^RUT", body)
    poller = yahoo_only(yahoo_fake.base_url)
    with caplog.at_level(logging.DEBUG, logger="bot"):
        for _ in range(3):  # every poll: one line, never a traceback
            result = poller.fetch_latest_many([("RUT", RUT)])
            assert isinstance(result["RUT"], SourceError)
            assert message in str(result["RUT"])
    lines = bot_records(caplog)
    assert len(lines) == 3
    assert all(message in r.getMessage() and r.exc_info is None for r in lines)
    assert not any(r.exc_info for r in caplog.records)


def test_out_of_range_bar_timestamps_are_source_errors(yahoo_fake: YahooFake) -> None:
    body = chart_response(bars=[(date(2025, 1, 9), 1.0), (date(2025, 1, 10), 2.0)])
    body["chart"]["result"][0]["timestamp"][1] = 10**15
    yahoo_fake.chart("^RUT", body)
    with pytest.raises(SourceError, match="out-of-range bar timestamp"):
        yahoo_only(yahoo_fake.base_url).fetch_daily("RUT", RUT, date(2025, 1, 1), None)
    body["chart"]["result"][0]["timestamp"][1] = 4102444800
    yahoo_fake.chart("^RUT", body)
    with pytest.raises(SourceError, match="bar timestamp in the future"):
        yahoo_only(yahoo_fake.base_url).fetch_daily("RUT", RUT, date(2025, 1, 1), None)


def test_bad_json_is_one_line_without_traceback(
    yahoo_fake: YahooFake, caplog: pytest.LogCaptureFixture
) -> None:
    yahoo_fake.chart("^RUT", Reply('{"chart": {"result": [', content_type="application/json"))
    with caplog.at_level(logging.DEBUG, logger="bot"):
        yahoo_only(yahoo_fake.base_url).fetch_latest_many([("RUT", RUT)])
    (line,) = bot_records(caplog)
    assert "invalid JSON from Yahoo" in line.getMessage()
    assert not any(r.exc_info for r in caplog.records)


def test_a_crashing_source_shows_its_traceback_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(NOW)
    poller = Poller({"broken": _Broken("broken", SourceParams(type="broken"), clock)})
    spec = SymbolConfig(source=["broken"])
    with caplog.at_level(logging.INFO, logger="bot"):
        for _ in range(3):
            poller.fetch_latest_many([("BAD", spec)])
    with_traceback = [r for r in bot_records(caplog) if r.exc_info]
    assert len(with_traceback) == 1 and with_traceback[0].levelno == logging.ERROR
    warnings = [r for r in bot_records(caplog) if r.levelno == logging.WARNING]
    assert len(warnings) == 3 and all("KeyError" in r.getMessage() for r in warnings)


# -- closing -----------------------------------------------------------------------------------

WORKER_CONFIG = """\
timezone: America/New_York
state: {{url: "sqlite:///{state}"}}
sources:
  yahoo: {{type: yahoo, base_url: "{yahoo}", attempts: 1}}
  backup: {{type: yahoo, base_url: "{yahoo}", attempts: 1}}
symbols:
  RUT: {{source: yahoo, ticker: "^RUT", calendar: XNYS}}
  SPX: {{source: backup, ticker: "^GSPC", calendar: XNYS}}
rules:
  - {{id: rut-2500, type: cross, symbol: RUT, level: 2500}}
"""


@pytest.mark.timeout(60)
def test_stopping_the_worker_closes_every_sources_connections(tmp_path: Path) -> None:
    when = datetime(2024, 11, 25, 15, 0, tzinfo=UTC)  # a Monday, NYSE open
    body = json.dumps(chart_response(price=2490.0, time=when - timedelta(minutes=1))).encode()
    head = http_head(content_type="application/json", content_length=len(body))
    with RawHttpServer(keep_alive(head, body)) as server:
        text = WORKER_CONFIG.format(state=tmp_path / "s.sqlite", yahoo=server.base_url)
        worker = build_worker(parse_config(text, "config.yaml", {}), clock=FakeClock(when))

        async def scenario() -> None:
            await worker.start()
            report = await worker.poll_once()
            assert report.polled == ["RUT", "SPX"] and not report.errors
            assert server.closed_by_client == 0  # pooled, kept alive between polls
            await worker.stop()

        asyncio.run(scenario())
        deadline = time.monotonic() + 5
        while server.closed_by_client < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.closed_by_client == 2  # one pooled connection per source, both closed


# -- daily bars not published yet --------------------------------------------------------------


def test_a_missing_daily_bar_is_not_asked_for_again_within_the_backoff(
    yahoo_fake: YahooFake,
) -> None:
    clock = FakeClock(datetime(2025, 1, 10, 21, 15, tzinfo=UTC))  # after Friday's close
    source = YahooSource(
        "yahoo",
        YahooParams.model_validate({"type": "yahoo", "base_url": yahoo_fake.base_url}),
        clock,
    )
    poller = Poller({"yahoo": source}, no_bar_backoff=timedelta(minutes=5))
    assert poller.clock is clock  # the sources' clock by default
    thursday = chart_response(bars=[(date(2025, 1, 9), 2240.0)])
    yahoo_fake.chart("^RUT", thursday)
    start, friday = date(2025, 1, 3), date(2025, 1, 10)

    def ask() -> DailySeries:
        series = poller.fetch_daily("RUT", RUT, start, friday)
        series.append(date(2025, 1, 11), 1.0)  # callers may append: the cache must not change
        return series

    for _ in range(4):  # polls a minute apart while Friday's bar is not published
        assert ask().dates[:-1] == [date(2025, 1, 9)]
        clock.advance(timedelta(minutes=1))
    assert yahoo_fake.count() == 1
    clock.advance(timedelta(minutes=1))  # five minutes after the first ask: ask again
    yahoo_fake.chart("^RUT", chart_response(bars=[(date(2025, 1, 9), 2240.0), (friday, 2250.0)]))
    assert ask().dates[:-1] == [date(2025, 1, 9), friday]
    assert yahoo_fake.count() == 2
    assert poller.fetch_daily("RUT", RUT, start, friday).values[-1] == 2250.0
    assert yahoo_fake.count() == 3  # a complete answer is never served from memory
    # another symbol, or another window, is its own request
    poller.fetch_daily("RUT", RUT, date(2025, 1, 6), friday)
    assert yahoo_fake.count() == 4


def test_a_rate_limit_is_one_warning_and_the_cooldown_skips_are_quiet(
    yahoo_fake: YahooFake, caplog: pytest.LogCaptureFixture
) -> None:
    yahoo_fake.chart("^RUT", Reply("", status=429, headers={"Retry-After": "600"}))
    poller = yahoo_only(yahoo_fake.base_url)
    with caplog.at_level(logging.INFO, logger="bot"):
        poller.fetch_latest_many([("RUT", RUT)])
    (line,) = bot_records(caplog)
    assert line.levelno == logging.WARNING
    assert "HTTP 429" in line.getMessage() and "cooling down until" in line.getMessage()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bot"):
        for _ in range(3):  # polls during the cool-down: no request, no new warning
            poller.fetch_latest_many([("RUT", RUT)])
    assert yahoo_fake.count() == 1
    assert len(bot_records(caplog)) == 3
    assert not bot_records(caplog, logging.WARNING)


def test_daily_failures_are_left_to_the_callers_warning(
    yahoo_fake: YahooFake, caplog: pytest.LogCaptureFixture
) -> None:
    yahoo_fake.chart("^RUT", Reply("", status=503))
    with caplog.at_level(logging.INFO, logger="bot"), pytest.raises(SourceError):
        yahoo_only(yahoo_fake.base_url).fetch_daily("RUT", RUT, date(2025, 1, 1), None)
    (line,) = bot_records(caplog)
    assert line.levelno == logging.INFO  # the history loader / worker warns, with context
    assert line.getMessage().startswith("RUT: daily history from source yahoo failed:")


def test_polls_reuse_one_thread_pool(yahoo_fake: YahooFake, stooq_fake: StooqFake) -> None:
    """Every cycle's quotes are fetched by the same few threads, not a new pool per cycle."""
    import threading

    srcs = sources(yahoo_fake.base_url, stooq_fake.base_url)
    threads: list[threading.Thread] = []  # the objects: an ident may be reused, they are not
    yahoo = srcs["yahoo"]
    original = yahoo.fetch_latest

    def recording(symbol_id: str, spec: SymbolConfig) -> Observation:
        threads.append(threading.current_thread())
        return original(symbol_id, spec)

    yahoo.fetch_latest = recording  # type: ignore[method-assign]
    poller = Poller(srcs, concurrency=2)
    specs = [(f"S{i}", SymbolConfig(source="yahoo", ticker=f"S{i}")) for i in range(4)]
    for i in range(4):
        yahoo_fake.chart(f"S{i}", chart_response(price=100.0 + i, time=NOW))
    try:
        for _ in range(3):
            results = poller.fetch_latest_many(specs)
            assert all(isinstance(r, Observation) for r in results.values())
        assert len(threads) == 12
        assert len({id(t) for t in threads}) <= 2  # the pool's threads, alive across cycles
    finally:
        poller.close()
    assert not any(t.is_alive() for t in threads)  # closed with the poller


def test_sessions_ignore_an_empty_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy, CA bundle or netrc configured: requests skips its per-request environment
    look-ups (trust_env off); with a proxy set, it keeps them."""
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "NETRC",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "/nonexistent-home")
    params = YahooParams.model_validate({"type": "yahoo", "base_url": "http://127.0.0.1:9"})
    assert YahooSource("yahoo", params, FakeClock(NOW)).http.session.trust_env is False
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert YahooSource("yahoo", params, FakeClock(NOW)).http.session.trust_env is True
