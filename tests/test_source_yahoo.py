"""Yahoo source and the shared HTTP helper, against a fake chart API on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import socket
import time as wall
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.clock import FakeClock
from bot.config import SymbolConfig
from bot.errors import SourceError
from bot.sources.base import USER_AGENT
from bot.sources.http import HttpClient, HttpSourceParams, parse_retry_after
from bot.sources.yahoo import YahooParams, YahooSource
from tests.fakes.yahoo import (
    SAD_PANDA_HTML,
    RawHttpServer,
    Reply,
    YahooFake,
    chart_error,
    chart_response,
    endless_chunks,
    gzip_bomb,
    http_head,
    redirect_once,
    send_all,
    stall_after_headers,
    trickle,
    trickle_headers,
)


@pytest.fixture
def yahoo_fake() -> Iterator[YahooFake]:
    with YahooFake() as fake:
        yield fake


NOW = datetime(2025, 1, 10, 21, 0, tzinfo=UTC)
RUT = SymbolConfig(source=["yahoo"], ticker="^RUT", calendar="XNYS")


class Sleeps(list[float]):
    """Records the back-off delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_source(
    base_url: str, clock: FakeClock | None = None, sleeps: Sleeps | None = None, **params: Any
) -> YahooSource:
    settings = {"type": "yahoo", "base_url": base_url, "timeout": 2, "backoff": "1s", **params}
    return YahooSource(
        "yahoo",
        YahooParams.model_validate(settings),
        clock or FakeClock(NOW),
        sleep=sleeps if sleeps is not None else Sleeps(),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- happy path --------------------------------------------------------------------------------


def test_latest_quote_is_regular_market_price_at_regular_market_time(yahoo_fake: YahooFake) -> None:
    stamp = datetime(2025, 1, 10, 20, 59, 58, tzinfo=UTC)
    yahoo_fake.chart("^RUT", chart_response(price=2250.5, time=stamp, previous_close=1999.0))
    observation = make_source(yahoo_fake.base_url).fetch_latest("RUT", RUT)

    assert observation.value == 2250.5  # never chartPreviousClose
    assert observation.time == stamp
    assert observation.kind == "price"
    assert observation.session == date(2025, 1, 10)
    assert observation.symbol == "RUT"
    assert observation.source == "yahoo"
    (request,) = yahoo_fake.chart_requests("^RUT")
    assert request.query == {"range": "1d", "interval": "1d"}
    assert request.headers["User-Agent"] == USER_AGENT


def test_ticker_override_per_source_is_used(yahoo_fake: YahooFake) -> None:
    yahoo_fake.quote("RTY=F", 2260.0)
    spec = SymbolConfig(source=["yahoo"], ticker="RTY", tickers={"yahoo": "RTY=F"})
    assert make_source(yahoo_fake.base_url).fetch_latest("RTY", spec).value == 2260.0
    assert yahoo_fake.count(yahoo_fake.chart_path("RTY=F")) == 1


@pytest.mark.parametrize(
    ("tz", "expected"),
    [("America/New_York", date(2025, 1, 9)), ("Asia/Tokyo", date(2025, 1, 10))],
)
def test_session_date_is_taken_in_the_exchange_zone(
    yahoo_fake: YahooFake, tz: str, expected: date
) -> None:
    # 02:00 UTC is the evening before in New York and the morning after in Tokyo.
    yahoo_fake.quote("^RUT", 2250.0, time=datetime(2025, 1, 10, 2, 0, tzinfo=UTC), tz=tz)
    assert make_source(yahoo_fake.base_url).fetch_latest("RUT", RUT).session == expected


def test_daily_bars_skip_null_closes(yahoo_fake: YahooFake) -> None:
    bars = [
        (date(2025, 1, 6), 2260.0),
        (date(2025, 1, 7), None),
        (date(2025, 1, 8), 2240.5),
        (date(2025, 1, 9), None),
        (date(2025, 1, 10), 2250.25),
    ]
    yahoo_fake.chart("^RUT", chart_response(bars=bars))
    series = make_source(yahoo_fake.base_url).fetch_daily(
        "RUT", RUT, date(2025, 1, 6), date(2025, 1, 10)
    )
    assert series.dates == [date(2025, 1, 6), date(2025, 1, 8), date(2025, 1, 10)]
    assert series.values == [2260.0, 2240.5, 2250.25]


def test_daily_request_uses_period1_period2_and_pads_the_window(yahoo_fake: YahooFake) -> None:
    yahoo_fake.chart("^RUT", chart_response(bars=[(date(2025, 1, 6), 1.0)]))
    make_source(yahoo_fake.base_url).fetch_daily("RUT", RUT, date(2025, 1, 6), date(2025, 1, 10))
    query = yahoo_fake.chart_requests("^RUT")[0].query
    assert query["interval"] == "1d"
    assert int(query["period1"]) <= datetime(2025, 1, 6, tzinfo=UTC).timestamp()
    assert int(query["period2"]) >= datetime(2025, 1, 11, tzinfo=UTC).timestamp()
    assert "range" not in query


def test_daily_without_start_asks_for_the_whole_history(yahoo_fake: YahooFake) -> None:
    yahoo_fake.chart("^RUT", chart_response(bars=[(date(1987, 9, 10), 168.97)]))
    series = make_source(yahoo_fake.base_url).fetch_daily("RUT", RUT, None, None)
    assert series.values == [168.97]
    assert yahoo_fake.chart_requests("^RUT")[0].query == {"interval": "1d", "range": "max"}


def test_daily_bars_are_trimmed_to_the_window_and_a_repeated_day_keeps_the_last(
    yahoo_fake: YahooFake,
) -> None:
    tz = "America/New_York"
    bars: list[tuple[Any, float | None]] = [
        (date(2025, 1, 3), 1.0),  # padding day before the window
        (date(2025, 1, 6), 2.0),
        (date(2025, 1, 7), 3.0),
        # Yahoo's live bar for the same day, stamped at the last trade
        (datetime(2025, 1, 7, 15, 59, tzinfo=ZoneInfo(tz)), 3.5),
        (date(2025, 1, 8), 4.0),  # after the window
    ]
    yahoo_fake.chart("^RUT", chart_response(bars=bars, tz=tz))
    series = make_source(yahoo_fake.base_url).fetch_daily(
        "RUT", RUT, date(2025, 1, 6), date(2025, 1, 7)
    )
    assert series.dates == [date(2025, 1, 6), date(2025, 1, 7)]
    assert series.values == [2.0, 3.5]


@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Tokyo", "Australia/Sydney"])
def test_futures_bars_stamped_at_local_midnight_keep_their_local_date(
    yahoo_fake: YahooFake, tz: str
) -> None:
    # Midnight in Tokyo/Sydney is the previous day in UTC: dating bars in UTC would be wrong.
    bars = [(date(2025, 1, 6), 10.0), (date(2025, 1, 7), 11.0)]
    yahoo_fake.chart("RTY=F", chart_response(bars=bars, tz=tz, bar_time=time(0, 0)))
    spec = SymbolConfig(source=["yahoo"], ticker="RTY=F")
    series = make_source(yahoo_fake.base_url).fetch_daily(
        "RTY", spec, date(2025, 1, 6), date(2025, 1, 7)
    )
    assert series.dates == [date(2025, 1, 6), date(2025, 1, 7)]


def test_window_without_bars_is_an_empty_series(yahoo_fake: YahooFake) -> None:
    yahoo_fake.chart("^RUT", chart_response(bars=[]))
    series = make_source(yahoo_fake.base_url).fetch_daily(
        "RUT", RUT, date(2025, 1, 6), date(2025, 1, 6)
    )
    assert len(series) == 0


# -- failure modes -----------------------------------------------------------------------------


def test_404_with_chart_error_names_symbol_url_and_reason(yahoo_fake: YahooFake) -> None:
    yahoo_fake.chart("^NOPE", Reply(chart_error(), status=404))
    spec = SymbolConfig(source=["yahoo"], ticker="^NOPE")
    with pytest.raises(SourceError) as caught:
        make_source(yahoo_fake.base_url).fetch_latest("NOPE", spec)
    error = caught.value
    assert error.status == 404
    assert error.symbol == "NOPE"
    assert error.url is not None and "/v8/finance/chart/%5ENOPE" in error.url
    assert "No data found, symbol may be delisted" in str(error)
    assert str(error).startswith("NOPE http://127.0.0.1:")
    assert yahoo_fake.count() == 1  # a 404 is not retried


def test_chart_error_with_http_200_is_an_error(yahoo_fake: YahooFake) -> None:
    yahoo_fake.chart("^RUT", chart_error("Bad Request", "Invalid input - interval=1x"))
    with pytest.raises(SourceError, match="Invalid input - interval=1x"):
        make_source(yahoo_fake.base_url).fetch_latest("RUT", RUT)


def test_429_cools_the_source_down_without_further_requests(yahoo_fake: YahooFake) -> None:
    clock = FakeClock(NOW)
    yahoo_fake.chart(
        "^RUT",
        [
            Reply("Too Many Requests", status=429, headers={"Retry-After": "120"}),
            chart_response(price=2250.0),
        ],
    )
    source = make_source(yahoo_fake.base_url, clock)

    with pytest.raises(SourceError) as first:
        source.fetch_latest("RUT", RUT)
    assert first.value.status == 429
    assert yahoo_fake.count() == 1

    clock.advance(timedelta(seconds=60))
    for _ in range(3):  # polls during the cool-down are skipped: no request reaches the server
        with pytest.raises(SourceError, match="cooling down") as skipped:
            source.fetch_latest("RUT", RUT)
        assert skipped.value.symbol == "RUT"
        assert skipped.value.retry_after == pytest.approx(60.0)
    assert yahoo_fake.count() == 1
    assert source.http.cooldown_until == NOW + timedelta(seconds=120)

    clock.advance(timedelta(seconds=61))
    assert source.fetch_latest("RUT", RUT).value == 2250.0
    assert yahoo_fake.count() == 2


def test_429_without_retry_after_uses_the_configured_cooldown(yahoo_fake: YahooFake) -> None:
    clock = FakeClock(NOW)
    yahoo_fake.chart("^RUT", [Reply("", status=429), chart_response(price=2250.0)])
    source = make_source(yahoo_fake.base_url, clock, cooldown="5m")
    with pytest.raises(SourceError):
        source.fetch_latest("RUT", RUT)
    clock.advance(timedelta(minutes=4, seconds=59))
    with pytest.raises(SourceError, match="cooling down"):
        source.fetch_latest("RUT", RUT)
    clock.advance(timedelta(seconds=2))
    assert source.fetch_latest("RUT", RUT).value == 2250.0
    assert yahoo_fake.count() == 2


def test_429_is_not_retried_within_the_fetch(yahoo_fake: YahooFake) -> None:
    yahoo_fake.chart("^RUT", Reply("", status=429, headers={"Retry-After": "30"}))
    sleeps = Sleeps()
    with pytest.raises(SourceError):
        make_source(yahoo_fake.base_url, sleeps=sleeps, attempts=5).fetch_latest("RUT", RUT)
    assert yahoo_fake.count() == 1
    assert sleeps == []


def test_5xx_then_success_is_retried_with_growing_backoff(yahoo_fake: YahooFake) -> None:
    yahoo_fake.chart(
        "^RUT", [Reply("oops", status=503), Reply("oops", status=502), chart_response(price=7.0)]
    )
    sleeps = Sleeps()
    source = make_source(yahoo_fake.base_url, sleeps=sleeps, attempts=3, backoff="1s")
    assert source.fetch_latest("RUT", RUT).value == 7.0
    assert yahoo_fake.count() == 3
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0  # 1 s with equal jitter
    assert 1.0 <= sleeps[1] <= 2.0  # doubled


def test_5xx_until_attempts_run_out(yahoo_fake: YahooFake) -> None:
    yahoo_fake.chart("^RUT", Reply("boom", status=500))
    sleeps = Sleeps()
    with pytest.raises(SourceError, match=r"HTTP 500.*gave up after 2 attempts") as caught:
        make_source(yahoo_fake.base_url, sleeps=sleeps, attempts=2).fetch_latest("RUT", RUT)
    assert caught.value.status == 500
    assert caught.value.retryable
    assert caught.value.symbol == "RUT"
    assert yahoo_fake.count() == 2
    assert len(sleeps) == 1


def test_timeout_is_retried_and_then_reported(yahoo_fake: YahooFake) -> None:
    yahoo_fake.chart("^RUT", Reply(chart_response(), delay=5.0))
    sleeps = Sleeps()
    source = make_source(yahoo_fake.base_url, sleeps=sleeps, attempts=2, timeout=0.2)
    with pytest.raises(SourceError, match=r"timed out after 0\.2s") as caught:
        source.fetch_latest("RUT", RUT)
    assert caught.value.retryable
    assert caught.value.url is not None and "chart" in caught.value.url
    assert yahoo_fake.count() == 2
    assert len(sleeps) == 1


def test_timeout_then_success(yahoo_fake: YahooFake) -> None:
    yahoo_fake.chart("^RUT", [Reply(chart_response(), delay=5.0), chart_response(price=9.0)])
    source = make_source(yahoo_fake.base_url, attempts=2, timeout=0.2)
    assert source.fetch_latest("RUT", RUT).value == 9.0


def test_connection_refused_is_a_source_error() -> None:
    source = make_source(f"http://127.0.0.1:{free_port()}", attempts=2)
    with pytest.raises(SourceError, match="connection failed") as caught:
        source.fetch_latest("RUT", RUT)
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("status", "content_type"),
    [(200, "text/html; charset=utf-8"), (403, "text/html"), (200, "application/json")],
)
def test_html_error_page_is_detected(yahoo_fake: YahooFake, status: int, content_type: str) -> None:
    yahoo_fake.chart("^RUT", Reply(SAD_PANDA_HTML, status=status, content_type=content_type))
    with pytest.raises(SourceError, match="HTML page instead of data") as caught:
        make_source(yahoo_fake.base_url).fetch_latest("RUT", RUT)
    assert caught.value.status == status
    assert caught.value.symbol == "RUT"
    assert yahoo_fake.count() == 1


