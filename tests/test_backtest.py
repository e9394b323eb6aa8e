"""``python -m bot backtest``: the replay driver, its output formats, warm-up and errors."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest

from bot import backtest
from bot.backtest import parse_data_args, replay
from bot.cli import build_parser, main
from bot.commands import backtest as backtest_command
from bot.config import load_config
from bot.model import History
from tests.fakes.fred import fred_csv
from tests.test_rule_support import business_days, series

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
  FED: {{source: fred, series: {{lower: DFEDTARL, upper: DFEDTARU}}, name: Fed funds}}
rules:
  - {{id: rut-record, type: record_close, symbol: RUT}}
  - {{id: rut-2500, type: cross, symbol: RUT, level: 2500, on: close}}
  - {{id: fed, type: rate_change, symbol: FED}}
{extra}"""

# ^RUT: the 2021 record, a long way below it, then 2025's records.
RUT_ROWS = [
    ("2021-11-05", 2437.08),
    ("2021-11-08", 2442.74),
    ("2021-11-09", 2412.27),
    ("2024-11-25", 2442.03),
    ("2025-09-17", 2421.08),
    ("2025-09-18", 2467.70),
    ("2025-10-14", 2495.50),
    ("2025-10-15", 2519.75),
]


def yahoo_csv(rows: list[tuple[str, float]]) -> str:
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    lines += [f"{d},{v},{v},{v},{v},{v},1000" for d, v in rows]
    return "\n".join(lines) + "\n"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "rut.csv").write_text(yahoo_csv(RUT_ROWS))
    (tmp_path / "spx.csv").write_text(yahoo_csv([("2025-09-18", 6631.96)]))
    fed_days = ["2024-12-17", "2024-12-18", "2024-12-19", "2024-12-20"]
    (tmp_path / "DFEDTARU.csv").write_text(
        fred_csv("DFEDTARU", list(zip(fed_days, [4.75, 4.75, 4.50, 4.50], strict=True)))
    )
    (tmp_path / "DFEDTARL.csv").write_text(
        fred_csv("DFEDTARL", list(zip(fed_days, [4.50, 4.50, 4.25, 4.25], strict=True)))
    )
    return tmp_path


def write_config(workdir: Path, extra: str = "") -> Path:
    path = workdir / "config.yaml"
    path.write_text(CONFIG.format(state=workdir / "state.sqlite", extra=extra))
    return path


def data_args(workdir: Path) -> list[str]:
    return [
        "--data", f"RUT={workdir / 'rut.csv'}",
        "--data", f"DFEDTARU={workdir / 'DFEDTARU.csv'}",
        "--data", f"DFEDTARL={workdir / 'DFEDTARL.csv'}",
    ]  # fmt: skip


