"""FRED source and parser, against a fake fredgraph.csv endpoint on 127.0.0.1."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from bot.clock import FakeClock
from bot.config import SanityConfig, SymbolConfig
from bot.errors import SourceError
from bot.sources.fred import FredParams, FredSource, parse_fred_csv
from tests.fakes.fred import FRED_PATH, FredFake, fred_csv
from tests.fakes.yahoo import Reply

NOW = datetime(2024, 12, 20, 15, 0, tzinfo=UTC)
RANGE = SymbolConfig(
    source=["fred"], series={"lower": "DFEDTARL", "upper": "DFEDTARU"}, name="Fed target range"
)
EFFR = SymbolConfig(source=["fred"], series="DFF")


@pytest.fixture
def fred_fake() -> Iterator[FredFake]:
    with FredFake() as fake:
        yield fake


def make_source(base_url: str) -> FredSource:
    params = FredParams.model_validate(
        {"type": "fred", "base_url": base_url, "timeout": 2, "attempts": 1}
    )
    return FredSource("fred", params, FakeClock(NOW), sleep=lambda _: None)


# -- parser ------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["observation_date", "DATE"])
@pytest.mark.parametrize("missing", [".", ""])
def test_both_headers_and_both_missing_markers(header: str, missing: str) -> None:
    text = fred_csv(
        "DFEDTARU",
        [("2024-12-17", 4.75), ("2024-12-18", None), ("2024-12-19", 4.5)],
        header=header,  # type: ignore[arg-type]
        missing=missing,  # type: ignore[arg-type]
    )
    series = parse_fred_csv(text, "DFEDTARU")
    assert series.dates == [date(2024, 12, 17), date(2024, 12, 19)]
    assert series.values == [4.75, 4.5]


def test_header_naming_another_series_is_an_error() -> None:
    with pytest.raises(SourceError, match="unexpected FRED CSV header") as caught:
        parse_fred_csv(fred_csv("DFF", [("2024-12-17", 4.6)]), "DFEDTARU", symbol="FED")
    assert caught.value.symbol == "FED"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("<!DOCTYPE html><html><title>Error</title></html>", "HTML"),
        ("observation_date,DFEDTARU\n2024-12-17,abc\n", "row 2: bad value 'abc'"),
        ("observation_date,DFEDTARU\n2024-12-17,4.5\n17/12/2024,4.5\n", "row 3: bad date"),
        ("Series not found\n", "unexpected FRED CSV header"),
    ],
)
def test_unreadable_fred_text_is_a_source_error(text: str, message: str) -> None:
    with pytest.raises(SourceError, match=message) as caught:
        parse_fred_csv(text, "DFEDTARU", symbol="FED", url="http://x/graph/fredgraph.csv")
    assert caught.value.url == "http://x/graph/fredgraph.csv"


def test_only_missing_rows_give_an_empty_series() -> None:
    assert len(parse_fred_csv(fred_csv("DFF", [("2024-12-17", None)]), "DFF")) == 0


# -- source ------------------------------------------------------------------------------------


def test_latest_target_range_joins_lower_and_upper(fred_fake: FredFake) -> None:
    fred_fake.series("DFEDTARL", fred_csv("DFEDTARL", [("2024-12-18", 4.5), ("2024-12-19", 4.25)]))
    fred_fake.series(
        "DFEDTARU",
        fred_csv("DFEDTARU", [("2024-12-18", 4.75), ("2024-12-19", 4.5)], header="DATE"),
    )
    observation = make_source(fred_fake.base_url).fetch_latest("FED", RANGE)

    assert observation.kind == "rate"
    assert observation.value == 4.5  # the upper bound
    assert observation.fields == {"lower": 4.25, "upper": 4.5}
    assert observation.session == date(2024, 12, 19)
    assert observation.time == datetime(2024, 12, 19, tzinfo=UTC)  # its date, not "now"
    assert observation.source == "fred"
    (lower,) = fred_fake.series_requests("DFEDTARL")
    assert lower.path == FRED_PATH
    assert lower.query["cosd"] < "2024-12-20"  # a bounded download


def test_latest_uses_the_last_date_both_series_published(fred_fake: FredFake) -> None:
    # FRED publishes with a lag, and not always both series on the same day.
    fred_fake.series("DFEDTARL", fred_csv("DFEDTARL", [("2024-12-18", 4.5), ("2024-12-19", None)]))
    fred_fake.series("DFEDTARU", fred_csv("DFEDTARU", [("2024-12-18", 4.75), ("2024-12-19", 4.5)]))
    observation = make_source(fred_fake.base_url).fetch_latest("FED", RANGE)
    assert observation.session == date(2024, 12, 18)
    assert observation.fields == {"lower": 4.5, "upper": 4.75}


def test_latest_of_a_single_series(fred_fake: FredFake) -> None:
    fred_fake.series("DFF", fred_csv("DFF", [("2024-12-18", 4.58), ("2024-12-19", 4.33)]))
    observation = make_source(fred_fake.base_url).fetch_latest("EFFR", EFFR)
    assert (observation.value, observation.fields, observation.kind) == (4.33, None, "rate")


def test_latest_without_rows_is_an_error(fred_fake: FredFake) -> None:
    fred_fake.series("DFF", fred_csv("DFF", [("2024-12-19", None)]))
    with pytest.raises(SourceError, match="no observation"):
        make_source(fred_fake.base_url).fetch_latest("EFFR", EFFR)


def test_daily_has_upper_as_values_and_both_columns(fred_fake: FredFake) -> None:
    rows_l = [("2024-11-06", 4.75), ("2024-11-07", 4.5), ("2024-12-19", 4.25)]
    rows_u = [("2024-11-06", 5.0), ("2024-11-07", 4.75), ("2024-12-19", 4.5)]
    fred_fake.series("DFEDTARL", fred_csv("DFEDTARL", rows_l))
    fred_fake.series("DFEDTARU", fred_csv("DFEDTARU", rows_u))
    series = make_source(fred_fake.base_url).fetch_daily(
        "FED", RANGE, date(2024, 11, 7), date(2024, 12, 31)
    )
    assert series.dates == [date(2024, 11, 7), date(2024, 12, 19)]
    assert series.values == [4.75, 4.5]
    assert series.columns == {"lower": [4.5, 4.25], "upper": [4.75, 4.5]}
    query = fred_fake.series_requests("DFEDTARU")[0].query
    assert (query["cosd"], query["coed"]) == ("2024-11-07", "2024-12-31")


def test_unknown_series_html_404_is_a_source_error(fred_fake: FredFake) -> None:
    fred_fake.series(
        "NOPE", Reply("<html><title>Error</title></html>", status=404, content_type="text/html")
    )
    spec = SymbolConfig(source=["fred"], series="NOPE")
    with pytest.raises(SourceError) as caught:
        make_source(fred_fake.base_url).fetch_latest("X", spec)
    assert caught.value.status == 404
    assert caught.value.symbol == "X"
    assert caught.value.url is not None and "id=NOPE" in caught.value.url


def test_symbol_without_series_is_a_config_problem() -> None:
    assert FredSource.symbol_problems("FED", SymbolConfig(source=["fred"]))
    assert "series" in FredSource.symbol_problems("FED", SymbolConfig(source=["fred"]))[0]
    assert FredSource.symbol_problems("FED", RANGE) == []
    assert FredSource.symbol_problems("EFFR", EFFR) == []


def test_default_base_url_is_fred() -> None:
    source = FredSource(
        "fred", FredParams.model_validate({"type": "fred"}), FakeClock(NOW), sleep=lambda _: None
    )
    assert source.base_url == "https://fred.stlouisfed.org"


# -- plausibility: garbage rows never become "the latest" nor a "change" -------------------------

LOWER = [("2024-11-07", 4.5), ("2024-12-18", 4.5), ("2024-12-19", 4.25)]
UPPER = [("2024-11-07", 4.75), ("2024-12-18", 4.75), ("2024-12-19", 4.5)]


def serve(fake: FredFake, lower: list[tuple[str, float]], upper: list[tuple[str, float]]) -> None:
    fake.series("DFEDTARL", fred_csv("DFEDTARL", lower))
    fake.series("DFEDTARU", fred_csv("DFEDTARU", upper))


def alerts_over(series: object) -> list[str]:
    """What the shipped ``rate_change`` rule says over these rows, replayed."""
    from bot.backtest import replay
    from bot.model import History
    from tests.test_rule_support import make_config

    config = make_config({"id": "fed", "type": "rate_change", "symbol": "FED"})
    return [a.text for a in replay(config, History({"FED": series}))]  # type: ignore[dict-item]


REAL_CUT = "Fed cuts by 25 bp: 4.50–4.75% → 4.25–4.50% (effective 2024-12-19)"


@pytest.mark.parametrize(
    ("lower", "upper", "logged"),
    [
        # an upper series showing 99
        (LOWER, [*UPPER[:2], ("2024-12-10", 99.0), UPPER[2]], "DFEDTARU 2024-12-10 = 99"),
        # lower above upper
        (
            [*LOWER[:2], ("2024-12-10", 4.75), LOWER[2]],
            [*UPPER[:2], ("2024-12-10", 4.5), UPPER[2]],
            "lower bound 4.75% is above the upper bound 4.5%",
        ),
        # a row dated 2099
        ([*LOWER, ("2099-01-01", 0.0)], [*UPPER, ("2099-01-01", 0.25)], "2099-01-01"),
        # a duplicated date whose last row is garbage: the last *valid* row wins
        (LOWER, [*UPPER, ("2024-12-19", 94.5)], "DFEDTARU 2024-12-19 = 94.5"),
    ],
    ids=["upper-99", "lower-above-upper", "dated-2099", "duplicate-garbage-last"],
)
def test_implausible_rows_are_dropped_with_a_log_line(
    fred_fake: FredFake,
    caplog: pytest.LogCaptureFixture,
    lower: list[tuple[str, float]],
    upper: list[tuple[str, float]],
    logged: str,
) -> None:
    serve(fred_fake, lower, upper)
    source = make_source(fred_fake.base_url)
    with caplog.at_level("WARNING", logger="bot.sources.fred"):
        series = source.fetch_daily("FED", RANGE, date(2024, 11, 1), None)
    assert "rejected FRED row" in caplog.text and logged in caplog.text and "FED" in caplog.text
    assert series.dates == [date(2024, 11, 7), date(2024, 12, 18), date(2024, 12, 19)]
    assert series.columns == {"lower": [4.5, 4.5, 4.25], "upper": [4.75, 4.75, 4.5]}
    assert alerts_over(series) == [REAL_CUT]
    latest = source.fetch_latest("FED", RANGE)
    assert (latest.session, latest.fields) == (date(2024, 12, 19), {"lower": 4.25, "upper": 4.5})


def test_the_rate_band_is_the_configured_one(fred_fake: FredFake) -> None:
    from bot.sources.poller import build_sources
    from tests.test_rule_support import make_config

    serve(fred_fake, LOWER, [*UPPER[:2], ("2024-12-19", 30.0)])
    config = make_config()
    config = dataclasses.replace(
        config,
        sanity=SanityConfig(max_rate=50.0),
        sources={"fred": make_source(fred_fake.base_url).params},
    )
    source = build_sources(config, FakeClock(NOW), sleep=lambda _: None)["fred"]
    assert isinstance(source, FredSource) and source.sanity.max_rate == 50.0
    assert source.fetch_latest("FED", RANGE).fields == {"lower": 4.25, "upper": 30.0}


def test_daily_joins_unsorted_series_on_the_dates_both_published(fred_fake: FredFake) -> None:
    lower = [("2024-12-19", 4.25), ("2024-11-07", 4.5), ("2024-12-18", 4.5), ("2024-12-20", 4.0)]
    upper = [("2024-12-18", 4.75), ("2024-11-06", 5.0), ("2024-12-19", 4.5), ("2024-11-07", 4.75)]
    serve(fred_fake, lower, upper)
    series = make_source(fred_fake.base_url).fetch_daily("FED", RANGE, None, date(2024, 12, 18))
    assert series.dates == [date(2024, 11, 7), date(2024, 12, 18)]
    assert series.values == [4.75, 4.75]
    assert series.columns == {"lower": [4.5, 4.5], "upper": [4.75, 4.75]}
    single = make_source(fred_fake.base_url).fetch_daily("EFFR", EFFR_AS_UPPER, None, None)
    assert single.dates == [
        date(2024, 11, 6),
        date(2024, 11, 7),
        date(2024, 12, 18),
        date(2024, 12, 19),
    ]
    assert single.columns == {}


EFFR_AS_UPPER = SymbolConfig(source=["fred"], series="DFEDTARU")
