"""Local CSV files: format detection (Yahoo, Stooq, FRED), bad files, the csv source."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.config import SourceParams, SymbolConfig
from bot.errors import SourceError
from bot.sources.csvfile import CsvSource, detect_csv_format, read_daily_csv

YAHOO = """Date,Open,High,Low,Close,Adj Close,Volume
2021-11-05,2440.0,2450.0,2430.0,2437.86,2437.86,100
2021-11-08,2440.0,2458.86,2435.0,2442.74,2442.74,100
2021-11-09,null,null,null,null,null,null
2021-11-10,2420.0,2430.0,2400.0,2400.5,2399.0,100
"""
STOOQ = """Date,Open,High,Low,Close,Volume
2025-01-08,1,1,1,2230.5,10
2025-01-09,N/D,N/D,N/D,N/D,N/D
2025-01-10,1,1,1,2250.25,10
"""
STOOQ_NO_VOLUME = "Date,Open,High,Low,Close\n2025-01-10,1,1,1,2250.25\n"
FRED_NEW = "observation_date,DFEDTARU\n2024-12-18,4.50\n2024-12-19,.\n"
FRED_OLD = "DATE,DFEDTARU\n2024-12-18,4.50\n2024-12-19,\n"


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (YAHOO, "yahoo"),
        (STOOQ, "stooq"),
        (STOOQ_NO_VOLUME, "stooq"),
        (FRED_NEW, "fred"),
        (FRED_OLD, "fred"),
        ("\ufeffDate,Open,High,Low,Close,Volume\n", "stooq"),
        ("Date,Close\n", None),
        ("when,price\n", None),
    ],
)
def test_format_is_detected_by_header(text: str, kind: str | None) -> None:
    assert detect_csv_format(text.split("\n")[0]) == kind


def test_yahoo_download_uses_close_and_skips_null_rows(tmp_path: Path) -> None:
    series = read_daily_csv(write(tmp_path, YAHOO))
    assert series.dates == [date(2021, 11, 5), date(2021, 11, 8), date(2021, 11, 10)]
    assert series.values == [2437.86, 2442.74, 2400.5]  # Close, not Adj Close


def test_stooq_file_skips_nd_rows(tmp_path: Path) -> None:
    series = read_daily_csv(write(tmp_path, STOOQ))
    assert series.values == [2230.5, 2250.25]
    assert read_daily_csv(write(tmp_path, STOOQ_NO_VOLUME, "b.csv")).values == [2250.25]


@pytest.mark.parametrize("text", [FRED_NEW, FRED_OLD])
def test_fred_files_are_read(tmp_path: Path, text: str) -> None:
    series = read_daily_csv(write(tmp_path, text))
    assert (series.dates, series.values) == ([date(2024, 12, 18)], [4.5])


def test_unsorted_and_duplicated_rows_are_ordered_last_wins(tmp_path: Path) -> None:
    text = "Date,Open,High,Low,Close,Volume\n2025-01-10,1,1,1,3,0\n2025-01-08,1,1,1,1,0\n"
    text += "2025-01-10,1,1,1,4,0\n"
    series = read_daily_csv(write(tmp_path, text))
    assert series.dates == [date(2025, 1, 8), date(2025, 1, 10)]
    assert series.values == [1.0, 4.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("when,price\n2025-01-10,1\n", "unrecognised CSV header"),
        ("Date,Open,High,Low,Close,Volume\n2025-01-10,1,1,1,abc,0\n", "row 2"),
        ("Date,Open,High,Low,Close,Volume\n10/01/2025,1,1,1,2,0\n", "row 2"),
        ("Date,Open,High,Low,Close,Volume\n2025-01-10,1,1,1,N/D,0\n", "no usable rows"),
        ("", "unrecognised CSV header"),
    ],
)
def test_bad_files_are_source_errors_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SourceError, match=message) as caught:
        read_daily_csv(path, symbol="RUT")
    assert caught.value.symbol == "RUT"
    assert caught.value.url == str(path)


def test_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read CSV file"):
        read_daily_csv(tmp_path / "nope.csv", symbol="RUT")


def make_source(base_dir: Path) -> CsvSource:
    clock = FakeClock(datetime(2025, 1, 10, tzinfo=UTC))
    return CsvSource("files", SourceParams(type="csv"), clock, base_dir=base_dir)


def test_source_resolves_relative_files_and_serves_latest_and_daily(tmp_path: Path) -> None:
    write(tmp_path, YAHOO, "rut.csv")
    spec = SymbolConfig(source=["files"], file="rut.csv")
    source = make_source(tmp_path)

    latest = source.fetch_latest("RUT", spec)
    assert (latest.value, latest.session, latest.source) == (2400.5, date(2021, 11, 10), "files")
    assert latest.time == datetime(2021, 11, 10, tzinfo=UTC)
    window = source.fetch_daily("RUT", spec, date(2021, 11, 6), date(2021, 11, 9))
    assert (window.dates, window.values) == ([date(2021, 11, 8)], [2442.74])
    assert len(source.fetch_daily("RUT", spec, None, None)) == 3


def test_source_rereads_a_changed_file(tmp_path: Path) -> None:
    path = write(tmp_path, STOOQ_NO_VOLUME, "rut.csv")
    spec = SymbolConfig(source=["files"], file=str(path))
    source = make_source(tmp_path / "elsewhere")  # absolute paths ignore base_dir
    assert source.fetch_latest("RUT", spec).value == 2250.25
    path.write_text(STOOQ_NO_VOLUME.replace("2250.25", "2260.75"), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert source.fetch_latest("RUT", spec).value == 2260.75


def test_symbol_without_file_is_a_config_problem() -> None:
    assert "file" in CsvSource.symbol_problems("RUT", SymbolConfig(source=["files"]))[0]
    assert CsvSource.symbol_problems("RUT", SymbolConfig(source=["files"], file="a.csv")) == []
