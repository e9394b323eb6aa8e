"""Mutes: set with /mute (or a button), kept in the store across a restart; a muted rule's
crossing is recorded (its state, the log, /rules) and not sent; /unmute lifts it."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.engine import Engine
from bot.model import History, Observation
from bot.store import open_store
from tests.cockpit_support import (
    ADMIN,
    PRIVATE,
    T0,
    make_config,
    new_worker,
    running_cockpit,
    wait_for,
)
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yahoo import YahooFake, chart_response

pytestmark = pytest.mark.timeout(60)


def test_a_mute_survives_a_restart_and_unmute_lifts_it(
    tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    config = make_config(tmp_path, fake_telegram)

    async def first_life() -> None:
        worker = new_worker(config, FakeClock(T0))
        async with running_cockpit(worker):
            fake_telegram.message(PRIVATE, "/mute rut-2500 2h", user_id=ADMIN)
            await wait_for(lambda: len(fake_telegram.sent_to(PRIVATE)) == 1)
        worker.store.close()

    async def second_life() -> None:
        worker = new_worker(config, FakeClock(T0 + timedelta(minutes=5)))  # a restart
        async with running_cockpit(worker):
            fake_telegram.message(PRIVATE, "/rules")
            await wait_for(lambda: len(fake_telegram.sent_to(PRIVATE)) == 2)
            fake_telegram.message(PRIVATE, "/unmute rut-2500", user_id=ADMIN)
            fake_telegram.message(PRIVATE, "/rules")
            await wait_for(lambda: len(fake_telegram.sent_to(PRIVATE)) == 4)
        assert worker.store.mutes(worker.clock.now()) == {}
        worker.store.close()

    asyncio.run(first_life())
    asyncio.run(second_life())
    muted, rules, unmuted, after = [m.text for m in fake_telegram.sent_to(PRIVATE)]
    assert muted == "Rule rut-2500 muted until 2024-11-25 12:00 EST."
    assert "rut-2500 (cross): armed; muted until 2024-11-25 12:00 EST" in rules
    assert "rut-levels (cross): armed" in rules and "rut-levels (cross): armed;" not in rules
    assert unmuted == "Rule rut-2500 unmuted."
    assert "muted until" not in after


def test_engine_records_muted_alerts_instead_of_returning_them(
    caplog: pytest.LogCaptureFixture, tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    config = make_config(tmp_path, fake_telegram)
    engine = Engine.from_config(config)
    clock = FakeClock(T0)
    obs = [
        Observation("RUT", T0 - timedelta(minutes=2), 2490.0),
        Observation("RUT", T0 - timedelta(minutes=1), 2510.0),
    ]
    caplog.set_level(logging.INFO, logger="bot.engine")
    mutes = {"rut-2500": T0 + timedelta(hours=1)}
    result = engine.evaluate(obs, History(), {}, clock, mutes=mutes)
    assert [a.rule_id for a in result.muted] == ["rut-2500"]
    assert result.alerts == []
    state = result.states["rut-2500"]
    assert state["muted"]["count"] == 1 and state["last_alert"] is None
    assert "muted until" in caplog.text
    # a mute that ran out mutes nothing
    again = engine.evaluate(obs, History(), {}, clock, mutes={"*": T0 - timedelta(seconds=1)})
    assert [a.rule_id for a in again.alerts] == ["rut-2500"]


@pytest.mark.timeout(60)
def test_a_muted_rules_crossing_is_not_sent_but_others_are(
    tmp_path: Path, fake_telegram: FakeTelegram, yahoo_fake: YahooFake
) -> None:
    clock = FakeClock(datetime(2024, 11, 25, 15, 0, tzinfo=UTC))
    yahoo_fake.script(
        yahoo_fake.chart_path("^RUT"),
        [
            chart_response(price=p, time=clock.now() + timedelta(minutes=i))
            for i, p in enumerate([2400.0, 2510.0, 2610.0])
        ],
        query={"range": "1d"},
    )
    config = make_config(tmp_path, fake_telegram, yahoo=yahoo_fake.base_url)
    worker = new_worker(config, clock)
    worker.store.set_mute("rut-2500", clock.now() + timedelta(hours=1), "1001", clock.now())

    async def scenario() -> None:
        notifier = worker.notifier
        notifier.rate_limits = None  # type: ignore[attr-defined]
        await worker.start()
        try:
            for _ in range(3):
                await worker.poll_once()
                clock.advance(timedelta(minutes=1))
            await worker.sender.drain_until_empty(clock.now() + timedelta(seconds=10))
        finally:
            await worker.stop()

    asyncio.run(scenario())
    texts = fake_telegram.texts(PRIVATE)
    assert not any("2,500" in t for t in texts), texts  # muted: not sent
    assert any("2,600" in t for t in texts), texts  # rut-levels is not muted
    store = open_store(config.state.url)
    try:  # recorded: the rule's state says what the mute held back
        muted = store.load_states()["rut-2500"]["muted"]
    finally:
        store.close()
    assert muted["count"] == 1 and "2,500" in muted["last"]["text"]


def test_mute_all_today_shows_in_rules(tmp_path: Path, fake_telegram: FakeTelegram) -> None:
    worker = new_worker(make_config(tmp_path, fake_telegram), FakeClock(T0))

    async def scenario() -> None:
        async with running_cockpit(worker):
            fake_telegram.message(PRIVATE, "/mute all today", user_id=ADMIN)
            await wait_for(lambda: len(fake_telegram.sent_to(PRIVATE)) == 1)
            fake_telegram.message(PRIVATE, "/rules")
            await wait_for(lambda: len(fake_telegram.sent_to(PRIVATE)) == 2)
            fake_telegram.message(PRIVATE, "/unmute all", user_id=ADMIN)
            fake_telegram.message(PRIVATE, "/unmute all", user_id=ADMIN)
            fake_telegram.message(PRIVATE, "/unmute", user_id=ADMIN)
            await wait_for(lambda: len(fake_telegram.sent_to(PRIVATE)) == 5)

    asyncio.run(scenario())
    muted, rules, lifted, nothing, usage = [m.text for m in fake_telegram.sent_to(PRIVATE)]
    assert muted == "All rules muted until 2024-11-26 00:00 EST."
    assert rules.startswith("All rules muted until 2024-11-26 00:00 EST")
    assert "rut-levels (cross): armed; muted until 2024-11-26 00:00 EST" in rules
    assert lifted == "All mutes lifted." and nothing == "Nothing was muted."
    assert usage.startswith("Usage: /unmute")
