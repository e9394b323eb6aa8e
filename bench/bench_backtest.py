"""Benchmark: a backtest of ~40 years of daily bars through 100 rules of every type.

    python bench/bench_backtest.py            # seeded random walks (no files needed)
    python bench/bench_backtest.py --real     # ^RUT/^SPX/DFEDTAR* from ../shared/data if present

Prints rows, rules, alerts and the best of 3 wall-clock times of :func:`bot.backtest.replay`
(building the observations, warm-up and the engine run — everything but reading files), and a
calibration figure (a fixed pure-Python loop) so results compare across machines. The market
calendar's schedule is loaded once before timing (it is cached for the process, as in the live
bot). Figures go in README; there are no timed assertions in the tests.

The mix: 30 ``cross`` (a ladder of round levels, on price and close, up/down, with and without
re-arm), 12 ``record_close`` (all-time and 252-session highs and lows), 15 ``near``, 24
``change`` (1d/5d/30d/mtd/qtd/ytd), 12 ``relative``, 6 ``rate_change`` and one daily ``digest``
(a message every trading day: ~9,700 of the alerts).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.backtest import replay
from bot.config import Config, parse_config
from bot.model import DailySeries, History
from tests.test_rule_support import business_days

ROWS = 10_000
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def fed_range(days: list[date], seed: int) -> DailySeries:
    """A target range that moves by 25/50 bp every few months."""
    rng = random.Random(seed)
    lower, upper, lowers, uppers = 5.0, 5.25, [], []
    for i, _ in enumerate(days):
        if i and i % 120 == 0:
            step = rng.choice((-0.5, -0.25, 0.25, 0.5))
            if lower + step >= 0:
                lower, upper = lower + step, upper + step
        lowers.append(lower)
        uppers.append(upper)
    return DailySeries(days, uppers, {"lower": lowers, "upper": uppers})


def correlated_walks(
    seed: int, days: list[date], rho: float = 0.85
) -> tuple[DailySeries, DailySeries]:
    """Two index-like walks whose daily returns correlate like ^RUT's and ^SPX's (~0.85)."""
    rng = random.Random(seed)
    idx, ref, a, b = [], [], 150.0, 200.0
    for _ in days:
        common, own = rng.gauss(0, 1), rng.gauss(0, 1)
        a *= 1.0 + 0.0003 + 0.013 * common
        b *= 1.0 + 0.0003 + 0.010 * (rho * common + (1 - rho * rho) ** 0.5 * own)
        idx.append(round(a, 2))
        ref.append(round(b, 2))
    return DailySeries(days, idx), DailySeries(days, ref)


def synthetic_history() -> History:
    days = business_days(date(1986, 1, 1), ROWS)
    idx, ref = correlated_walks(1, days)
    return History({"IDX": idx, "REF": ref, "FED": fed_range(days, 3)})


def real_history() -> History | None:
    from bot.sources.csvfile import read_daily_csv
    from bot.sources.fred import parse_fred_csv

    files = [DATA / n for n in ("RUT_daily.csv", "SPX_daily.csv", "DFEDTARU.csv", "DFEDTARL.csv")]
    if not all(f.exists() for f in files):
        return None
    upper = parse_fred_csv(files[2].read_text(), "DFEDTARU")
    lower = parse_fred_csv(files[3].read_text(), "DFEDTARL")
    assert upper.dates == lower.dates
    spx = read_daily_csv(files[1])
    return History(
        {
            "IDX": read_daily_csv(files[0]),
            "REF": spx.until(date(2100, 1, 1)),
            "FED": DailySeries(
                upper.dates, upper.values, {"lower": lower.values, "upper": upper.values}
            ),
        }
    )


def rules_yaml(last: float, digest: bool = True) -> str:
    """100 rules: the mix a trading desk might configure, levels around the walk's range."""
    rules: list[str] = []
    # Crossings: a ladder of round levels per symbol, watched on price and on close, up and
    # down, with and without re-arm (several rules share a level, as on a real desk).
    ladder = [round(last * (0.55 + 0.05 * k), -1) for k in range(9)]
    for i in range(30):
        level = ladder[i % len(ladder)]
        extra = ["", ", rearm: 1%", ", rearm: 20", ", direction: both"][i % 4]
        nxt = ladder[(i + 1) % len(ladder)]
        target = f"level: {level:g}" if i % 3 else f"levels: [{level:g}, {nxt:g}]"
        symbol = "IDX" if i % 5 else "REF"
        on = "close" if i % 2 else "price"
        rules.append(f"{{id: cross-{i}, type: cross, symbol: {symbol}, {target}, on: {on}{extra}}}")
    for i in range(12):
        kind = "low" if i % 4 == 3 else "high"
        window = ["", "", ", window: 252d"][i % 3]
        symbol = "IDX" if i % 2 else "REF"
        rules.append(
            f"{{id: record-{i}, type: record_close, symbol: {symbol}, kind: {kind}{window}}}"
        )
    for i in range(15):
        within = ["0.5%", "1%", "2%", "25"][i % 4]
        target = "of: record" if i % 2 else f"level: {round(last * (0.6 + i / 20)):g}"
        rules.append(f"{{id: near-{i}, type: near, symbol: IDX, {target}, within: {within}}}")
    windows = ["1d", "5d", "30d", "mtd", "qtd", "ytd"]
    for i in range(24):
        threshold = {"1d": "4%", "5d": "8%", "30d": "15%", "mtd": "10%"}.get(windows[i % 6], "20%")
        direction = ["both", "up", "down"][i % 3]
        symbol = "IDX" if i % 4 else "REF"
        rules.append(
            f"{{id: change-{i}, type: change, symbol: {symbol}, window: {windows[i % 6]}, "
            f"threshold: {threshold}, direction: {direction}}}"
        )
    for i in range(12):
        window = ["mtd", "qtd", "ytd", "5d", "30d", "mtd"][i % 6]
        rules.append(
            f"{{id: relative-{i}, type: relative, symbol: IDX, versus: REF, window: {window}, "
            f"threshold: {[5, 8, 12][i % 3]}}}"
        )
    for i in range(6):
        rules.append(f"{{id: fed-{i}, type: rate_change, symbol: FED}}")
    rules.append(
        '{id: digest, type: digest, symbols: [IDX, REF], at: "16:15", rate: FED, '
        f"enabled: {str(digest).lower()}}}"
    )
    assert len(rules) == 100, len(rules)
    return "\n".join(f"  - {rule}" for rule in rules)