@pytest.mark.parametrize("cut", [1, 40, -3])
def test_truncated_json_is_a_source_error(yahoo_fake: YahooFake, cut: int) -> None:
    body = json.dumps(chart_response(price=2250.0))
    yahoo_fake.chart("^RUT", Reply(body[:cut], content_type="application/json"))
    with pytest.raises(SourceError, match="invalid JSON"):
        make_source(yahoo_fake.base_url).fetch_latest("RUT", RUT)


@pytest.mark.parametrize(
    "body",
    [
        {"chart": {"result": [], "error": None}},
        {"chart": {"result": None, "error": None}},
        {"finance": {"result": None}},
        [],
    ],
)
def test_unexpected_shapes_are_source_errors(yahoo_fake: YahooFake, body: Any) -> None:
    yahoo_fake.chart("^RUT", Reply(body))
    with pytest.raises(SourceError, match="unexpected Yahoo response"):
        make_source(yahoo_fake.base_url).fetch_latest("RUT", RUT)


@pytest.mark.parametrize(
    "missing", ["regularMarketPrice", "regularMarketTime", "exchangeTimezoneName"]
)
def test_missing_meta_fields_are_source_errors(yahoo_fake: YahooFake, missing: str) -> None:
    yahoo_fake.chart("^RUT", chart_response(omit_meta=[missing]))
    with pytest.raises(SourceError, match=missing):
        make_source(yahoo_fake.base_url).fetch_latest("RUT", RUT)


