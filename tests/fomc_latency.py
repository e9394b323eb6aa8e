"""Decision latency in real seconds: the real scheduler and worker, a clock set to a few seconds
before 14:00 New York on a decision day, the fake Fed publishing the statement at 14:00:00 and
the fake Telegram timing its arrival. Used by a test and by ``bench/bench_fomc.py``."""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.app import build_worker
from bot.config import parse_config
from bot.scheduler import run_forever
from tests.fakes.fed import FedFake, calendar_json, cut_statement, feed_xml, statement_page
from tests.fakes.fred import FredFake, fred_csv
from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram

NY = ZoneInfo("America/New_York")
DAY = date(2025, 12, 10)
CHAT = 4242

CONFIG = """\
timezone: America/New_York
telegram: {{token: {token}, base_url: {telegram}, chats: {{traders: {chat}}}}}
state: {{url: "sqlite:///{state}"}}
sources:
  fed: {{type: fomc, base_url: {fed}, attempts: 1}}
  fred: {{type: fred, base_url: {fred}, attempts: 1}}
symbols:
  FOMC: {{source: fed, calendar: always, poll: 5m}}
  FED: {{source: fred, series: {{lower: DFEDTARL, upper: DFEDTARU}}, calendar: always, poll: 1h}}
rules:
  - {{id: fed-rate, type: rate_change, symbol: FOMC, confirm: FED}}
"""


class OffsetClock:
    """The wall clock moved to another moment: time passes at the real rate, so the real
    scheduler drives the worker."""

    def __init__(self, start: datetime) -> None:
        self.offset = start - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def monotonic(self) -> float:
        return time.monotonic()


def measure_latency(lead: float = 2.0, timeout: float = 20.0) -> float:
    """Seconds from the page going up (at 14:00:00 on the worker's clock, ``lead`` seconds
    after the start) to the fake Telegram receiving the alert. Raises if it never arrives or
    arrives twice."""
    with (
        FedFake() as fed,
        FredFake() as fred,
        FakeTelegram() as telegram,
        tempfile.TemporaryDirectory() as tmp,
    ):
        fed.calendar(calendar_json([("2025-12", "9-10")]))
        fed.feed(feed_xml([]))
        fed.not_yet(DAY)
        rows = [(DAY - timedelta(days=i), 3.75 if i else None) for i in range(10, 0, -1)]
        fred.series("DFEDTARL", fred_csv("DFEDTARL", rows))
        fred.series("DFEDTARU", fred_csv("DFEDTARU", [(d, 4.0) for d, _ in rows]))
        text = CONFIG.format(
            token=FAKE_TOKEN,
            telegram=telegram.base_url,
            chat=CHAT,
            state=Path(tmp) / "state.sqlite",
            fed=fed.base_url,
            fred=fred.base_url,
        )
        release = datetime(2025, 12, 10, 14, 0, tzinfo=NY)
        clock = OffsetClock(release - timedelta(seconds=lead))
        worker = build_worker(parse_config(text, "config.yaml", {}), clock=clock)
        page = statement_page(DAY, cut_statement(DAY)).encode()
        published: list[float] = []

        def publish() -> None:
            fed.publish(DAY, page)
            published.append(time.monotonic())

        timer = threading.Timer((release - clock.now()).total_seconds(), publish)

        async def scenario() -> None:
            stop = asyncio.Event()
            runner = asyncio.create_task(run_forever(worker, stop))
            timer.start()
            deadline = time.monotonic() + timeout
            while not telegram.sent_to(CHAT) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # a second message, if any, would be here by now
            stop.set()
            await runner

        try:
            asyncio.run(scenario())
        finally:
            timer.cancel()
        sent = telegram.sent_to(CHAT)
        if not sent or not published:
            raise AssertionError("the alert never reached Telegram")
        if len(sent) != 1:
            raise AssertionError(f"{len(sent)} messages for one decision")
        return sent[0].received - published[0]
