"""Stooq source against a fake ``/q/d/l/`` endpoint on 127.0.0.1, including its non-CSV answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.clock import FakeClock
from bot.config import SymbolConfig
from bot.errors import SourceError
from bot.sources.stooq import StooqParams, StooqSource, parse_stooq_csv
from tests.fakes.stooq import (
    HITS_LIMIT,
    ND_ROWS,
    NO_DATA,
    POW_CHALLENGE_HTML,
    StooqFake,
    stooq_csv,
)
from tests.fakes.yahoo import Reply

NOW = datetime(2025, 1, 10, 18, 0, tzinfo=UTC)
RUT = SymbolConfig(source=["stooq"], ticker="^RUT")
ROWS = [(date(2025, 1, 8), 2230.5), (date(2025, 1, 9), 2240.0), (date(2025, 1, 10), 2250.25)]


@pytest.fixture
def stooq_fake() -> Iterator[StooqFake]:
    with StooqFake() as fake:
        yield fake


def make_source(base_url: str, clock: FakeClock | None = None) -> StooqSource:
    params = StooqParams.model_validate(
        {"type": "stooq", "base_url": base_url, "timeout": 2, "attempts": 1}
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


def test_latest_is_the_last_close_stamped_now_when_dated_today(stooq_fake: StooqFake) -> None:
    stooq_fake.daily("^rut", stooq_csv(ROWS))
    observation = make_source(stooq_fake.base_url).fetch_latest("RUT", RUT)
    assert observation.value == 2250.25
    assert observation.kind == "price"
    assert observation.session == date(2025, 1, 10)
    assert observation.time == NOW  # no time of day in the file: "as of the fetch"
    assert observation.source == "stooq"


def test_latest_older_row_is_stamped_at_its_date(stooq_fake: StooqFake) -> None:
    stooq_fake.daily("^rut", stooq_csv(ROWS[:2]))
    observation = make_source(stooq_fake.base_url).fetch_latest("RUT", RUT)
    assert observation.time == datetime(2025, 1, 9, tzinfo=UTC)


def test_csv_without_volume_and_with_some_nd_rows(stooq_fake: StooqFake) -> None:
    rows = [(date(2025, 1, 8), 2230.5), (date(2025, 1, 9), None), (date(2025, 1, 10), 2250.25)]
    stooq_fake.daily("^rut", stooq_csv(rows, volume=False))
    series = make_source(stooq_fake.base_url).fetch_daily("RUT", RUT, None, None)
    assert series.dates == [date(2025, 1, 8), date(2025, 1, 10)]


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(NO_DATA), "no data"),
        (Reply(HITS_LIMIT), "daily hits limit"),
        (Reply(POW_CHALLENGE_HTML, content_type="text/html"), "HTML page"),
        (Reply(POW_CHALLENGE_HTML, content_type="text/plain"), "HTML page"),
        (Reply(ND_ROWS), "no usable rows"),
        (Reply("Symbol,Date,Time\n^RUT,N/D,N/D\n"), "not its CSV"),
        (Reply("Date,Open,High,Low,Close,Volume\n2025-01-10,1,1,1,abc,0\n"), "row 2"),
        (Reply("Date,Open,High,Low,Close,Volume\n"), "no usable rows"),
        (Reply("   \n"), "empty response"),
    ],
)
def test_non_csv_answers_are_clear_source_errors(
    stooq_fake: StooqFake, reply: Reply, message: str
) -> None:
    stooq_fake.daily("^rut", reply)
    with pytest.raises(SourceError, match=message) as caught:
        make_source(stooq_fake.base_url).fetch_latest("RUT", RUT)
    assert caught.value.symbol == "RUT"
    assert caught.value.url is not None and "/q/d/l/" in caught.value.url


def test_hits_limit_cools_the_source_down(stooq_fake: StooqFake) -> None:
    clock = FakeClock(NOW)
    stooq_fake.daily("^rut", [Reply(HITS_LIMIT), stooq_csv(ROWS)])
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