def test_null_price_is_a_source_error(yahoo_fake: YahooFake) -> None:
    yahoo_fake.chart("^RUT", chart_response(price=None))
    with pytest.raises(SourceError, match="regularMarketPrice"):
        make_source(yahoo_fake.base_url).fetch_latest("RUT", RUT)


def test_mismatched_bar_arrays_are_a_source_error(yahoo_fake: YahooFake) -> None:
    body = chart_response(bars=[(date(2025, 1, 6), 1.0), (date(2025, 1, 7), 2.0)])
    body["chart"]["result"][0]["indicators"]["quote"][0]["close"].pop()
    yahoo_fake.chart("^RUT", body)
    with pytest.raises(SourceError, match="different lengths"):
        make_source(yahoo_fake.base_url).fetch_daily("RUT", RUT, date(2025, 1, 6), None)


def test_empty_body_is_a_source_error(yahoo_fake: YahooFake) -> None:
    yahoo_fake.chart("^RUT", Reply(""))
    with pytest.raises(SourceError, match="empty response"):
        make_source(yahoo_fake.base_url).fetch_latest("RUT", RUT)


# -- servers that misbehave on the wire: total deadline and size cap ---------------------------


def fetch_failure(server: RawHttpServer, **params: Any) -> tuple[SourceError, float]:
    """Fetch RUT once from ``server``; the SourceError raised and the seconds it took."""
    source = make_source(server.base_url, **{"attempts": 1, **params})
    started = wall.monotonic()
    with pytest.raises(SourceError) as caught:
        source.fetch_latest("RUT", RUT)
    source.close()
    return caught.value, wall.monotonic() - started


