"""Charts as pictures: ``bot.charts`` (the one path for /chart, ``chart`` and
``backtest --chart``), the ``chart`` command end to end, and matplotlib staying out of start-up."""

from __future__ import annotations

import io
import itertools
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from bot.charts import (
    ChartError,
    alert_marks,
    chart_for,
    chart_levels,
    period_start,
    record_close,
    render_chart,
    slice_period,
)
from bot.cli import main
from bot.config import parse_config
from bot.model import Alert, DailySeries, History

CONFIG = """\
timezone: America/New_York
sources:
  yahoo: {type: yahoo, base_url: http://127.0.0.1:9}
symbols:
  RUT: {source: yahoo, ticker: "^RUT", name: Russell 2000, calendar: XNYS}
  SPX: {source: yahoo, ticker: "^GSPC", name: S&P 500, calendar: XNYS}
rules:
  - {id: rut-record, type: record_close, symbol: RUT}
  - {id: rut-2500, type: cross, symbol: RUT, level: 2500, on: close}
  - {id: rut-ladder, type: cross, symbol: RUT, levels: [2600, 2400, 2500], direction: both}
  - {id: rut-near-2300, type: near, symbol: RUT, level: 2300, within: 1%}
  - {id: rut-near-record, type: near, symbol: RUT, of: record, within: 1%}
  - {id: rut-old, type: cross, symbol: RUT, level: 1000, enabled: false}
  - {id: spx-7000, type: cross, symbol: SPX, level: 7000}
  - {id: digest, type: digest, symbols: [RUT, SPX], at: "16:15"}
"""


def config():  # type: ignore[no-untyped-def]
    return parse_config(CONFIG, "test.yaml", {})


