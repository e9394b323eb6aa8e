"""The bot beside the loop a trader would write instead, in the same run, on the same fakes.

``--peer`` runs the naive loop (below, ~30 lines: requests to the Yahoo chart API and
python-telegram-bot's ``send_message`` when ^RUT crosses 2,500). Without it, this script starts
the loopback fakes of Yahoo and Telegram, spawns the naive loop and the bot (``python -m bot
run``, one ``cross`` rule, ``poll.every: 1s``, ``calendar: always``) side by side, moves the
price across 2,500 and back ``--crossings`` times, and prints per process: alert latency
(price changed at the fake → message at the fake Telegram) p50/p99, start-up (spawn → first
quote request), peak RSS and CPU per hour of polling, and the bot/naive ratios.

    python bench/naive_peer.py [--crossings 12] [--hold 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------- the naive peer itself


def naive_loop(yahoo: str, telegram: str, token: str, chat: int, every: float) -> None:
    """What a trader writes: poll the chart API, send a message on an upward cross of 2,500."""
    import requests
    import telegram as tg

    async def main() -> None:
        bot = tg.Bot(token, base_url=f"{telegram}/bot")
        async with bot:
            last = None
            while True:
                try:
                    reply = requests.get(
                        f"{yahoo}/v8/finance/chart/%5ERUT",
                        params={"range": "1d", "interval": "1m"},
                        timeout=10,
                    )
                    price = reply.json()["chart"]["result"][0]["meta"]["regularMarketPrice"]
                except Exception as exc:  # keep polling through a bad answer
                    print("poll failed:", exc, file=sys.stderr)
                    await asyncio.sleep(every)
                    continue
                if last is not None and last < 2500 <= price:
                    await bot.send_message(chat, f"^RUT crossed above 2,500: {price:,.2f}")
                last = price
                await asyncio.sleep(every)

    asyncio.run(main())


# --------------------------------------------------------------------- the harness

BOT_CONFIG = """\
telegram: {{token: "{token}", base_url: {telegram}, chats: {{traders: {chat}}}}}
state: {{url: "sqlite:///{state}"}}
sources:
  yahoo: {{type: yahoo, base_url: {yahoo}, attempts: 1}}
symbols:
  RUT: {{source: yahoo, ticker: "^RUT", calendar: always}}
poll: {{every: {every}s}}
sanity: {{max_jump: 50%}}
rules:
  - {{id: rut-2500, type: cross, symbol: RUT, level: 2500, direction: up}}