def assert_located(error: SourceError) -> None:
    assert error.symbol == "RUT"
    assert error.url is not None and error.url.startswith("http://127.0.0.1:")
    assert "/v8/finance/chart/" in error.url and str(error).startswith("RUT http://127.0.0.1")


def test_a_trickling_server_is_cut_off_at_the_total_deadline() -> None:
    # One byte every 0.1 s never trips a per-read timeout of 0.5 s; 40 bytes would take 4 s.
    with RawHttpServer(trickle(b"x" * 40, every=0.1)) as server:
        error, took = fetch_failure(server, timeout=0.5)
    assert "timed out after 0.5s" in str(error), error
    assert error.retryable
    assert_located(error)
    assert took < 1.5


def test_a_server_trickling_its_headers_is_cut_off_at_the_total_deadline() -> None:
    # http.client reads headers itself; without the head watchdog this takes 4 s and succeeds
    with RawHttpServer(trickle_headers(every=0.1, count=40)) as server:
        error, took = fetch_failure(server, timeout=0.5)
    assert "timed out after 0.5s" in str(error), error
    assert error.retryable
    assert_located(error)
    assert took < 1.5


def test_a_server_stalling_after_the_headers_times_out_within_the_deadline() -> None:
    with RawHttpServer(stall_after_headers(prefix=b'{"chart": ')) as server:
        error, took = fetch_failure(server, timeout=0.5)
    assert "timed out after 0.5s (10 bytes received)" in str(error), error
    assert_located(error)
    assert took < 1.5


