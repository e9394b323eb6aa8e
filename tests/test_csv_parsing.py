"""Edge cases of the daily CSV parsers (``parse_ohlc_csv`` for Stooq/Yahoo layouts and
``parse_fred_csv``): line endings, BOMs, blank lines, whitespace, short/long rows, quoting,
number and date syntax, duplicates, and which row an error names.

Written against the pandas-based parsers so the standard-library ones keep their behaviour."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.config import SanityConfig
from bot.errors import SourceError
from bot.model import DailySeries
from bot.sources.csvfile import parse_ohlc_csv
from bot.sources.fred import parse_fred_csv

H = "Date,Open,High,Low,Close\n"
D10, D13 = date(2025, 1, 10), date(2025, 1, 13)


def ohlc(text: str) -> DailySeries:
    return parse_ohlc_csv(text, source="Stooq", symbol="RUT", url="http://x/q/d/l/")


def ohlc_error(text: str) -> str:
    with pytest.raises(SourceError) as caught:
        ohlc(text)
    assert (caught.value.symbol, caught.value.url) == ("RUT", "http://x/q/d/l/")
    return str(caught.value)


def fred(text: str, **kwargs: object) -> DailySeries:
    return parse_fred_csv(text, "DFF", symbol="FED", url="http://x/fredgraph.csv", **kwargs)  # type: ignore[arg-type]


def fred_error(text: str) -> str:
    with pytest.raises(SourceError) as caught:
        fred(text)
    assert (caught.value.symbol, caught.value.url) == ("FED", "http://x/fredgraph.csv")
    return str(caught.value)


# -- OHLC (Stooq / Yahoo layouts) ----------------------------------------------------------------

TWO_ROWS = H + "2025-01-10,1,1,1,2\n2025-01-13,1,1,1,3\n"


@pytest.mark.parametrize(
    "text",
    [
        TWO_ROWS,
        "\ufeff" + TWO_ROWS,
        TWO_ROWS.replace("\n", "\r\n"),
        TWO_ROWS.replace("\n", "\r"),
        TWO_ROWS.rstrip("\n"),
        "\n  \n" + TWO_ROWS,  # blank lines before the header
        H + "\n2025-01-10,1,1,1,2\n \t \n\r\n2025-01-13,1,1,1,3\n\n",
        " Date , Open,High,Low, Close \n 2025-01-10 ,1,1,1, 2 \n2025-01-13,1,1,1,3\t\n",
        '"Date","Open","High","Low","Close"\n"2025-01-10","1","1","1","2"\n2025-01-13,1,1,1,"3"\n',
        "Close,Date\n2,2025-01-10\n3,2025-01-13\n",  # columns found by name
        "Date,Close,Volume,Extra\n2025-01-10,2,0,x\n2025-01-13,3,0,y\n",
        "Date,Close,Close\n2025-01-10,2,9\n2025-01-13,3,9\n",  # the first Close
        H + "2025-01-10,1,1,1,2\n2025-01-11\n2025-01-12,1\n,,,,\n2025-01-13,1,1,1,3\n",  # short
        H + "2025-01-10,1,1,1,2\n,1,1,1,N/D\n2025-01-13,1,1,1,3\n",  # no date needed without close
        H + "2025-1-10,1,1,1,2\n2025-01-13,1,1,1,3\n",  # month/day need no zero padding
        H + "2025-01-13,1,1,1,3\n2025-01-10,1,1,1,1\n2025-01-10,1,1,1,2\n2025-01-13,1,1,1,N/D\n",
    ],
    ids=[
        "plain",
        "bom",
        "crlf",
        "cr",
        "no-final-newline",
        "leading-blank-lines",
        "blank-lines",
        "whitespace",
        "quoted",
        "column-order",
        "extra-columns",
        "duplicate-close-column",
        "short-rows",
        "no-close-no-date",
        "unpadded-date",
        "unsorted-duplicates-last-valid-wins",
    ],
)
def test_ohlc_layouts_read_the_same_two_rows(text: str) -> None:
    series = ohlc(text)
    assert (series.dates, series.values, series.columns) == ([D10, D13], [2.0, 3.0], {})
    assert all(type(d) is date for d in series.dates)
    assert all(type(v) is float for v in series.values)


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("+1.5", 1.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("1E+03", 1000.0),
        ("00012", 12.0),
        ("inf", float("inf")),
        ("-Infinity", float("-inf")),
        ('"2""5"', None),
        ("2x", None),
        ("1_000", None),
        ("0x10", None),
        ("1 5", None),
        ("NAN", None),
        ("-nan", None),
        ("\u0661\u0662", None),  # Arabic-Indic digits
        ('"2,5"', None),
    ],
)
def test_ohlc_close_syntax(cell: str, value: float | None) -> None:
    text = H + f"2025-01-10,1,1,1,{cell}\n"
    if value is None:
        assert "row 2: cannot read '2025-01-10'," in ohlc_error(text)
    else:
        assert ohlc(text).values == [value]


@pytest.mark.parametrize(
    ("cell", "day"),
    [
        ("2025-01-10", D10),
        ("2025-1-1", date(2025, 1, 1)),
        ("0001-01-01", date(1, 1, 1)),
        ("9999-12-31", date(9999, 12, 31)),
        ("20250110", None),
        ("2025/01/10", None),
        ("2025-01-10 00:00:00", None),
        ("2025-01-10T00:00", None),
        ("2025-02-30", None),
        ("25-01-10", None),
        ("10000-01-01", None),
    ],
)
def test_date_syntax(cell: str, day: date | None) -> None:
    text = H + f"{cell},1,1,1,2\n"
    fred_text = f"DATE,DFF\n{cell},1\n"
    if day is None:
        assert f"row 2: cannot read {cell!r},'2' as a date and a close" in ohlc_error(text)
        assert f"row 2: bad date {cell!r}" in fred_error(fred_text)
    else:
        assert ohlc(text).dates == [day]
        assert fred(fred_text).dates == [day]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # blank and whitespace-only lines are not rows; other lines are, even when skipped
        (H + "\n2025-01-10,1,1,1,2\n\n  \n2025-01-13,1,1,1,x\n", "row 3: cannot read"),
        (H + "2025-01-10,1,1,1,N/D\n\x0b\n,,,,\n2025-01-13,1,1,1,x\n", "row 5: cannot read"),
        (H + '2025-01-10,"1\n1",1,1,2\n2025-01-13,1,1,1,x\n', "row 3: cannot read"),
        (H + ",1,1,1,3\n", "row 2: cannot read '','3' as a date and a close"),
        ("Close,Date\n2,2025-01-10\n3\n", "row 3: cannot read '','3' as a date and a close"),
        (H + "2025-01-10,1,1,1,x\n2025-01-13,1,1,1,N/D\n", "row 2: cannot read"),
        (H + "2025-01-10,1,1,1,N/D\n2025-01-13,1,1,1,nan\n", "no usable rows"),
        (H, "no usable rows"),
        (H + "2025-01-10,1,1,1,2\n2025-01-13,1,1,1,3,4\n", "unreadable Stooq CSV"),
        (H + '2025-01-10,1,1,1,"2\n', "unreadable Stooq CSV"),
        ("", "unreadable Stooq CSV"),
        (" \n\n", "unreadable Stooq CSV"),
        ("date,close\n2025-01-10,2\n", "Stooq CSV lacks Date/Close columns"),
        ("Date\tClose\n2025-01-10\t2\n", "Stooq CSV lacks Date/Close columns"),
        ("<html><body>busy</body></html>", "Stooq CSV lacks Date/Close columns"),
    ],
)
def test_ohlc_errors_name_the_row(text: str, message: str) -> None:
    assert message in ohlc_error(text)


# -- FRED --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "DATE,DFF\n2025-01-10,2\n2025-01-13,3\n",
        "\ufeffobservation_date,DFF\n2025-01-10,2\n2025-01-13,3\n",
        "\ufeff\ufeffDATE,DFF\n2025-01-10,2\n2025-01-13,3\n",
        "DATE,DFF\r\n2025-01-10,2\r\n2025-01-13,3\r\n",
        "DATE,DFF\n2025-01-10,2\n2025-01-13,3",
        ' date , dff \n 2025-01-10 ,   2\n2025-01-13,  "3"\n',
        "Observation_Date,DFF\n2025-01-10,2\n\n  \n2025-01-13,3\n",
        'DATE,DFF\n"2025-01-10","2"\n2025-01-13,3\n',
        "DATE,DFF\n2025-01-10,2\n2025-01-11\n2025-01-12,.\n2025-01-13, \n2025-01-13,3\n",
        "DATE,DFF\n2025-01-13,3\n2025-01-10,1\n2025-01-10,2\n2025-01-13,.\n",
    ],
    ids=[
        "plain",
        "bom",
        "two-boms",
        "crlf",
        "no-final-newline",
        "whitespace-and-case",
        "blank-lines",
        "quoted",
        "short-and-missing",
        "unsorted-duplicates-last-valid-wins",
    ],
)
def test_fred_layouts_read_the_same_two_rows(text: str) -> None:
    series = fred(text)
    assert (series.dates, series.values, series.columns) == ([D10, D13], [2.0, 3.0], {})
    assert all(type(d) is date for d in series.dates)
    assert all(type(v) is float for v in series.values)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("DATE,DFF\n2025-01-10,x\n\n2025-01-13,1\n2025/01/14,.\n", "row 4: bad date '2025/01/14'"),
        ("DATE,DFF\nxx,.\n", "row 2: bad date 'xx'"),
        ("DATE,DFF\n,.\n", "row 2: bad date ''"),
        ("DATE,DFF\n2025-01-10,1\n  \n2025-01-13,nan\n", "row 3: bad value 'nan' for DFF"),
        ("DATE,DFF\n2025-01-10,N/D\n", "row 2: bad value 'N/D' for DFF"),
        ("DATE,DFF\n2025-01-10,1\n2025-01-13,1,2\n", "unreadable FRED CSV"),
        ('DATE,DFF\n2025-01-10,"1\n', "unreadable FRED CSV"),
        ("\nDATE,DFF\n2025-01-10,1\n", "unexpected FRED CSV header ''"),
        ("DATE,DFF\r2025-01-10,1\r", "unexpected FRED CSV header"),
        ('"DATE","DFF"\n2025-01-10,1\n', "unexpected FRED CSV header"),
        ("DATE\tDFF\n2025-01-10\t1\n", "unexpected FRED CSV header"),
        ("DATE,DFF,\n2025-01-10,1,\n", "unexpected FRED CSV header"),
        ("  \n\n", "empty FRED response"),
        ("\n <!DOCTYPE html><html></html>", "FRED sent an HTML page instead of CSV"),
    ],
)
def test_fred_errors_name_the_row(text: str, message: str) -> None:
    assert message in fred_error(text)


def test_fred_header_only_is_an_empty_series() -> None:
    assert len(fred("DATE,DFF\n")) == 0
    assert len(fred("observation_date,DFF")) == 0


def test_fred_implausible_and_future_rows_are_logged_in_file_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = (
        "DATE,DFF\n2025-01-13,30\n2025-01-10,2\n2099-01-01,99\n2025-01-11,-1.5\n"
        "2025-01-12,inf\n2025-01-13,3\n2025-01-14,4\n"
    )
    now = datetime(2025, 1, 13, 15, 0, tzinfo=UTC)
    with caplog.at_level("WARNING", logger="bot.sources.fred"):
        series = fred(text, now=now, sanity=SanityConfig())
    assert (series.dates, series.values) == ([D10, D13], [2.0, 3.0])
    assert [r.getMessage() for r in caplog.records] == [
        "FED: rejected FRED row DFF 2025-01-13 = 30: outside the plausible band -1..25%",
        "FED: rejected FRED row DFF 2099-01-01 = 99: dated in the future",
        "FED: rejected FRED row DFF 2025-01-11 = -1.5: outside the plausible band -1..25%",
        "FED: rejected FRED row DFF 2025-01-12 = inf: outside the plausible band -1..25%",
        "FED: rejected FRED row DFF 2025-01-14 = 4: dated in the future",
    ]


def test_fred_rate_band_and_no_clock(caplog: pytest.LogCaptureFixture) -> None:
    text = "DATE,DFF\n2025-01-10,2\n2099-01-01,30\n"
    with caplog.at_level("WARNING", logger="bot.sources.fred"):
        series = parse_fred_csv(text, "DFF", sanity=SanityConfig(max_rate=50.0))
    assert series.values == [2.0, 30.0]  # without ``now`` no row is "in the future"
    assert caplog.records == []
    with caplog.at_level("WARNING", logger="bot.sources.fred"):
        assert parse_fred_csv(text, "DFF").values == [2.0]
    assert caplog.records[0].getMessage() == (
        "rejected FRED row DFF 2099-01-01 = 30: outside the plausible band -1..25%"
    )
