"""The cockpit's commands, driven through the real python-telegram-bot ``Application`` against
the fake Bot API: crafted ``getUpdates`` (private chat, group with ``@botname``, forum topic,
unknown chat, non-admin, malformed arguments), asserting the calls that come back."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.model import Observation
from tests.cockpit_support import (
    ADMIN,
    GROUP,
    PRIVATE,
    STRANGER,
    T0,
    USER,
    make_config,
    new_worker,
    running_cockpit,
    rut_history,
    wait_for,
)
from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram

pytestmark = pytest.mark.timeout(60)


def _run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_menu_is_registered_and_start_help_answer_in_a_private_chat(
    tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    worker = new_worker(make_config(tmp_path, fake_telegram), FakeClock(T0))

    async def scenario() -> None:
        async with running_cockpit(worker):
            fake_telegram.message(PRIVATE, "/start")
            fake_telegram.message(PRIVATE, "/help")
            await wait_for(lambda: len(fake_telegram.sent_to(PRIVATE)) == 2)

    _run(scenario())
    commands = fake_telegram.requests_for("setMyCommands")
    assert commands, "setMyCommands was not called"
    names = {c["command"] for c in _json(commands[0]["commands"])}
    assert names == {"start", "help", "status", "rules", "mute", "unmute", "chart"}
    start, help_ = [m.text for m in fake_telegram.sent_to(PRIVATE)]
    assert "Russell 2000" in start and "2 rules" in start
    assert "/mute" in help_ and "Mute today" in help_


def test_group_command_with_botname_answers_in_the_same_forum_topic(
    tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    worker = new_worker(make_config(tmp_path, fake_telegram), FakeClock(T0))

    async def scenario() -> None:
        async with running_cockpit(worker):
            fake_telegram.message(GROUP, "/help@fake_alert_bot", thread_id=77)
            fake_telegram.message(GROUP, "/help@some_other_bot")  # not for us: ignored
            fake_telegram.message(GROUP, "/start")
            await wait_for(lambda: len(fake_telegram.sent_to(GROUP)) == 2)
            await asyncio.sleep(0.3)  # the ignored one would have been answered by now

    _run(scenario())
    first, second = fake_telegram.sent_to(GROUP)
    assert "/status" in first.text
    assert str(first.params.get("message_thread_id")) == "77"
    assert "message_thread_id" not in second.params
    assert len(fake_telegram.sent_to(GROUP)) == 2


def test_unknown_chat_gets_only_its_chat_id_from_start_and_is_logged_without_text(
    tmp_path: Path, fake_telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    worker = new_worker(make_config(tmp_path, fake_telegram), FakeClock(T0))
    caplog.set_level(logging.INFO)

    async def scenario() -> None:
        async with running_cockpit(worker):
            fake_telegram.message(STRANGER, "/status secret-words", user_id=STRANGER)
            fake_telegram.message(STRANGER, "/start", user_id=STRANGER)
            await wait_for(lambda: len(fake_telegram.sent_to(STRANGER)) == 1)
            await asyncio.sleep(0.3)

    _run(scenario())
    (answer,) = fake_telegram.sent_to(STRANGER)
    assert str(STRANGER) in answer.text and "config.yaml" in answer.text
    assert "Russell" not in answer.text and "2,4" not in answer.text  # no market data
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 2 and all(r.levelno == logging.WARNING for r in refusals)
    assert all(str(STRANGER) in r.getMessage() for r in refusals)
    assert "secret-words" not in caplog.text
    # (httpx logs URLs with the token; the bot's own logging setup turns it down and redacts)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot"))
    assert FAKE_TOKEN not in ours and FAKE_TOKEN not in answer.text


def test_status_shows_value_source_day_change_record_and_levels(
    tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    clock = FakeClock(T0)
    worker = new_worker(make_config(tmp_path, fake_telegram), clock)
    worker.store.save_history("RUT", rut_history())
    worker.last_quotes["RUT"] = Observation("RUT", T0, 2450.0, source="yahoo")
    worker.last_quotes["FED"] = Observation(
        "FED", T0, 4.75, kind="rate", fields={"lower": 4.5, "upper": 4.75}
    )

    async def scenario() -> None:
        async with running_cockpit(worker):
            fake_telegram.message(PRIVATE, "/status")
            fake_telegram.message(PRIVATE, "/status rut")
            fake_telegram.message(PRIVATE, "/status RUT extra")
            fake_telegram.message(PRIVATE, "/status NOPE")
            await wait_for(lambda: len(fake_telegram.sent_to(PRIVATE)) == 4)

    _run(scenario())
    everything, one, extra, unknown = [m.text for m in fake_telegram.sent_to(PRIVATE)]
    assert "Russell 2000 (RUT): 2,450.00 at 2024-11-25 10:00 EST via yahoo" in one
    assert "day: +50.00 (+2.08%)" in one  # vs the 2024-11-24 close of 2,400
    assert "record close 2,442.74 (2024-11-19): 7.26 pts (0.30%) below" in one
    assert "level 2,500: 50.00 pts (2.04%) above" in one
    assert "level 2,300: 150.00 pts (6.12%) below" in one
    assert "target range 4.50%–4.75%" in everything and "FED" not in one
    assert "context (close 2024-11-24): MTD" in one and "52w 2,390.00–2,442.74" in one
    assert extra.startswith("Usage: /status") and "Unknown symbol" in unknown


def test_status_flags_stale_and_missing_data(tmp_path: Path, fake_telegram: FakeTelegram) -> None:
    clock = FakeClock(T0)
    worker = new_worker(make_config(tmp_path, fake_telegram), clock)
    worker.last_quotes["RUT"] = Observation("RUT", T0, 2450.0, source="yahoo")
    clock.advance(__import__("datetime").timedelta(hours=1))

    async def scenario() -> None:
        async with running_cockpit(worker):
            fake_telegram.message(PRIVATE, "/status")
            await wait_for(lambda: len(fake_telegram.sent_to(PRIVATE)) == 1)

    _run(scenario())
    text = fake_telegram.sent_to(PRIVATE)[0].text
    assert "STALE" in text and "FED: no data yet (missing)" in text.replace(
        "Fed funds target range (FED)", "FED"
    )


def test_rules_lists_each_rule_with_its_state(tmp_path: Path, fake_telegram: FakeTelegram) -> None:
    worker = new_worker(make_config(tmp_path, fake_telegram), FakeClock(T0))
    worker.store.commit({"rut-2500": {"rule": {}, "last_alert": T0.isoformat()}}, [], T0)

    async def scenario() -> None:
        async with running_cockpit(worker):
            fake_telegram.message(PRIVATE, "/rules")
            await wait_for(lambda: len(fake_telegram.sent_to(PRIVATE)) == 1)

    _run(scenario())
    text = fake_telegram.sent_to(PRIVATE)[0].text
    assert "rut-2500 (cross): fired at 2024-11-25 10:00 EST" in text
    assert "rut-levels (cross): armed" in text


@pytest.mark.parametrize(
    "command",
    ["/mute", "/mute rut-2500", "/mute rut-2500 forever", "/mute nope 1h", "/mute rut-2500 0h"],
)
def test_bad_mute_arguments_get_a_usage_line(
    tmp_path: Path, fake_telegram: FakeTelegram, command: str
) -> None:
    worker = new_worker(make_config(tmp_path, fake_telegram), FakeClock(T0))

    async def scenario() -> None:
        async with running_cockpit(worker):
            fake_telegram.message(PRIVATE, command, user_id=ADMIN)
            await wait_for(lambda: len(fake_telegram.sent_to(PRIVATE)) == 1)

    _run(scenario())
    assert fake_telegram.sent_to(PRIVATE)[0].text.startswith("Usage: /mute")
    assert worker.store.mutes(T0) == {}


def test_non_admin_in_a_named_group_cannot_mute_and_gets_nothing(
    tmp_path: Path, fake_telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    worker = new_worker(make_config(tmp_path, fake_telegram), FakeClock(T0))

    async def scenario() -> None:
        async with running_cockpit(worker):
            fake_telegram.message(GROUP, "/mute all 1h", user_id=USER)
            fake_telegram.message(GROUP, "/rules", user_id=USER)  # read-only: answered
            await wait_for(lambda: len(fake_telegram.sent_to(GROUP)) == 1)
            await asyncio.sleep(0.3)

    _run(scenario())
    assert worker.store.mutes(T0) == {}
    (answer,) = fake_telegram.sent_to(GROUP)
    assert "rut-2500" in answer.text
    assert any(
        "refused /mute" in r.getMessage() and str(USER) in r.getMessage() for r in caplog.records
    )


def _json(value: object) -> list[dict[str, str]]:
    import json

    return json.loads(value) if isinstance(value, str) else value  # type: ignore[return-value]


def test_run_forever_answers_commands_in_the_schedulers_loop(
    tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    from bot.scheduler import run_forever

    worker = new_worker(make_config(tmp_path, fake_telegram), FakeClock(T0))
    worker.notifier.rate_limits = None  # type: ignore[attr-defined]
    worker.startup_deadline = __import__("datetime").timedelta(seconds=0)

    async def scenario() -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(run_forever(worker, stop))
        fake_telegram.message(PRIVATE, "/help")
        await wait_for(lambda: len(fake_telegram.sent_to(PRIVATE)) == 1)
        stop.set()
        return await task

    assert asyncio.run(scenario()) == 0
    assert "/status" in fake_telegram.sent_to(PRIVATE)[0].text
