"""Helpers for the cockpit tests: a worker on the fake Bot API, a started cockpit, waiting for
the fake to record what the bot sent back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.app import build_worker
from bot.clock import FakeClock
from bot.cockpit.app import Cockpit
from bot.config import Config, parse_config
from bot.model import DailySeries
from bot.notify.telegram import TelegramNotifier
from bot.worker import Worker
from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram

PRIVATE, GROUP, STRANGER = 4242, -1001234, 5555
ADMIN, USER = 1001, 2002
T0 = datetime(2024, 11, 25, 15, 0, tzinfo=UTC)

CONFIG = """\
timezone: America/New_York
telegram:
  token: ${{TELEGRAM_BOT_TOKEN}}
  base_url: {telegram}
  chats: {{traders: {private}, desk: {group}}}
  admins: [{admin}]
state: {{url: "{state}"}}
sources:
  yahoo: {{type: yahoo, base_url: {yahoo}, attempts: 1}}
symbols:
  RUT: {{source: yahoo, ticker: "^RUT", name: Russell 2000, calendar: always}}
  FED: {{source: yahoo, ticker: "FED", name: Fed funds target range, calendar: always}}
poll: {{every: 1m}}
rules:
  - {{id: rut-2500, type: cross, symbol: RUT, level: 2500, direction: up, on: price}}
  - {{id: rut-levels, type: cross, symbol: RUT, levels: [2300, 2600], direction: both}}
"""


def make_config(
    tmp_path: Path,
    telegram: FakeTelegram,
    *,
    state: str | None = None,
    yahoo: str = "http://127.0.0.1:9",
    extra: str = "",
) -> Config:
    text = CONFIG.format(
        telegram=telegram.base_url,
        private=PRIVATE,
        group=GROUP,
        admin=ADMIN,
        state=state or f"sqlite:///{tmp_path / 'state.sqlite'}",
        yahoo=yahoo,
    )
    return parse_config(text + extra, "config.yaml", {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN})


def rut_history() -> DailySeries:
    days = [date(2024, 11, 18) + timedelta(days=i) for i in range(7)]
    return DailySeries(days, [2400.0, 2442.74, 2420.0, 2410.0, 2405.0, 2390.0, 2400.0])


def new_worker(config: Config, clock: FakeClock, worker_id: str = "w1") -> Worker:
    worker = build_worker(config, clock=clock, worker_id=worker_id)
    worker.store.migrate()
    return worker


@asynccontextmanager
async def running_cockpit(worker: Worker, *, release: bool = True) -> AsyncIterator[Cockpit]:
    """A started cockpit (no lease loop: tests call ``tick``) on the worker's notifier bot."""
    notifier = worker.notifier
    assert isinstance(notifier, TelegramNotifier)
    notifier.rate_limits = None
    cockpit = Cockpit(worker, notifier.bot, poll_timeout=1)
    notifier.chart_for = cockpit.alert_chart
    await cockpit.start(every=0)
    try:
        yield cockpit
    finally:
        await cockpit.stop(release=release)
        await notifier.stop()


async def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Until ``condition()`` holds (the bot answered over HTTP); fails after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting for the bot")
        await asyncio.sleep(0.02)


def markup(params: dict[str, Any]) -> Any:
    raw = params.get("reply_markup")
    return json.loads(raw) if isinstance(raw, str) else raw