def test_a_cycle_is_bounded_by_timeout_times_attempts() -> None:
    with RawHttpServer(trickle(b"x" * 100, every=0.1)) as server:
        error, took = fetch_failure(server, timeout=0.4, attempts=2)
    assert "timed out after 0.4s" in str(error) and "gave up after 2 attempts" in str(error)
    assert took < 2.0


def test_a_gzip_bomb_is_stopped_at_max_bytes_without_inflating_it() -> None:
    bomb = gzip_bomb(32 << 20)  # 32 MiB of zeros, about 32 KB on the wire
    head = http_head(
        content_type="application/json", content_encoding="gzip", content_length=len(bomb)
    )
    with RawHttpServer(send_all(head, bomb)) as server:
        tracemalloc.start()
        try:
            error, _ = fetch_failure(server, max_bytes="1MB")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert "response too large: body exceeds max_bytes 1,000,000" in str(error), error
    assert not error.retryable
    assert_located(error)
    assert peak < 8 << 20, f"peak {peak:,} bytes while reading a capped body"


def test_an_oversized_plain_body_is_refused_by_its_content_length() -> None:
    body = b" " * 3_000_000
    head = http_head(content_type="application/json", content_length=len(body))
    with RawHttpServer(send_all(head, body)) as server:
        error, _ = fetch_failure(server, max_bytes="1MB")
    assert "Content-Length 3,000,000 exceeds max_bytes 1,000,000" in str(error), error
    assert_located(error)