"""


def proc_stats(pid: int) -> tuple[float, float]:
    """(peak RSS in MB, CPU seconds user+system) of a running process, from /proc."""
    peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return peak, (int(fields[11]) + int(fields[12])) / ticks


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", action="store_true", help="run the naive loop itself")
    parser.add_argument("--yahoo")
    parser.add_argument("--telegram")
    parser.add_argument("--token")
    parser.add_argument("--chat", type=int, default=1)
    parser.add_argument("--every", type=float, default=1.0)
    parser.add_argument("--crossings", type=int, default=12)
    parser.add_argument("--hold", type=float, default=3.0, help="seconds each price is held")
    args = parser.parse_args()
    if args.peer:
        naive_loop(args.yahoo, args.telegram, args.token, args.chat, args.every)
        return 0
    return harness(args.crossings, args.hold, args.every)


def harness(crossings: int, hold: float, every: float) -> int:
    sys.path.insert(0, str(ROOT))
    import logging

    from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram
    from tests.fakes.yahoo import YahooFake, chart_response

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    yahoo = YahooFake().start()
    telegram = FakeTelegram().start()
    chats = {"bot": 7001, "naive": 7002}
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    env["TELEGRAM_BOT_TOKEN"] = FAKE_TOKEN

    def quote(price: float) -> None:
        yahoo.chart("^RUT", chart_response(price=price, time=datetime.now(UTC)))

    quote(2490.0)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    spawned: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "config.yaml"
        config.write_text(
            BOT_CONFIG.format(
                token=FAKE_TOKEN,
                telegram=telegram.base_url,
                chat=chats["bot"],
                state=Path(scratch) / "state.sqlite",
                yahoo=yahoo.base_url,
                every=int(every),
            )
        )
        commands = {
            "bot": [sys.executable, "-m", "bot", "run", "--config", str(config)],
            "naive": [
                sys.executable,
                str(Path(__file__).resolve()),
                "--peer",
                "--yahoo",
                yahoo.base_url,
                "--telegram",
                telegram.base_url,
                "--token",
                FAKE_TOKEN,
                "--chat",
                str(chats["naive"]),
                "--every",
                str(every),
            ],
        }
        try:
            for name, command in commands.items():
                spawned[name] = time.monotonic()
                log = (Path(scratch) / f"{name}.log").open("wb")
                procs[name] = subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log
                )
            startup = first_requests(yahoo, spawned, timeout=30)
            cpu_start = {name: proc_stats(p.pid)[1] for name, p in procs.items()}
            polling_started = time.monotonic()
            latencies: dict[str, list[float]] = {name: [] for name in procs}
            jitter = random.Random(2500)  # price changes fall anywhere between two polls
            for _ in range(crossings):
                quote(2490.0)
                time.sleep(hold + jitter.uniform(0, every))
                counts = {n: len(telegram.sent_to(c)) for n, c in chats.items()}
                changed = time.monotonic()
                quote(2510.0)
                deadline = changed + hold + 10
                while time.monotonic() < deadline:
                    done = all(len(telegram.sent_to(c)) > counts[n] for n, c in chats.items())
                    if done and time.monotonic() >= changed + hold:
                        break
                    time.sleep(0.01)
                for name, chat in chats.items():
                    new = telegram.sent_to(chat)[counts[name] :]
                    if new:
                        latencies[name].append(new[0].received - changed)
            polled = time.monotonic() - polling_started
            stats = {name: proc_stats(p.pid) for name, p in procs.items()}
            if os.environ.get("BENCH_LOGS"):
                for name in procs:
                    tail = (Path(scratch) / f"{name}.log").read_text()[-3000:]
                    print(f"--- {name} log tail", tail)
        finally:
            for p in procs.values():
                p.terminate()
            for p in procs.values():
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
            yahoo.stop()
            telegram.stop()
    one, five, _ = os.getloadavg()
    print(
        f"{crossings} crossings, each price held {hold:g} s, poll every {every:g} s; "
        f"load average {one:.1f} / {five:.1f} on {os.cpu_count()} cores"
    )
    print(f"{'':8}{'latency p50':>12}{'p99':>8}{'start-up':>10}{'peak RSS':>10}{'CPU/hour':>10}")
    figures: dict[str, tuple[float, float, float, float, float]] = {}
    for name in procs:
        values = latencies[name] or [float("nan")]
        cpu_hour = (stats[name][1] - cpu_start[name]) / polled * 3600
        figures[name] = (
            statistics.median(values),
            pct(values, 0.99),
            startup.get(name, float("nan")),
            stats[name][0],
            cpu_hour,
        )
        p50, p99, up, rss, cpu = figures[name]
        print(
            f"{name:8}{p50:>11.2f}s{p99:>7.2f}s{up:>9.2f}s{rss:>7.0f} MB{cpu:>9.1f}s"
            f"   ({len(latencies[name])}/{crossings} alerts)"
        )
    bot, naive = figures["bot"], figures["naive"]
    print(
        f"bot/naive: latency p50 {bot[0] / naive[0]:.2f}, p99 {bot[1] / naive[1]:.2f}, "
        f"start-up {bot[2] / naive[2]:.2f}, RSS {bot[3] / naive[3]:.2f}, "
        f"CPU/hour {bot[4] / naive[4]:.2f}"
    )
    return 0


def first_requests(yahoo: object, spawned: dict[str, float], timeout: float) -> dict[str, float]:
    """Seconds from spawn to each process's first quote request (told apart by User-Agent)."""
    from bot.sources.base import USER_AGENT

    found: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(found) < len(spawned) and time.monotonic() < deadline:
        for seen in yahoo.requests():  # type: ignore[attr-defined]
            agent = seen.headers.get("User-Agent", "")
            name = "bot" if agent == USER_AGENT else "naive"
            if name not in found:
                found[name] = time.monotonic() - spawned[name]
        time.sleep(0.005)
    return found


if __name__ == "__main__":
    raise SystemExit(main())
