"""`check` and `--help` stay light: they never import pandas or the calendar library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "pandas_market_calendars", "exchange_calendars", "matplotlib")

PROBE = """
import sys
from bot.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # --help exits
    code = exc.code or 0
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY:" + ",".join(heavy))
raise SystemExit(code)
"""


def _heavy_modules(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("HEAVY:")]
    return line.removeprefix("HEAVY:")


def test_check_imports_no_pandas_nor_calendars() -> None:
    assert _heavy_modules("check", "--config", str(ROOT / "config.yaml")) == ""


def test_help_imports_no_pandas_nor_calendars() -> None:
    assert _heavy_modules("--help") == ""


def test_the_live_worker_imports_no_pandas_until_a_source_needs_it() -> None:
    """The worker, scheduler and sources load without pandas (≈40 MB resident); their CSV
    parsing does not import it either (next test)."""
    code = (
        "import sys, bot.app, bot.scheduler, bot.worker, bot.sources\n"
        f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "HEAVY:"


def test_the_fred_and_stooq_parsers_import_no_pandas() -> None:
    """The worker parses FRED and Stooq CSV at start-up and on every poll: with the csv module,
    not pandas (issue 13: +44 MB resident, +0.12 s start-up)."""
    code = (
        "import sys\n"
        "from bot.sources.csvfile import parse_ohlc_csv\n"
        "from bot.sources.fred import parse_fred_csv\n"
        "from bot.sources.stooq import parse_stooq_csv\n"
        "ohlc = 'Date,Open,High,Low,Close,Volume\\n2025-01-10,1,1,1,2250.25,0\\n'\n"
        "assert parse_stooq_csv(ohlc).values == [2250.25]\n"
        "assert parse_ohlc_csv(ohlc, source='Yahoo').values == [2250.25]\n"
        "assert parse_fred_csv('DATE,DFF\\n2025-01-10,4.33\\n', 'DFF').values == [4.33]\n"
        "print('PANDAS:' + str('pandas' in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "PANDAS:False"