def run_cli(workdir: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["backtest", "--config", str(write_config(workdir)), *data_args(workdir), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_lines_format_and_order(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(workdir, "--json", capsys=capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert all(set(row) == {"time", "rule", "type", "symbol", "value", "message"} for row in rows)
    times = [datetime.fromisoformat(row["time"]) for row in rows]
    assert times == sorted(times)
    assert [(row["rule"], row["type"], row["symbol"]) for row in rows] == [
        ("fed", "rate_change", "FED"),
        ("rut-record", "record_close", "RUT"),  # 2025-09-18
        ("rut-record", "record_close", "RUT"),
        ("rut-record", "record_close", "RUT"),
        ("rut-2500", "cross", "RUT"),
    ]
    assert rows[0]["message"] == "Fed cuts by 25 bp: 4.50–4.75% → 4.25–4.50% (effective 2024-12-19)"
    assert rows[0]["value"] == 4.5
    # The close is stamped at the XNYS close, shown in the configured time zone.
    assert rows[1]["time"] == "2025-09-18T16:00:00-04:00"
    assert rows[1]["value"] == 2467.7
    # The 2024-11-25 close (2,442.03) stayed below 2,442.74: no alert that day.
    assert not any(row["time"].startswith("2024-11-25") for row in rows)


def test_start_warms_up_without_alerting(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(workdir, "--json", "--start", "2025-01-01", capsys=capsys)
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert all(row["time"] >= "2025-01-01" for row in rows)
    first = rows[0]
    assert first["rule"] == "rut-record"
    assert "previous record 2,442.74 of 2021-11-08" in first["message"]
    # 2,495.50 had already armed nothing: rut-2500 fires only on 10-15, its first crossing.
    assert [r["time"][:10] for r in rows if r["rule"] == "rut-2500"] == ["2025-10-15"]


def test_end_stops_the_replay(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(workdir, "--json", "--end", "2025-09-30", capsys=capsys)
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert max(row["time"] for row in rows) < "2025-10"


def test_human_table(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(workdir, "--start", "2025-01-01", capsys=capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["time", "rule", "symbol", "value", "message"]
    assert lines[1].startswith("2025-09-18 16:00 EDT  rut-record  RUT     2,467.70  Russell 2000")
    assert lines[-4].startswith("4 alerts from 3 rules over 2025-01-01 .. last row")
    # then one line per rule: alerts fired, the first and the last
    assert lines[-3:] == [
        "  rut-record  3 alerts, first 2025-09-18 16:00 EDT, last 2025-10-15 16:00 EDT",
        "  rut-2500    1 alert, on 2025-10-15 16:00 EDT",
        "  fed         0 alerts",
    ]


def test_symbols_without_data_come_from_their_source(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SPX has no --data: read through its configured (csv) source; no network involved."""
    extra = "  - {id: rel, type: relative, symbol: RUT, versus: SPX, window: 1d, threshold: 50}\n"
    config = write_config(workdir, extra)
    code = main(["backtest", "--config", str(config), *data_args(workdir)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "fetched SPX from sources" in out


def test_never_touches_the_state_store(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_cli(workdir, "--json", capsys=capsys)
    assert not (workdir / "state.sqlite").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "RUT"], "--data expects ID=FILE (e.g. --data RUT=rut.csv), got 'RUT'"),
        (["--data", "=x.csv"], "--data expects ID=FILE"),
        (["--data", "NOPE=x.csv"], "--data NOPE: unknown id 'NOPE'; symbols: RUT, SPX, FED"),
        (["--data", "RUT=/no/such/file.csv"], "cannot read CSV file"),
        (["--data", "DFEDTARU={dir}/DFEDTARU.csv"], "DFEDTARL missing"),
        (["--data", "RUT={dir}/rut.csv", "--data", "RUT={dir}/rut.csv"], "--data RUT given twice"),
        (["--data", "DFEDTARU={dir}/DFEDTARL.csv"], "unexpected FRED CSV header"),
        (["--start", "2025-02-01", "--end", "2025-01-01"], "is after --end"),
    ],
)
def test_bad_input_exits_2_naming_the_problem(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    config = write_config(workdir)
    args = [a.replace("{dir}", str(workdir)) for a in args]
    code = main(["backtest", "--config", str(config), *args])
    _, err = capsys.readouterr()
    assert code == 2
    assert message in err


def test_unreachable_sources_exit_2_all_reported_at_once(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --data at all: RUT (Yahoo) and FED (FRED) are fetched from their sources, both on a
    closed local port — both failures in one error, exit 2."""
    config = write_config(workdir)
    args = build_parser().parse_args(["backtest", "--config", str(config)])
    pauses: list[float] = []
    code = backtest_command.run(args, sleep=pauses.append)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: FED, RUT have no --data and could not be fetched: ")
    assert err.count("127.0.0.1:9") >= 2


def test_all_missing_data_reported_at_once_without_going_online(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --data given, a symbol without a file is not fetched from the network (the README
    example used to try Yahoo offline): every missing one is named in one error."""
    config = write_config(workdir)
    args = build_parser().parse_args(
        ["backtest", "--config", str(config), "--data", f"RUT={workdir / 'rut.csv'}"]
    )
    pauses: list[float] = []
    code = backtest_command.run(args, sleep=pauses.append)
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "error: FED has no --data (read by fed): give --data FED=FILE, or replay only some "
        "rules with --rule ID\n"
    )
    assert pauses == []  # no retries: nothing was asked of a source


def test_a_rate_file_given_for_an_index_is_refused(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(workdir)
    code = main(["backtest", "--config", str(config), "--data", f"RUT={workdir / 'DFEDTARU.csv'}"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"--data RUT={workdir / 'DFEDTARU.csv'}: a FRED rate series (DFEDTARU)" in err
    assert "RUT is a price symbol" in err


def test_rule_option_replays_only_those_rules(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--rule (repeatable): only those rules run, and only their symbols are needed (no FED
    data given here)."""
    config = write_config(workdir)
    code = main(
        ["backtest", "--config", str(config), "--data", f"RUT={workdir / 'rut.csv'}",
         "--rule", "rut-2500", "--json"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert [json.loads(x)["rule"] for x in out.splitlines()] == ["rut-2500"]
    code = main(["backtest", "--config", str(config), "--rule", "nope"])
    assert code == 2
    assert "--rule nope: unknown rule id; rules: rut-record, rut-2500, fed" in (
        capsys.readouterr().err
    )


def test_without_start_the_first_rows_only_warm_up(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file starts 2021-11-05: its second row (2021-11-08) is above the first, but that is
    no "record high" — all-time rules alert only after a year of data (the 2025 records do)."""
    code, out, _ = run_cli(workdir, capsys=capsys)
    assert code == 0
    assert not [line for line in out.splitlines() if line.startswith("2021-")]
    assert "1 alert of rules still warming up dropped" in out
    config = load_config(write_config(workdir))
    history = backtest.load_data_files(config, parse_data_args(data_args(workdir)[1::2]))
    alerts = replay(config, history)
    assert [a.id for a in alerts if a.rule_id == "rut-record"] == [
        "rut-record:high:2025-09-18",
        "rut-record:high:2025-10-14",
        "rut-record:high:2025-10-15",
    ]


def test_stooq_file(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stooq = "Date,Open,High,Low,Close,Volume\n" + "".join(
        f"{d},{v},{v},{v},{v},0\n" for d, v in RUT_ROWS
    )
    (workdir / "rut.csv").write_text(stooq)
    code, out, _ = run_cli(workdir, "--json", capsys=capsys)
    assert code == 0
    assert len(out.splitlines()) == 5


def test_parse_data_args() -> None:
    assert parse_data_args(["RUT=a.csv", " DFEDTARU = b.csv "]) == {
        "RUT": "a.csv",
        "DFEDTARU": "b.csv",
    }


def test_replay_from_start_equals_the_tail_of_a_full_replay(workdir: Path) -> None:
    """Warm-up is faithful: starting later changes nothing about what happens later."""
    config = load_config(write_config(workdir))
    days = business_days(date(2020, 1, 1), 400)
    values = [2000 + 600 * ((i * 37) % 101) / 100 for i in range(400)]
    history = History({"RUT": series(zip(days, values, strict=True))})
    full = replay(config, history)
    start = days[250]
    tail = replay(config, history, start=start)
    assert [a.id for a in tail] == [a.id for a in full if a.time.date() >= start]
    assert tail


def test_digest_in_a_backtest_from_start(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The digest gets a tick at 16:15 on each trading day from --start, knows the record from
    the warm-up rows, and reads only closes final by then."""
    extra = '  - {id: digest, type: digest, symbols: [RUT], at: "16:15", rate: FED}\n'
    config = write_config(workdir, extra)
    code = main(
        ["backtest", "--config", str(config), *data_args(workdir), "--json", "--start",
         "2025-09-18", "--end", "2025-09-18"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    digest = [row for row in rows if row["rule"] == "digest"]
    assert [row["time"] for row in digest] == ["2025-09-18T16:15:00-04:00"]
    assert digest[0]["message"].splitlines()[1:3] == [
        "Russell 2000 (RUT) 2,467.70 on 2025-09-18: day +1.93%, MTD +1.05%, YTD +1.05%",
        "  record close 2,467.70 (2025-09-18): +0.00%, a record close today",
    ]
    assert digest[0]["message"].endswith("Fed funds (FED) 4.25–4.50% (since 2024-12-19)")


def test_a_fred_row_keeps_its_date_in_the_table_json_and_templates(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The 2024-12-19 cut is a FRED row dated 2024-12-19 (stamped 00:00 UTC): it used to be
    listed as ``2024-12-18 19:00 EST``, the previous evening in New York."""
    code, out, _ = run_cli(workdir, capsys=capsys)
    assert code == 0
    (line,) = [x for x in out.splitlines() if " fed " in x and x[:1].isdigit()]
    assert line.startswith("2024-12-19 ") and "19:00" not in line.split("  ")[0]
    code, out, _ = run_cli(workdir, "--json", capsys=capsys)
    (row,) = [json.loads(x) for x in out.splitlines() if '"rate_change"' in x]
    assert row["time"] == "2024-12-19T00:00:00-05:00"


def test_date_only_alerts_render_time_as_the_date_and_expire_on_their_date() -> None:
    from bot.model import DailySeries
    from tests.test_rule_support import make_config

    days = [date(2024, 12, 18), date(2024, 12, 19)]
    fed = DailySeries(days, [4.75, 4.5], {"lower": [4.5, 4.25], "upper": [4.75, 4.5]})
    rule = {"id": "fed", "type": "rate_change", "symbol": "FED", "template": "{time}: {message}"}
    (alert,) = replay(make_config(rule), History({"FED": fed}))
    assert alert.text.startswith("2024-12-19: Fed cuts by 25 bp")
    assert alert.day == date(2024, 12, 19) and alert.id == "fed:2024-12-19"
    assert type(alert).from_json(alert.to_json()) == alert  # the outbox keeps the date
    # expires: 2024-12-19 still includes the row dated 2024-12-19 (00:00 UTC = the 18th in NY)
    assert len(replay(make_config({**rule, "expires": "2024-12-19"}), History({"FED": fed}))) == 1
    assert replay(make_config({**rule, "expires": "2024-12-18"}), History({"FED": fed})) == []


def test_a_row_on_a_day_without_a_session_keeps_its_date() -> None:
    """RTY=F has a row on 2025-01-09 (markets closed for a national day of mourning): it used
    to be stamped at the next midnight and shown as 2025-01-10 00:00."""
    from zoneinfo import ZoneInfo

    from bot.config import SymbolConfig

    spec = SymbolConfig(source=["yahoo"], ticker="RTY=F", calendar="XNYS")
    (moment,) = backtest._close_times(spec, [date(2025, 1, 9)])
    assert moment.astimezone(ZoneInfo("America/New_York")).date() == date(2025, 1, 9)


def test_a_symbol_whose_source_serves_no_daily_bars_is_not_required(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source type with ``daily_history = False`` (FOMC statements) has nothing to replay:
    its symbols need no --data and are never fetched."""
    from bot.sources.csvfile import CsvSource

    monkeypatch.setattr(CsvSource, "daily_history", False, raising=False)
    extra = "  - {id: rel, type: relative, symbol: RUT, versus: SPX, window: 1d, threshold: 50}\n"
    config = write_config(workdir, extra)
    code = main(["backtest", "--config", str(config), *data_args(workdir)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "fetched SPX" not in out
