"""Cost of one live cycle's evaluation: the engine alone and inside the store transaction.

Builds N rules over M symbols (mixed: cross / near-free cross ladders / change; or all cross),
feeds one fresh quote per symbol per cycle (a quiet market: nothing crosses) and prints, per
configuration, the CPU time of ``Engine.evaluate`` and of ``Store.transact`` (SQLite file and,
with TEST_DATABASE_URL, PostgreSQL), and what a quiet cycle writes: write transactions and rows.
CPU time (``time.process_time``) is measured, not wall time: the machine is shared.

    python bench/bench_engine.py [--cycles 30] [--scaling] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.clock import FakeClock
from bot.config import Config, parse_config
from bot.engine import Engine
from bot.model import History, Observation
from bot.store.base import Outcome, Snapshot, Store

START = datetime(2026, 1, 5, 15, tzinfo=UTC)


def make_config(rules: int, symbols: int, mix: str) -> Config:
    """``rules`` rules spread round-robin over ``symbols`` symbols priced around 100."""
    lines = ["symbols:"]
    lines += [f"  S{i}: {{source: yahoo, calendar: always}}" for i in range(symbols)]
    lines += ["sources: {yahoo: {type: yahoo}}", "rules:"]
    for i in range(rules):
        sym = f"S{i % symbols}"
        kind = "cross" if mix == "cross" else ("cross", "change", "cross")[i % 3]
        if kind == "cross":
            level = 150 + i % 40
            lines.append(f"  - {{id: r{i}, type: cross, symbol: {sym}, level: {level}}}")
        else:
            lines.append(
                f"  - {{id: r{i}, type: change, symbol: {sym}, threshold: 30%, window: 1d}}"
            )
    return parse_config("\n".join(lines) + "\n", "bench", {})


def quotes(symbols: int, moment: datetime, cycle: int) -> list[Observation]:
    """One quote per symbol, moving a little (never across a level)."""
    value = 100.0 + (cycle % 7) * 0.1
    return [Observation(f"S{i}", moment, value, "price") for i in range(symbols)] + [
        Observation("*", moment, 0.0, "tick")
    ]


def settle() -> None:
    """What the worker does once started (bot.scheduler): collect, then freeze what start-up
    built — config, rules, engine — so the cyclic GC never re-scans it during a cycle. Done
    after the config and engine of each run are built (freezing before them left 1,000 rules'
    pydantic models to every gen-2 collection: p99 6–8 ms instead of ~2)."""
    gc.collect()
    gc.freeze()


def bench_engine(
    config: Config, cycles: int, quoted: int | None = None
) -> tuple[list[float], dict[str, Any]]:
    """CPU seconds per ``Engine.evaluate`` over ``cycles`` quiet cycles (states carried);
    ``quoted``: how many symbols get a new quote each cycle (default: all)."""
    engine = Engine.from_config(config)
    settle()
    clock = FakeClock(START)
    states: dict[str, Any] = {}
    seen: dict[str, str] | None = None
    history = History()
    times: list[float] = []
    written = 0
    for cycle in range(cycles + 1):
        clock.advance(timedelta(seconds=2))
        count = len(config.symbols) if quoted is None or cycle == 0 else quoted
        observations = quotes(count, clock.now(), cycle)
        started = time.process_time()
        result = evaluate(engine, observations, history, states, clock, seen)
        elapsed = time.process_time() - started
        states.update(result.states)
        seen = getattr(result, "seen", None)
        if cycle:  # the first cycle arms every rule
            times.append(elapsed)
            written += len(result.states)
    return times, {"states_changed_per_cycle": written / max(cycles, 1)}


def evaluate(
    engine: Engine,
    observations: list[Observation],
    history: History,
    states: dict[str, Any],
    clock: FakeClock,
    seen: dict[str, str] | None,
) -> Any:
    """``Engine.evaluate`` with the newest-seen map when the engine keeps one apart."""
    if seen is not None:
        return engine.evaluate(observations, history, states, clock, seen=seen)  # type: ignore[call-arg]
    return engine.evaluate(observations, history, states, clock)


def bench_store(config: Config, store: Store, cycles: int) -> tuple[list[float], dict[str, float]]:
    """CPU seconds per cycle of ``Store.transact`` running the engine, plus write counts."""
    engine = Engine.from_config(config)
    clock = FakeClock(START)
    store.migrate()
    settle()
    times: list[float] = []
    walls: list[float] = []
    history = History()
    counts = {"write_tx": 0.0, "rows": 0.0}
    for cycle in range(cycles + 1):
        clock.advance(timedelta(seconds=2))
        observations = quotes(len(config.symbols), clock.now(), cycle)

        def run(snapshot: Snapshot, observations: list[Observation] = observations) -> Outcome:
            seen = snapshot.values.get("seen")
            result = evaluate(engine, observations, history, snapshot.states, clock, seen)
            values = {"seen": result.seen} if hasattr(result, "seen") else {}
            return Outcome(states=result.states, deliveries=[], values=values)

        before = dict(getattr(store, "io", {}))
        started, wall = time.process_time(), time.perf_counter()
        store.transact(run, clock.now(), ("seen",))
        elapsed = time.process_time() - started
        wall = time.perf_counter() - wall
        after = getattr(store, "io", {})
        if cycle:
            times.append(elapsed)
            walls.append(wall)
            counts["write_tx"] += after.get("write_tx", 0) - before.get("write_tx", 0)
            counts["rows"] += after.get("rows", 0) - before.get("rows", 0)
    result = {k: v / max(cycles, 1) for k, v in counts.items()}
    result["wall_median"] = statistics.median(walls)
    result["counted"] = float(hasattr(store, "io"))
    return times, result


def describe(times: list[float]) -> str:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(ordered) * 1000:6.2f} ms  p99 {p99 * 1000:6.2f} ms"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} on {os.cpu_count()} cores"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--scaling", action="store_true", help="100/1k/10k rules x 5/50/200")
    parser.add_argument("--profile", action="store_true", help="cProfile the engine (cross)")
    parser.add_argument("--no-store", action="store_true")
    args = parser.parse_args()
    print(load())
    if args.profile:
        config = make_config(args.rules, args.symbols, "cross")
        profiler = cProfile.Profile()
        profiler.enable()
        bench_engine(config, args.cycles)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(18)
        return 0
    if args.scaling:
        print("Engine.evaluate CPU per quiet cycle (median): every symbol quoted / one symbol")
        print(f"{'rules':>7} {'symbols':>8} {'all quoted':>12} {'one quoted':>12} {'rows':>5}")
        for rules in (100, 1000, 10000):
            for symbols in (5, 50, 200):
                config = make_config(rules, symbols, "mixed")
                cycles = max(5, args.cycles // (rules // 100 or 1))
                times, info = bench_engine(config, cycles)
                one, _ = bench_engine(config, cycles, quoted=1)
                print(
                    f"{rules:>7} {symbols:>8} {statistics.median(times) * 1000:9.2f} ms "
                    f"{statistics.median(one) * 1000:9.2f} ms "
                    f"{info['states_changed_per_cycle']:>5.0f}"
                )
        return 0
    from bot.store import open_store

    for mix in ("mixed", "cross"):
        config = make_config(args.rules, args.symbols, mix)
        times, info = bench_engine(config, args.cycles)
        print(
            f"Engine.evaluate {args.rules} rules x {args.symbols} symbols, {mix:5}: "
            f"{describe(times)}  (rule states changed per quiet cycle: "
            f"{info['states_changed_per_cycle']:.0f})"
        )
        if args.no_store:
            continue
        urls = []
        with tempfile.TemporaryDirectory() as scratch:
            urls.append(("SQLite", f"sqlite:///{scratch}/bench.sqlite"))
            pg = os.environ.get("TEST_DATABASE_URL")
            if pg:
                schema = f"bench_{os.getpid()}_{mix}"
                urls.append(("PostgreSQL", f"{pg}?schema={schema}"))
            for name, url in urls:
                store = open_store(url)
                try:
                    times, counts = bench_store(config, store, args.cycles)
                finally:
                    _drop(store, name)
                    store.close()
                written = (
                    f"write tx/cycle {counts['write_tx']:.0f}, rows written/cycle "
                    f"{counts['rows']:.0f}"
                    if counts["counted"]
                    else "(this store counts no writes)"
                )
                print(
                    f"  inside the transaction, {name:10}: CPU {describe(times)}, wall median "
                    f"{counts['wall_median'] * 1000:.2f} ms; {written}"
                )
    return 0


def _drop(store: Store, name: str) -> None:
    """Drop the bench's PostgreSQL schema (a SQLite file goes with its directory)."""
    if name != "PostgreSQL":
        return
    schema = getattr(store, "schema", None)
    conn = getattr(store, "_conn", None)
    if schema and conn is not None:
        try:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.commit()
        except Exception:  # best effort: a leftover bench schema is harmless
            pass


if __name__ == "__main__":
    raise SystemExit(main())