def business_days(first: date, count: int) -> list[date]:
    days: list[date] = []
    day = first
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def rut_series(count: int = 400) -> DailySeries:
    """A climb from 2,200 by a point a day, with a 500-point spike (the record) mid-way."""
    days = business_days(date(2024, 6, 3), count)
    values = [2200 + i + (500 if count // 2 - 5 < i < count // 2 + 5 else 0) for i in range(count)]
    return DailySeries(days, values)


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()  # decodes every pixel: a truncated or corrupt file raises here
    return image


def test_render_chart_is_a_phone_sized_png() -> None:
    series = rut_series()
    png = render_chart(
        series,
        symbol_name="Russell 2000",
        record=record_close(series),
        levels=[2500, 2600, 5000],
        alerts=[(series.dates[-10], series.values[-10], "rut-2500")],
        period="1y",
    )
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = decode(png)
    assert image.format == "PNG"
    assert image.size == (1280, 960)  # Telegram's photo size: nothing lost to its resizing
    # Not a blank canvas: the line, the fill and the labels give many colours.
    assert len(image.convert("RGB").getcolors(maxcolors=1_000_000) or []) > 50


def test_alert_markers_and_levels_change_the_picture() -> None:
    series = rut_series()
    plain = render_chart(series, symbol_name="R", record=None, levels=[], alerts=[], period="max")
    marked = render_chart(
        series,
        symbol_name="R",
        record=None,
        levels=[],
        alerts=[(series.dates[100], series.values[100], "x")],
        period="max",
    )
    outside = render_chart(
        series,
        symbol_name="R",
        record=None,
        levels=[],
        alerts=[(date(1999, 1, 4), 1.0, "x")],  # before the window: not drawn, no legend
        period="max",
    )
    assert decode(plain).tobytes() != decode(marked).tobytes()
    assert decode(plain).tobytes() == decode(outside).tobytes()


def test_period_windows_end_at_the_last_date() -> None:
    last = date(2025, 3, 31)
    assert period_start(last, "1m") == date(2025, 3, 1)  # 2025-02-28 clamped, plus one day
    assert period_start(last, "3m") == date(2025, 1, 1)
    assert period_start(last, "6m") == date(2024, 10, 1)
    assert period_start(last, "1y") == date(2024, 4, 1)
    assert period_start(last, "5y") == date(2020, 4, 1)
    assert period_start(last, "max") is None
    series = rut_series()
    window = slice_period(series, "1m")
    assert window.dates[-1] == series.dates[-1]
    assert window.dates[0] > series.dates[-1] - timedelta(days=32)
    assert len(slice_period(series, "max")) == len(series)
    with pytest.raises(ChartError, match=r"use one of 1m\|3m"):
        period_start(last, "2w")
    with pytest.raises(ChartError, match="unknown period"):
        render_chart(series, symbol_name="R", record=None, levels=[], alerts=[], period="2w")


def test_levels_come_from_the_enabled_rules_on_the_symbol() -> None:
    cfg = config()
    # cross level + cross levels + near level; not the disabled rule, not SPX's, no duplicates.
    assert chart_levels(cfg, "RUT") == [2300.0, 2400.0, 2500.0, 2600.0]
    assert chart_levels(cfg, "SPX") == [7000.0]


def alert(rule_id: str, symbol: str, day: date, value: float) -> Alert:
    moment = datetime(day.year, day.month, day.day, 21, 0, tzinfo=UTC)  # 16:00/17:00 New York
    return Alert(f"{rule_id}:{day}", rule_id, "cross", symbol, moment, value, "text")


def test_alert_marks_sit_on_the_close_of_their_day() -> None:
    cfg = config()
    series = rut_series()
    day = series.dates[50]
    marks = alert_marks(
        cfg,
        "RUT",
        series,
        [
            alert("rut-2500", "RUT", day, 2500.0),  # an intraday price: drawn on the close
            alert("digest", "RUT", day, 1.0),  # mentions RUT, is not an event of it
            alert("spx-7000", "SPX", day, 7000.0),
            (date(2025, 1, 2), 2400.0, "ready"),  # ready marks pass through
        ],
    )
    assert marks == [(day, series.values[50], "rut-2500"), (date(2025, 1, 2), 2400.0, "ready")]


def test_chart_for_gathers_record_and_window() -> None:
    cfg = config()
    series = rut_series()
    history = History({"RUT": series})
    png = chart_for(cfg, "RUT", history, [alert("rut-2500", "RUT", series.dates[-3], 2500)])
    assert decode(png).size == (1280, 960)
    # start/end clip the series; the record is the highest close up to `end`.
    png = chart_for(cfg, "RUT", history, period="max", start=date(2024, 9, 2), end=date(2025, 1, 3))
    assert decode(png).size == (1280, 960)
    assert record_close(series) == (series.dates[204], 2904.0)
    assert record_close(series.until(series.dates[150])) == (series.dates[150], 2350.0)
    assert record_close(DailySeries()) is None
    with pytest.raises(ChartError, match="no daily closes for SPX"):
        chart_for(cfg, "SPX", history)
    with pytest.raises(ChartError, match="no daily closes for RUT from 2030-01-01"):
        chart_for(cfg, "RUT", history, start=date(2030, 1, 1))


def test_rate_series_is_drawn_in_steps() -> None:
    days = business_days(date(2024, 12, 2), 30)
    upper = [4.75] * 13 + [4.5] * 17
    series = DailySeries(days, upper, {"lower": [u - 0.25 for u in upper], "upper": upper})
    png = render_chart(series, symbol_name="Fed", record=None, levels=[], alerts=[], period="3m")
    assert decode(png).size == (1280, 960)


# ---------------------------------------------------------------------------------------------
# python -m bot chart / backtest --chart
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    series = rut_series(300)
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    lines += [
        f"{d},{v},{v},{v},{v},{v},1000" for d, v in zip(series.dates, series.values, strict=True)
    ]
    (tmp_path / "rut.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "spx.csv").write_text(lines[0] + "\n2024-06-03,5283.4,1,1,5283.4,5283.4,1\n")
    (tmp_path / "config.yaml").write_text(CONFIG)
    return tmp_path


def chart_cli(workdir: Path, *args: str) -> list[str]:
    return ["chart", "RUT", "--config", str(workdir / "config.yaml"),
            "--data", f"RUT={workdir / 'rut.csv'}", *args]  # fmt: skip


def test_chart_command_writes_the_png(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = workdir / "rut.png"
    code = main(chart_cli(workdir, "--from", "2024-09-02", "--to", "2025-03-31", "--out", str(out)))
    assert code == 0, capsys.readouterr().err
    assert decode(out.read_bytes()).size == (1280, 960)
    code = main(chart_cli(workdir, "--period", "3m", "--out", str(out)))
    assert code == 0, capsys.readouterr().err
    assert decode(out.read_bytes()).format == "PNG"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "{dir}/x.png", "--from", "2025-13-01"], "expected a date such as"),
        (["--from", "2025-01-01"], "required: --out"),
        (["--out", "{dir}/x.png", "--period", "2w"], "invalid choice: '2w'"),
        (["--out", "{dir}/x.png", "--from", "2025-02-01", "--to", "2025-01-01"], "is after"),
        (["--out", "{dir}/x.png", "--from", "2030-01-01"], "no daily closes for RUT"),
        (["--out", "{dir}/x.png", "--data", "NOPE=x.csv"], "unknown id 'NOPE'"),
        (["--out", "{dir}/x.png", "--data", "oops"], "--data expects ID=FILE"),
        (["--out", "{dir}/missing/x.png"], "cannot write"),
    ],
)
def test_chart_bad_arguments_give_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    argv = chart_cli(workdir, *(a.replace("{dir}", str(workdir)) for a in args))
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse: usage line + error, exit 2
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert not (workdir / "x.png").exists()


