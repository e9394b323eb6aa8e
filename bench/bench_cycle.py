"""Alert latency and memory of the live worker, against loopback fakes of Yahoo and Telegram.

Each round serves quotes that cross a level on every symbol, runs one real cycle (poll →
sanity → engine → outbox transaction → sender → python-telegram-bot → fake Bot API) and measures
the time from the start of the cycle to the fake receiving the first message and the last one.
Each symbol's alerts go to a chat of their own, and rounds are a second apart, so Telegram's
per-chat pacing (about one message a second) does not add to the figures. Prints median/p95 and
the process's peak resident memory (what a small cloud worker has to hold).

    python bench/bench_cycle.py [--rounds 40] [--symbols 5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import build_worker
from bot.clock import FakeClock
from bot.config import parse_config
from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram
from tests.fakes.yahoo import YahooFake, chart_response

CONFIG = """\
telegram: {{token: "{token}", base_url: {telegram}, chats: {{{chats}}}}}
state: {{url: "sqlite:///{state}"}}
sources:
  yahoo: {{type: yahoo, base_url: {yahoo}, attempts: 1}}
symbols:
{symbols}
poll: {{every: 60s}}
sanity: {{max_jump: 50%}}
rules:
{rules}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--symbols", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    first, last = asyncio.run(run(args.rounds, args.symbols))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rounds:  {len(first)} cycles, each with a crossing on all {args.symbols} symbols")
    print(f"first alert delivered: {describe(first)} after the cycle started")
    print(f"all {args.symbols} delivered:       {describe(last)}")
    loaded = ", ".join(m for m in ("pandas", "numpy", "telegram") if m in sys.modules)
    print(f"memory:  peak RSS {peak_mb:.0f} MB for the whole process and fakes ({loaded} loaded)")
    return 0


def describe(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return f"median {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"


async def run(rounds: int, symbols: int) -> tuple[list[float], list[float]]:
    yahoo = YahooFake().start()
    telegram = FakeTelegram().start()
    tickers = [f"SYM{i}" for i in range(symbols)]
    with tempfile.TemporaryDirectory() as scratch:
        text = CONFIG.format(
            token=FAKE_TOKEN,
            telegram=telegram.base_url,
            state=Path(scratch) / "state.sqlite",
            yahoo=yahoo.base_url,
            chats=", ".join(f"{t}: {4200 + i}" for i, t in enumerate(tickers)),
            symbols="\n".join(f"  {t}: {{source: yahoo, calendar: always}}" for t in tickers),
            rules="\n".join(
                f"  - {{id: {t}-cross, type: cross, symbol: {t}, level: 100, direction: both, "
                f"chats: [{t}]}}"
                for t in tickers
            ),
        )
        config = parse_config(text, "bench", os.environ)
        clock = FakeClock(datetime(2026, 1, 5, 15, tzinfo=UTC))
        worker = build_worker(config, clock=clock)
        await worker.start()
        first: list[float] = []
        last: list[float] = []
        try:
            for i in range(rounds + 1):
                price = 90.0 if i % 2 == 0 else 110.0  # every round after the first crosses
                for t in tickers:
                    yahoo.chart(t, chart_response(price=price, time=clock.now(), symbol=t))
                before = len(telegram.messages)
                started = time.perf_counter()
                cycle = asyncio.create_task(worker.poll_once())
                if i:  # the first round only arms the rules
                    while len(telegram.messages) == before:
                        await asyncio.sleep(0.001)
                    first.append(time.perf_counter() - started)
                await cycle
                while len(telegram.messages) < before + (symbols if i else 0):
                    await worker.sender.drain()  # the pacing may defer some to a next drain
                    await asyncio.sleep(0.01)
                if i:
                    last.append(time.perf_counter() - started)
                clock.advance(timedelta(minutes=1))
                await asyncio.sleep(1.05)  # keep each chat under Telegram's 1 message/s
        finally:
            await worker.stop()
            yahoo.stop()
            telegram.stop()
    return first, last


if __name__ == "__main__":
    raise SystemExit(main())
