"""Delivery benchmark: a burst of alerts to many chats, against a fake Bot API that enforces limits.

    python bench/bench_delivery.py                      # 300 alerts, 20 chats; two mixes
    python bench/bench_delivery.py --groups 0           # one run, private chats only
    python bench/bench_delivery.py --time-factor 0.25   # everything 4x faster (limits too)

The real path: alerts written to a SQLite outbox, drained by :class:`bot.notify.sender.Sender`
through :class:`bot.notify.telegram.TelegramNotifier` (python-telegram-bot over HTTP, with its
rate limiter) into :class:`tests.fakes.telegram.FakeTelegram` in enforcing mode (per chat
~1/s with a burst of 3; per group 20 in any 60 s; overall 30 in any 1 s). Prints what arrived,
how many 429s the server had to answer (target 0), whether each chat got its alerts in order,
the elapsed time and the achieved rate against the fastest schedule the limits allow.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import DeliveryConfig, TelegramConfig
from bot.model import Alert
from bot.notify.sender import Sender
from bot.notify.telegram import RateLimits, TelegramNotifier
from bot.store.sqlite import SqliteStore
from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram, Limits


@dataclass
class Result:
    alerts: int
    chats: int
    groups: int
    delivered: int
    rate_limited: int
    in_order: bool
    elapsed: float
    ideal: float
    drains: int


def ideal_seconds(per_chat: list[int], groups: set[int], limits: Limits) -> float:
    """The shortest time the limits allow for these messages (first message at t=0)."""
    f = limits.time_factor
    bounds = [(sum(per_chat) - 1) / limits.overall_per_second * f]
    for index, count in enumerate(per_chat):
        bounds.append((count - 1) / limits.chat_per_second * f)
        if index in groups and count > limits.group_per_minute:
            bounds.append((count - 1) // limits.group_per_minute * 60.0 * f)
    return max(bounds)


async def run_once(
    alerts: int, chats: int, groups: int, factor: float, workdir: Path, burst: float | None
) -> Result:
    limits = Limits(time_factor=factor)
    with FakeTelegram(limits=limits) as fake:
        # chats 0..groups-1 are groups (negative ids), the rest private chats
        chat_ids: dict[str, int] = {
            f"c{n:02d}": (-1000 - n if n < groups else 1000 + n) for n in range(chats)
        }
        names = list(chat_ids)
        store = SqliteStore(workdir / f"bench-{chats}-{groups}.sqlite")
        store.migrate()
        t0 = datetime(2025, 9, 18, 13, 30, tzinfo=UTC)
        rows = []
        expected: dict[str, list[str]] = {name: [] for name in names}
        for n in range(alerts):
            name = names[n % chats]
            text = f"alert {n:04d} for {name}"
            alert = Alert(
                id=f"bench:{n}",
                rule_id="bench",
                rule_type="cross",
                symbol="RUT",
                time=t0 + timedelta(milliseconds=n),
                value=2500.0 + n,
                text=text,
            )
            rows.append((alert, [name]))
            expected[name].append(text)
        store.commit({}, rows, datetime.now(UTC))

        config = TelegramConfig(token=FAKE_TOKEN, base_url=fake.base_url, chats=dict(chat_ids))
        notifier = TelegramNotifier(
            config, rate_limits=RateLimits(time_factor=factor, group_burst=burst)
        )
        sender = Sender(
            store=store,
            notifier=notifier,
            chats=dict(chat_ids),
            delivery=DeliveryConfig(lease=timedelta(minutes=5)),
            worker_id="bench",
            batch_size=500,
        )
        await notifier.start()
        started = time.monotonic()
        drains = 0
        while True:
            drains += 1
            report = await sender.drain()
            if report.pending == 0 or time.monotonic() - started > 300:
                break
            await asyncio.sleep(0.2)  # a 429 put rows back for later: wait until they are due
        elapsed = time.monotonic() - started
        await notifier.stop()
        store.close()

        in_order = all(
            [m.plain for m in fake.sent_to(chat_ids[name])] == expected[name] for name in names
        )
        per_chat = [len(expected[name]) for name in names]
        return Result(
            alerts=alerts,
            chats=chats,
            groups=groups,
            delivered=len(fake.messages),
            rate_limited=fake.rate_limited,
            in_order=in_order,
            elapsed=elapsed,
            ideal=ideal_seconds(per_chat, set(range(groups)), limits),
            drains=drains,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=300)
    parser.add_argument("--chats", type=int, default=20)
    parser.add_argument(
        "--groups", type=int, default=None, help="how many chats are groups (default: 0 and 4)"
    )
    parser.add_argument("--time-factor", type=float, default=1.0)
    parser.add_argument(
        "--group-burst", type=float, default=None, help="sender's group burst (default 10)"
    )
    args = parser.parse_args()
    mixes = [args.groups] if args.groups is not None else [0, 4]
    print(
        f"Telegram limits enforced by the fake (time factor {args.time_factor:g}): per chat 1/s "
        "(burst 3), per group 20 in any 60 s, overall 30 in any 1 s"
    )
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for groups in mixes:
            r = asyncio.run(
                run_once(
                    args.alerts, args.chats, groups, args.time_factor, Path(tmp), args.group_burst
                )
            )
            rate = r.delivered / r.elapsed if r.elapsed else float("inf")
            best = (r.alerts - 1) / r.ideal if r.ideal else float("inf")
            print(
                f"\n{r.alerts} alerts to {r.chats} chats ({r.groups} groups, "
                f"{r.chats - r.groups} private):\n"
                f"  delivered            {r.delivered}/{r.alerts}\n"
                f"  429 answers          {r.rate_limited}  (target 0)\n"
                f"  order kept per chat  {'yes' if r.in_order else 'NO'}\n"
                f"  elapsed              {r.elapsed:.1f} s  (limits allow {r.ideal:.1f} s at best;"
                f" {r.drains} drain call(s))\n"
                f"  achieved rate        {rate:.1f} msg/s  (best the limits allow: {best:.1f}"
                f" msg/s; overall cap {30 / args.time_factor:g}/s)"
            )
            failed |= r.delivered != r.alerts or r.rate_limited != 0 or not r.in_order
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