def test_chart_unknown_symbol(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["chart", "NDX", "--config", str(workdir / "config.yaml"), "--out", "x.png"])
    assert code == 2
    assert "unknown symbol 'NDX'; symbols: RUT, SPX" in capsys.readouterr().err


def backtest_cli(workdir: Path, *args: str) -> list[str]:
    return ["backtest", "--config", str(workdir / "config.yaml"),
            "--data", f"RUT={workdir / 'rut.csv'}", "--data", f"SPX={workdir / 'spx.csv'}",
            *args]  # fmt: skip


def test_backtest_chart_marks_the_alerts(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = workdir / "bt.png"
    code = main(
        backtest_cli(workdir, "--start", "2024-09-02", "--chart", str(out), "--chart-symbol", "RUT")
    )
    assert code == 0, capsys.readouterr().err
    assert "alerts from" in capsys.readouterr().out
    marked = decode(out.read_bytes())
    assert marked.size == (1280, 960)
    # The same chart with no alerts in it (a window before any crossing) differs: the
    # markers and their legend are drawn.
    cfg = parse_config(CONFIG, "test.yaml", {})
    from bot.backtest import load_data_files, replay

    history = load_data_files(cfg, {"RUT": str(workdir / "rut.csv")})
    alerts = [a for a in replay(cfg, history, date(2024, 9, 2)) if a.symbol == "RUT"]
    assert alerts
    bare = decode(chart_for(cfg, "RUT", history, period="max", start=date(2024, 9, 2)))
    assert bare.tobytes() != marked.tobytes()
    again = decode(chart_for(cfg, "RUT", history, alerts, period="max", start=date(2024, 9, 2)))
    assert again.tobytes() == marked.tobytes()


def test_backtest_chart_asks_which_symbol(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(backtest_cli(workdir, "--chart", str(workdir / "bt.png")))
    err = capsys.readouterr().err
    assert code == 2
    assert "pick one with --chart-symbol (RUT, SPX)" in err
    assert not (workdir / "bt.png").exists()
    code = main(backtest_cli(workdir, "--chart-symbol", "RUT"))
    assert code == 2
    assert "--chart-symbol needs --chart" in capsys.readouterr().err


@pytest.mark.slow
def test_start_up_does_not_import_matplotlib(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    (tmp_path / "config.yaml").write_text(CONFIG)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot", "check", "--config", "config.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    assert "bot.cli" in imported  # the trace is there...
    assert not any(name.split(".")[0] == "matplotlib" for name in imported)  # ...without it
    probe = (
        "import sys, bot.cli, bot.charts, bot.chart_picture, bot.commands.chart; "
        "bot.cli.build_parser(); "
        "print(sorted(m for m in sys.modules if m.startswith('matplotlib')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=repo
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_level_labels_do_not_overlap() -> None:
    from bot.chart_picture import _LABEL_HEIGHT, _label_spot

    placed: list[tuple[float, float, float]] = []
    lines = [0.50, 0.52, 0.98]
    spots = [_label_spot(y, placed, lines) for y in lines]
    assert spots == [(0.01, False), (0.01, True), (0.01, False)]  # the top one: no room above
    boxes = sorted((x, b, t) for x, b, t in placed)
    for (x1, _b1, t1), (x2, b2, _t2) in itertools.pairwise(boxes):
        assert x1 != x2 or t1 <= b2
    assert all(t - b == pytest.approx(_LABEL_HEIGHT) for _x, b, t in placed)


@pytest.mark.parametrize(
    "values",
    [[2442.74], [2500.0] * 30, [float("nan"), 2400.0, 2410.0], [2400.0, 2410.0, float("nan")]],
)
def test_degenerate_series_still_draw(values: list[float]) -> None:
    series = DailySeries(business_days(date(2025, 1, 2), len(values)), values)
    png = render_chart(
        series, symbol_name="R", record=record_close(series), levels=[2500], alerts=[], period="1m"
    )
    assert decode(png).size == (1280, 960)


def test_backtest_chart_unwritable(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = workdir / "missing" / "bt.png"
    code = main(backtest_cli(workdir, "--chart", str(target), "--chart-symbol", "RUT"))
    err = capsys.readouterr().err
    assert code == 2
    assert "--chart" in err and "cannot write" in err
    assert "Traceback" not in err
