"""Benchmark: the market-context facts (:mod:`bot.context`) of one symbol on decades of history.

    python bench/bench_context.py            # ^RUT, ^SPX, DFEDTAR* from ../shared/data
    python bench/bench_context.py --repeat 20

For each series, after it is loaded: the cost of :func:`bot.context.symbol_facts` on a series
seen for the first time (cold: numpy arrays, the record table, then the facts), on a series
already asked about (warm: the cached table, as the digest and record alerts ask every day),
and of the whole drought-rank table the digest uses. Best of ``--repeat``; no files: seeded
random walks of 10,000 rows. Figures go in README; there are no timed assertions in the tests.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.context import rate_facts, series_facts, symbol_facts
from bot.model import DailySeries
from tests.test_rule_support import business_days

# ../shared/data next to the repository (a worktree under wt/ looks one level further up)
_HERE = Path(__file__).resolve()
DATA = next(
    (p / "shared" / "data" for p in _HERE.parents[1:4] if (p / "shared" / "data").is_dir()),
    _HERE.parents[2] / "shared" / "data",
)


def best(repeat: int, work: object) -> float:
    """Best wall-clock time of ``work()`` in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times) * 1000.0


def walk(rows: int, seed: int) -> DailySeries:
    rng = random.Random(seed)
    days = business_days(date(1986, 1, 2), rows)
    value, values = 100.0, []
    for _ in days:
        value *= 1.0 + rng.gauss(0.0003, 0.012)
        values.append(value)
    return DailySeries(days, values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    series: dict[str, DailySeries] = {}
    if (DATA / "RUT_daily.csv").exists():
        from bot.sources.csvfile import read_daily_csv

        series["RUT"] = read_daily_csv(DATA / "RUT_daily.csv", symbol="RUT")
        series["SPX"] = read_daily_csv(DATA / "SPX_daily.csv", symbol="SPX")
    else:
        series["walk"] = walk(10_000, 7)
    for name, s in series.items():
        at = s.dates[-1]

        def cold(s: DailySeries = s, at: date = at) -> None:
            fresh = DailySeries(s.dates, s.values)  # nothing cached yet
            symbol_facts(fresh, at)

        def warm(s: DailySeries = s, at: date = at) -> None:
            symbol_facts(s, at)

        def ranks(s: DailySeries = s) -> None:
            facts = series_facts(s)
            facts._ranks = None
            facts.drought_ranks()

        symbol_facts(s, at)
        facts = series_facts(s)
        print(
            f"{name}: {len(s):,} rows {s.dates[0]}..{s.dates[-1]}, {len(facts.record_rows)} "
            f"record closes; facts cold {best(args.repeat, cold):.2f} ms, "
            f"warm {best(args.repeat, warm):.3f} ms; drought-rank table "
            f"{best(args.repeat, ranks):.2f} ms"
        )
    if (DATA / "DFEDTARU.csv").exists():
        from bot.sources.fred import parse_fred_csv

        upper = parse_fred_csv((DATA / "DFEDTARU.csv").read_text(), "DFEDTARU", symbol="FED")
        lower = parse_fred_csv((DATA / "DFEDTARL.csv").read_text(), "DFEDTARL", symbol="FED")
        fed = DailySeries(upper.dates, upper.values, {"upper": upper.values, "lower": lower.values})
        took = best(args.repeat, lambda: rate_facts(fed, fed.dates[-1]))
        print(f"FED: {len(fed):,} rows; rate facts {took:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
