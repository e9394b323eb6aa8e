"""``python -m bot report``: the context per symbol, from --data files in the shipped real-data
formats (Stooq-style daily CSV, FRED fredgraph CSV) or from the history the live bot loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from tests.fakes.fred import fred_csv

CONFIG = """\
timezone: America/New_York
state:
  url: sqlite:///{state}
sources:
  yahoo: {{type: yahoo, base_url: http://127.0.0.1:9}}
  fred: {{type: fred, base_url: http://127.0.0.1:9}}
  local: {{type: csv}}
symbols:
  RUT: {{source: yahoo, ticker: "^RUT", name: Russell 2000, calendar: XNYS}}
  SPX: {{source: local, file: spx.csv, name: S&P 500, calendar: XNYS}}
  FED: {{source: fred, series: {{lower: DFEDTARL, upper: DFEDTARU}}, name: Fed funds target range}}
rules:
  - {{id: rut-record, type: record_close, symbol: RUT}}
"""

# ^RUT around its 2021 record, in the format of shared/data/RUT_daily.csv.
RUT = [
    ("2020-12-31", 1974.86),
    ("2021-11-05", 2437.08),
    ("2021-11-08", 2442.74),
    ("2021-11-09", 2412.27),
    ("2023-12-29", 2027.07),
    ("2024-10-31", 2196.65),
    ("2024-11-25", 2442.03),
    ("2024-11-29", 2434.73),
    ("2024-12-02", 2434.14),
    ("2025-09-18", 2467.70),  # after --at: must never be read
]


def stooq_csv(rows: list[tuple[str, float]]) -> str:
    lines = ["Date,Open,High,Low,Close,Volume"]
    lines += [f"{d},{v},{v},{v},{v},1000" for d, v in rows]
    return "\n".join(lines) + "\n"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "rut.csv").write_text(stooq_csv(RUT))
    (tmp_path / "spx.csv").write_text(stooq_csv([("2024-11-29", 6032.38), ("2024-12-02", 6047.15)]))
    days = ["2024-09-18", "2024-09-19", "2024-11-07", "2024-11-08", "2024-12-02"]
    (tmp_path / "DFEDTARU.csv").write_text(
        fred_csv("DFEDTARU", list(zip(days, [5.50, 5.00, 5.00, 4.75, 4.75], strict=True)))
    )
    (tmp_path / "DFEDTARL.csv").write_text(
        fred_csv("DFEDTARL", list(zip(days, [5.25, 4.75, 4.75, 4.50, 4.50], strict=True)))
    )
    (tmp_path / "config.yaml").write_text(CONFIG.format(state=tmp_path / "state.sqlite"))
    return tmp_path


def args(workdir: Path, *extra: str) -> list[str]:
    return [
        "report",
        "--config",
        str(workdir / "config.yaml"),
        "--data",
        f"RUT={workdir / 'rut.csv'}",
        "--data",
        f"DFEDTARU={workdir / 'DFEDTARU.csv'}",
        "--data",
        f"DFEDTARL={workdir / 'DFEDTARL.csv'}",
        *extra,
    ]


def test_report_json_as_of_a_date(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(args(workdir, "--symbol", "RUT", "--symbol", "FED", "--at", "2024-12-02", "--json"))
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    rut, fed = (json.loads(line) for line in lines)
    assert rut["symbol"] == "RUT" and rut["name"] == "Russell 2000"
    assert rut["date"] == "2024-12-02" and rut["close"] == 2434.14
    record = rut["record"]
    assert (record["value"], record["date"]) == (2442.74, "2021-11-08")
    assert record["days_since"] == 1120 and record["sessions_since"] == 6
    assert record["count_ytd"] == 0 and record["history_start"] == "2020-12-31"
    assert record["drought_rank"] == 1
    assert record["pct_from"] == pytest.approx((2434.14 / 2442.74 - 1) * 100)
    change = rut["change"]
    assert change["ytd"] == pytest.approx((2434.14 / 2027.07 - 1) * 100)
    assert change["prev_month"] == pytest.approx((2434.73 / 2196.65 - 1) * 100)
    assert change["1d"] == pytest.approx((2434.14 / 2434.73 - 1) * 100)
    assert rut["range_52w"] == {
        "high": 2442.03,
        "high_date": "2024-11-25",
        "low": 2027.07,
        "low_date": "2023-12-29",
    }
    assert fed["symbol"] == "FED" and (fed["lower"], fed["upper"]) == (4.5, 4.75)
    assert fed["since"] == "2024-11-08" and fed["last_change"] == {"date": "2024-11-08", "bp": -25}
    assert fed["changes_ytd_bp"] == -75


def test_report_defaults_to_the_latest_close(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args(workdir, "--symbol", "RUT", "--json")) == 0
    rut = json.loads(capsys.readouterr().out)
    assert rut["date"] == "2025-09-18" and rut["record"]["days_since"] == 0
    assert rut["record"]["count_ytd"] == 1


def test_report_text_reads_like_a_market_note(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args(workdir, "--symbol", "RUT", "--symbol", "FED", "--at", "2024-12-02")) == 0
    out = capsys.readouterr().out
    assert "Russell 2000 (RUT) closed at 2,434.14 on 2024-12-02" in out
    assert (
        "0.35% below its record close 2,442.74 of 2021-11-08; 1,120 days (6 sessions) without "
        "a record close, the longest such stretch since 2020"
    ) in out
    assert "Fed funds target range (FED) on 2024-12-02: 4.50–4.75% since 2024-11-08" in out
    assert "last change: cut by 25 bp on 2024-11-08" in out


def test_report_reads_the_history_the_live_bot_loads(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # SPX has a csv source (its file) and no --data: loaded like the live worker loads it.
    code = main(["report", "--config", str(workdir / "config.yaml"), "--symbol", "SPX", "--json"])
    assert code == 0
    spx = json.loads(capsys.readouterr().out)
    assert spx["date"] == "2024-12-02" and spx["record"]["count_ytd"] == 2


def test_report_unknown_symbol_is_an_error(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args(workdir, "--symbol", "RUX")) == 2
    assert "RUX" in capsys.readouterr().err


def test_report_before_the_history_says_no_data(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args(workdir, "--symbol", "RUT", "--at", "2000-01-03")) == 0
    assert "RUT: no data on or before 2000-01-03" in capsys.readouterr().err