def test_an_oversized_chunked_body_is_abandoned_early() -> None:
    with RawHttpServer(endless_chunks(total=40 << 20)) as server:
        error, _ = fetch_failure(server, max_bytes="1MB")
        sent = server.sent
    assert "body exceeds max_bytes 1,000,000" in str(error), error
    assert_located(error)
    assert sent < 10 << 20  # the client hung up long before the 40 MiB were sent


def test_a_redirect_body_is_never_read() -> None:
    # requests reads a redirect's whole body to release the connection: a bomb there would
    # inflate past any cap. The body is closed unread.
    bomb = gzip_bomb(32 << 20)
    redirect = http_head(
        "302 Found", location="/final", content_encoding="gzip", content_length=len(bomb)
    )
    body = json.dumps(chart_response(price=2250.5)).encode()
    final = http_head(content_type="application/json", content_length=len(body)) + body
    with RawHttpServer(redirect_once(redirect + bomb, final)) as server:
        source = make_source(server.base_url, max_bytes="1MB", attempts=1)
        tracemalloc.start()
        try:
            observation = source.fetch_latest("RUT", RUT)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        source.close()
        assert server.paths[-1] == "/final"
    assert observation.value == 2250.5
    assert peak < 8 << 20, f"peak {peak:,} bytes following a redirect"


def test_endless_redirects_are_a_source_error() -> None:
    loop = http_head("302 Found", location="/again", content_length=0)
    with RawHttpServer(redirect_once(loop, loop)) as server:
        error, _ = fetch_failure(server)
        assert len(server.paths) == 6
    assert "Exceeded 5 redirects" in str(error)
    assert_located(error)


def test_max_bytes_default_and_units() -> None:
    assert HttpSourceParams.model_validate({"type": "x"}).max_bytes == 8_000_000
    assert HttpSourceParams.model_validate({"type": "x", "max_bytes": "2MiB"}).max_bytes == 2**21
    with pytest.raises(ValueError, match="max_bytes"):
        HttpSourceParams.model_validate({"type": "x", "max_bytes": "lots"})


def test_a_normal_gzip_answer_still_works() -> None:
    # the real servers compress; the streamed reader must decode exactly like .content did
    body = gzip.compress(json.dumps(chart_response(price=2250.5)).encode())
    head = http_head(
        content_type="application/json", content_encoding="gzip", content_length=len(body)
    )
    with RawHttpServer(send_all(head, body)) as server:
        source = make_source(server.base_url)
        assert source.fetch_latest("RUT", RUT).value == 2250.5
        assert source.fetch_latest("RUT", RUT).value == 2250.5  # a reused connection too
        source.close()


# -- helper pieces -----------------------------------------------------------------------------


def test_backoff_is_exponential_capped_and_jittered() -> None:
    params = HttpSourceParams.model_validate({"type": "x", "backoff": "1s", "max_backoff": "5s"})
    low = HttpClient("x", params, FakeClock(NOW), jitter=lambda: 0.0)
    high = HttpClient("x", params, FakeClock(NOW), jitter=lambda: 1.0)
    assert [low.backoff_delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 2.5]
    assert [high.backoff_delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after("Fri, 10 Jan 2025 21:05:00 GMT", NOW) == 300.0
    assert parse_retry_after("garbage", NOW) is None
    assert parse_retry_after(None, NOW) is None