def build_config(last: float, digest: bool = True) -> Config:
    text = f"""
timezone: America/New_York
sources:
  yahoo: {{type: yahoo}}
  fred: {{type: fred}}
symbols:
  IDX: {{source: yahoo, name: Index, calendar: XNYS}}
  REF: {{source: yahoo, name: Reference, calendar: XNYS}}
  FED: {{source: fred, series: {{lower: DFEDTARL, upper: DFEDTARU}}, name: Fed funds target range}}
rules:
{rules_yaml(last, digest)}
"""
    return parse_config(text, "<bench>", {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", action="store_true", help="use ../shared/data if present")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    history = real_history() if args.real else None
    label = "real ^RUT/^SPX/DFEDTAR*" if history is not None else "seeded random walks"
    if history is None:
        history = synthetic_history()
    idx = history.get("IDX")
    start = idx.dates[-ROWS] if len(idx) > ROWS else idx.dates[0]
    history = History({s: _from(history.get(s), start) for s in history.symbols()})
    config = build_config(max(idx.values))
    rows = {s: len(history.get(s)) for s in history.symbols()}
    replay(config, history)  # warm: calendar schedule, imports
    best, alerts = timed(config, history, args.repeat)
    best_no_digest, quiet = timed(build_config(max(idx.values), digest=False), history, args.repeat)
    by_type: dict[str, int] = {}
    for alert in alerts:
        by_type[alert.rule_type] = by_type.get(alert.rule_type, 0) + 1
    print(f"data:    {label}")
    print(f"rows:    {rows['IDX']:,} daily bars of IDX ({idx.dates[0]}..{idx.dates[-1]}); ", end="")
    print(", ".join(f"{s} {n:,}" for s, n in rows.items() if s != "IDX"))
    print(f"rules:   {len(config.rules)}")
    print(f"alerts:  {len(alerts):,} (" + ", ".join(f"{k} {v}" for k, v in by_type.items()) + ")")
    print(f"seconds: {best:.3f} (best of {args.repeat})")
    print(
        f"         {best_no_digest:.3f} without the digest (99 rules, {len(quiet):,} alerts): "
        "the digest formats one multi-line message per trading day"
    )
    print(f"machine: a 3,000,000-step pure-Python loop takes {calibrate():.3f} s here")
    return 0


def timed(config: Config, history: History, repeat: int) -> tuple[float, list[Any]]:
    """Best wall-clock time of ``repeat`` replays, and the alerts of the last one."""
    best, alerts = float("inf"), []
    for _ in range(repeat):
        t0 = time.perf_counter()
        alerts = replay(config, history)
        best = min(best, time.perf_counter() - t0)
    return best, alerts


def calibrate() -> float:
    """Best of 3 of a fixed pure-Python loop, to compare figures across machines."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        total = 0
        for i in range(3_000_000):
            total += i
        best = min(best, time.perf_counter() - t0)
    return best


def _from(series: DailySeries, start: date) -> DailySeries:
    i = series.index_before(start) + 1
    return DailySeries(
        series.dates[i:], series.values[i:], {k: v[i:] for k, v in series.columns.items()}
    )


if __name__ == "__main__":
    raise SystemExit(main())
