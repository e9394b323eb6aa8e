"""The worker and delivery: sending in its own task, per-rule chats, "no token" said at start.

In-process worker on a fake clock against the fake Yahoo and the fake Telegram Bot API (real
HTTP on 127.0.0.1, python-telegram-bot pointed at it with ``base_url``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import build_worker
from bot.clock import FakeClock
from bot.config import Config, parse_config
from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram
from tests.fakes.yahoo import Reply, YahooFake, chart_response
from tests.procs import SendGate
from tests.worker_support import run_cycles

TRADERS, DESK = 4242, 4343

CONFIG = """\
timezone: America/New_York
telegram:
  token: ${{TELEGRAM_BOT_TOKEN}}
  base_url: {telegram}
  chats: {{traders: {traders}, desk: {desk}}}
state: {{url: "sqlite:///{state}"}}
sources:
  yahoo: {{type: yahoo, base_url: {yahoo}, attempts: 1}}
symbols:
  RUT: {{source: yahoo, ticker: "^RUT", name: Russell 2000, calendar: always}}
poll: {{every: 1m}}
rules:
  - {{id: rut-2500, type: cross, symbol: RUT, level: 2500, direction: up, on: price}}
  - {{id: rut-2450, type: cross, symbol: RUT, level: 2450, direction: up, on: price,
      chats: [desk]}}
"""


def make_config(
    tmp_path: Path, yahoo: YahooFake, telegram: FakeTelegram, token: str | None = FAKE_TOKEN
) -> Config:
    text = CONFIG.format(
        telegram=telegram.base_url,
        traders=TRADERS,
        desk=DESK,
        state=tmp_path / "state.sqlite",
        yahoo=yahoo.base_url,
    )
    return parse_config(text, "config.yaml", {"TELEGRAM_BOT_TOKEN": token} if token else {})


def quotes(yahoo: YahooFake, start: datetime, prices: list[float]) -> None:
    yahoo.script(
        yahoo.chart_path("^RUT"),
        [chart_response(price=p, time=start + timedelta(minutes=i)) for i, p in enumerate(prices)],
        query={"range": "1d"},
    )


@pytest.mark.timeout(60)
def test_a_hanging_telegram_does_not_hold_up_polling(
    tmp_path: Path, yahoo_fake: YahooFake, fake_telegram: FakeTelegram
) -> None:
    """Telegram holds the first send; the crossing cycle and three more cycles complete
    (polled and evaluated) while it is held, and the alert is delivered once it answers."""
    clock = FakeClock(datetime(2024, 11, 25, 15, 0, tzinfo=UTC))
    quotes(yahoo_fake, clock.now(), [2400.0, 2510.0, 2511.0, 2512.0, 2513.0])
    config = make_config(tmp_path, yahoo_fake, fake_telegram)
    gate = SendGate(fake_telegram, hold_calls={1})

    async def scenario() -> list[list[str]]:
        worker = build_worker(config, clock=clock)
        await worker.start()
        polled = []
        try:
            assert worker.send_loop.drains == 0  # empty outbox: the sender claimed nothing
            for _ in range(5):
                report = await asyncio.wait_for(worker.poll_once(), timeout=10)
                polled.append(report.polled)
                if report.new_alert_ids:
                    await asyncio.to_thread(gate.wait_held)  # the send is now in flight
                else:
                    assert gate.in_flight == (1 if polled[1:] else 0)
                clock.advance(timedelta(minutes=1))
            assert gate.in_flight == 1  # still held: every cycle above ran during the send
            gate.release()
        finally:
            gate.release()
            await worker.stop()
        return polled

    assert asyncio.run(scenario()) == [["RUT"]] * 5
    assert len(fake_telegram.texts(TRADERS)) == 1
    assert len(fake_telegram.texts(DESK)) == 2  # both rules' alerts (rut-2450 is desk only)


def test_per_rule_chats_reach_only_those_chats(
    tmp_path: Path, yahoo_fake: YahooFake, fake_telegram: FakeTelegram
) -> None:
    """``chats: [desk]`` on a rule sends its alerts to desk only; a rule without ``chats``
    goes to every chat."""
    clock = FakeClock(datetime(2024, 11, 25, 15, 0, tzinfo=UTC))
    quotes(yahoo_fake, clock.now(), [2400.0, 2460.0, 2510.0])
    config = make_config(tmp_path, yahoo_fake, fake_telegram)

    run_cycles(config, clock, 3, timedelta(minutes=1))
    traders, desk = fake_telegram.texts(TRADERS), fake_telegram.texts(DESK)
    assert len(traders) == 1 and "crossed above 2,500" in traders[0]
    assert len(desk) == 2
    assert "crossed above 2,450" in desk[0] and "crossed above 2,500" in desk[1]


def test_start_without_a_token_says_alerts_go_to_the_console(
    tmp_path: Path,
    yahoo_fake: YahooFake,
    fake_telegram: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = make_config(tmp_path, yahoo_fake, fake_telegram, token=None)
    clock = FakeClock(datetime(2024, 11, 25, 15, 0, tzinfo=UTC))

    async def scenario() -> None:
        worker = build_worker(config, clock=clock)
        await worker.start()
        await worker.stop()

    with caplog.at_level(logging.INFO, logger="bot"):
        asyncio.run(scenario())
    assert any("no token: alerts go to the console" in r.getMessage() for r in caplog.records)


def test_an_unseeded_rule_is_told_to_the_admin_chat_once(
    tmp_path: Path, yahoo_fake: YahooFake, fake_telegram: FakeTelegram
) -> None:
    """History is down: the record rule is unseeded; the admin chat (desk) hears it once over
    several cycles, the other chats not at all."""
    text = (
        CONFIG.replace("  chats: {{traders", "  admin_chat: desk\n  chats: {{traders")
        + "  - {{id: rut-record, type: record_close, symbol: RUT}}\n"
    ).format(
        telegram=fake_telegram.base_url,
        traders=TRADERS,
        desk=DESK,
        state=tmp_path / "state.sqlite",
        yahoo=yahoo_fake.base_url,
    )
    config = parse_config(text, "config.yaml", {"TELEGRAM_BOT_TOKEN": FAKE_TOKEN})
    clock = FakeClock(datetime(2024, 11, 25, 15, 0, tzinfo=UTC))
    quotes(yahoo_fake, clock.now(), [2400.0] * 4)
    yahoo_fake.chart("^RUT", Reply("", status=503))  # daily bars: the history source is down

    reports = run_cycles(config, clock, 4, timedelta(minutes=1))
    assert [r.unseeded for r in reports] == [["rut-record"]] * 4
    told = fake_telegram.texts(DESK)
    assert len(told) == 1 and "rut-record" in told[0] and "history" in told[0], told
    assert fake_telegram.texts(TRADERS) == []
