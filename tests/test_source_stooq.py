"""Stooq source against a fake ``/q/d/l/`` endpoint on 127.0.0.1, including its non-CSV answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.clock import FakeClock
from bot.config import SanityConfig, SymbolConfig
from bot.errors import SanityError, SourceError
from bot.sanity import SanityChecker
from bot.sources.stooq import StooqParams, StooqSource, parse_stooq_csv, parse_stooq_quote
from tests.fakes.stooq import (
    HITS_LIMIT,
    ND_ROWS,
    NO_DATA,
    POW_CHALLENGE_HTML,
    QUOTE_HEADER,
    STOOQ_PATH,
    StooqFake,
    stooq_csv,
    stooq_quote_csv,
)
from tests.fakes.yahoo import RawHttpServer, Reply, trickle

NOW = datetime(2025, 1, 10, 18, 0, tzinfo=UTC)
RUT = SymbolConfig(source=["stooq"], ticker="^RUT")
ROWS = [(date(2025, 1, 8), 2230.5), (date(2025, 1, 9), 2240.0), (date(2025, 1, 10), 2250.25)]


@pytest.fixture
def stooq_fake() -> Iterator[StooqFake]:
    with StooqFake() as fake:
        yield fake


def make_source(base_url: str, clock: FakeClock | None = None, **extra: object) -> StooqSource:
    params = StooqParams.model_validate(
        {"type": "stooq", "base_url": base_url, "timeout": 2, "attempts": 1, **extra}
    )
    return StooqSource("stooq", params, clock or FakeClock(NOW), sleep=lambda _: None)


def test_daily_history_and_request_format(stooq_fake: StooqFake) -> None:
    stooq_fake.daily("^rut", stooq_csv(ROWS))
    series = make_source(stooq_fake.base_url).fetch_daily(
        "RUT", RUT, date(2025, 1, 9), date(2025, 1, 10)
    )
    assert series.dates == [date(2025, 1, 9), date(2025, 1, 10)]  # trimmed locally too
    assert series.values == [2240.0, 2250.25]
    (request,) = stooq_fake.daily_requests("^RUT")
    assert request.query == {"s": "^rut", "i": "d", "d1": "20250109", "d2": "20250110"}


def test_latest_is_the_quote_stamped_with_its_own_date_and_time(stooq_fake: StooqFake) -> None:
    # As Stooq writes it: Polish local time; 22:00:09 CET on 10 Jan is 21:00:09 UTC.
    stooq_fake.quote("^rut", f"{QUOTE_HEADER}\n^RUT,2025-01-10,22:00:09,2240,2260,2230,2250.25,0\n")
    observation = make_source(stooq_fake.base_url).fetch_latest("RUT", RUT)
    assert observation.value == 2250.25
    assert observation.kind == "price"
    assert observation.time == datetime(2025, 1, 10, 21, 0, 9, tzinfo=UTC)  # not the fetch time
    assert observation.session == date(2025, 1, 10)
    assert observation.source == "stooq"
    (request,) = stooq_fake.quote_requests("^RUT")
    assert request.query == {"s": "^rut", "f": "sd2t2ohlcv", "h": "", "e": "csv"}
    assert stooq_fake.count(STOOQ_PATH) == 0  # no history download for a quote


def test_session_date_is_the_exchange_date_not_the_polish_one(stooq_fake: StooqFake) -> None:
    # 00:30 in Warsaw on 11 Jan is still 10 Jan in New York (a futures quote in the evening)
    stooq_fake.quote("es.f", stooq_quote_csv(datetime(2025, 1, 10, 23, 30, tzinfo=UTC), 5900.0))
    spec = SymbolConfig(source=["stooq"], ticker="ES.F", calendar="XNYS")
    observation = make_source(stooq_fake.base_url).fetch_latest("ES", spec)
    assert observation.session == date(2025, 1, 10)


def test_quote_zone_is_configurable(stooq_fake: StooqFake) -> None:
    stooq_fake.quote("^rut", f"{QUOTE_HEADER}\n^RUT,2025-01-10,16:00:00,1,1,1,2250.25,0\n")
    params = StooqParams.model_validate(
        {"type": "stooq", "base_url": stooq_fake.base_url, "quote_zone": "America/New_York"}
    )
    observation = StooqSource("stooq", params, FakeClock(NOW)).fetch_latest("RUT", RUT)
    assert observation.time == datetime(2025, 1, 10, 21, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="unknown time zone"):
        StooqParams.model_validate({"type": "stooq", "quote_zone": "Mars/Olympus"})


def test_a_frozen_stooq_feed_is_rejected_as_stale(stooq_fake: StooqFake) -> None:
    # Stooq keeps answering, but with the same quote: its time must stop advancing so the
    # sanity checker's stale check can fire (stamped with the fetch time, it never did).
    clock = FakeClock(datetime(2025, 1, 10, 15, 0, tzinfo=UTC))
    frozen = stooq_quote_csv(datetime(2025, 1, 10, 14, 55, tzinfo=UTC), 2250.25)
    stooq_fake.quote("^rut", frozen)
    source = make_source(stooq_fake.base_url, clock)
    checker = SanityChecker(SanityConfig(stale_after=timedelta(minutes=15)), clock)
    for _ in range(16):  # one poll a minute for 16 minutes, market open
        checker.check(source.fetch_latest("RUT", RUT), market_open=True)
        clock.advance(timedelta(minutes=1))
    with pytest.raises(SanityError, match="stale quote"):
        checker.check(source.fetch_latest("RUT", RUT), market_open=True)


def test_a_live_stooq_feed_is_not_stale(stooq_fake: StooqFake) -> None:
    clock = FakeClock(datetime(2025, 1, 10, 15, 0, tzinfo=UTC))
    source = make_source(stooq_fake.base_url, clock)
    checker = SanityChecker(SanityConfig(stale_after=timedelta(minutes=15)), clock)
    for minute in range(30):
        stamp = clock.now() - timedelta(minutes=5)  # delayed, but moving
        stooq_fake.quote("^rut", stooq_quote_csv(stamp, 2250.0 + minute))
        checker.check(source.fetch_latest("RUT", RUT), market_open=True)
        clock.advance(timedelta(minutes=1))


def test_csv_without_volume_and_with_some_nd_rows(stooq_fake: StooqFake) -> None:
    rows = [(date(2025, 1, 8), 2230.5), (date(2025, 1, 9), None), (date(2025, 1, 10), 2250.25)]
    stooq_fake.daily("^rut", stooq_csv(rows, volume=False))
    series = make_source(stooq_fake.base_url).fetch_daily("RUT", RUT, None, None)
    assert series.dates == [date(2025, 1, 8), date(2025, 1, 10)]


COMMON_ANSWERS = [
    (Reply(NO_DATA), "no data"),
    (Reply(HITS_LIMIT), "daily hits limit"),
    (Reply(POW_CHALLENGE_HTML, content_type="text/html"), "HTML page"),
    (Reply(POW_CHALLENGE_HTML, content_type="text/plain"), "HTML page"),
    (Reply("   \n"), "empty response"),
]


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        *COMMON_ANSWERS,
        (Reply(ND_ROWS), "no usable rows"),
        (Reply("Symbol,Date,Time\n^RUT,N/D,N/D\n"), "not its CSV"),
        (Reply("Date,Open,High,Low,Close,Volume\n2025-01-10,1,1,1,abc,0\n"), "row 2"),
        (Reply("Date,Open,High,Low,Close,Volume\n"), "no usable rows"),
    ],
)
def test_non_csv_daily_answers_are_clear_source_errors(
    stooq_fake: StooqFake, reply: Reply, message: str
) -> None:
    stooq_fake.daily("^rut", reply)
    with pytest.raises(SourceError, match=message) as caught:
        make_source(stooq_fake.base_url).fetch_daily("RUT", RUT, date(2025, 1, 1), None)
    assert caught.value.symbol == "RUT"
    assert caught.value.url is not None and "/q/d/l/" in caught.value.url


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        *COMMON_ANSWERS,
        (Reply(stooq_quote_csv(None, None)), r"no quote for this ticker \(N/D\)"),
        (Reply(stooq_csv(ROWS)), "not its quote CSV"),
        (Reply(QUOTE_HEADER + "\n"), "has no row"),
        (Reply(f"{QUOTE_HEADER}\n^RUT,2025-01-10,25:61:00,1,1,1,2,0\n"), "unreadable"),
        (Reply(f"{QUOTE_HEADER}\n^RUT,2025-01-10,22:00:00,1,1,1,abc,0\n"), "unreadable"),
    ],
)
def test_non_csv_quote_answers_are_clear_source_errors(
    stooq_fake: StooqFake, reply: Reply, message: str
) -> None:
    stooq_fake.quote("^rut", reply)
    with pytest.raises(SourceError, match=message) as caught:
        make_source(stooq_fake.base_url).fetch_latest("RUT", RUT)
    assert caught.value.symbol == "RUT"
    assert caught.value.url is not None and "/q/l/" in caught.value.url


def test_hits_limit_cools_the_source_down(stooq_fake: StooqFake) -> None:
    clock = FakeClock(NOW)
    stooq_fake.quote("^rut", [Reply(HITS_LIMIT), stooq_quote_csv(NOW, 2250.25)])
    source = make_source(stooq_fake.base_url, clock)
    with pytest.raises(SourceError, match="daily hits limit"):
        source.fetch_latest("RUT", RUT)
    with pytest.raises(SourceError, match="cooling down"):
        source.fetch_latest("RUT", RUT)
    assert stooq_fake.count() == 1
    clock.advance(timedelta(hours=1, seconds=1))
    assert source.fetch_latest("RUT", RUT).value == 2250.25
    assert stooq_fake.count() == 2


def test_parser_never_returns_a_price_from_garbage() -> None:
    for body in (NO_DATA, HITS_LIMIT, POW_CHALLENGE_HTML, ND_ROWS, "N/D"):
        with pytest.raises(SourceError):
            parse_stooq_csv(body, symbol="RUT")
        with pytest.raises(SourceError):
            parse_stooq_quote(body, ZoneInfo("Europe/Warsaw"), symbol="RUT")


def test_hits_limit_error_says_until_when(stooq_fake: StooqFake) -> None:
    stooq_fake.daily("^rut", Reply(HITS_LIMIT))
    with pytest.raises(SourceError, match=r"cooling down until 2025-01-10T19:00:00\+00:00"):
        make_source(stooq_fake.base_url).fetch_daily("RUT", RUT, date(2025, 1, 1), None)


def test_a_trickling_stooq_is_cut_off_at_the_deadline() -> None:
    # the deadline is the shared HttpClient's: every HTTP source gets it
    with RawHttpServer(trickle(b"Date,Open,High,Low,Close\n" * 4, every=0.1)) as server:
        source = make_source(server.base_url, timeout=0.5)
        with pytest.raises(SourceError, match=r"timed out after 0\.5s") as caught:
            source.fetch_daily("RUT", RUT, date(2025, 1, 1), None)
        source.close()
    assert caught.value.symbol == "RUT" and caught.value.url is not None
    assert "/q/d/l/" in caught.value.url
