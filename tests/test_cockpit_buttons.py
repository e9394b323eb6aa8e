"""Inline buttons under alerts (Chart, Mute 1h, Mute today) as callback queries, /chart, and
``chart: true`` rules: answered callbacks, PNGs that decode, the same access rules."""

from __future__ import annotations

import asyncio
import struct
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.model import Alert
from bot.notify.telegram import TelegramNotifier
from tests.cockpit_support import (
    ADMIN,
    GROUP,
    PRIVATE,
    T0,
    USER,
    make_config,
    markup,
    new_worker,
    running_cockpit,
    rut_history,
    wait_for,
)
from tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.timeout(60)


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, after checking its signature and every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, size, chunks = 8, (0, 0), []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        chunks.append(kind)
        pos += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and b"IDAT" in chunks
    return size


def _alert(rule_id: str = "rut-2500", chart: bool = False) -> Alert:
    return Alert(
        id=f"{rule_id}:x",
        rule_id=rule_id,
        rule_type="cross",
        symbol="RUT",
        time=T0,
        value=2510.0,
        text="Russell 2000 crossed 2,500",
        chart=chart,
    )


def test_every_alert_carries_chart_and_mute_buttons(
    tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    config = make_config(tmp_path, fake_telegram)
    notifier = TelegramNotifier(config.telegram, rate_limits=None)

    async def scenario() -> None:
        await notifier.send(PRIVATE, _alert())
        await notifier.stop()

    asyncio.run(scenario())
    (message,) = fake_telegram.sent_to(PRIVATE)
    buttons = markup(message.params)["inline_keyboard"][0]
    assert [(b["text"], b["callback_data"]) for b in buttons] == [
        ("Chart", "chart:rut-2500"),
        ("Mute 1h", "mute1h:rut-2500"),
        ("Mute today", "mutetoday:rut-2500"),
    ]


def test_mute_buttons_answer_the_callback_and_mute_in_the_store(
    tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    worker = new_worker(make_config(tmp_path, fake_telegram), FakeClock(T0))

    async def scenario() -> None:
        async with running_cockpit(worker):
            fake_telegram.callback(GROUP, "mute1h:rut-2500", user_id=ADMIN, thread_id=9)
            await wait_for(lambda: len(fake_telegram.sent_to(GROUP)) == 1)
            fake_telegram.callback(PRIVATE, "mutetoday:rut-levels", user_id=ADMIN)
            await wait_for(lambda: len(fake_telegram.sent_to(PRIVATE)) == 1)

    asyncio.run(scenario())
    answers = fake_telegram.requests_for("answerCallbackQuery")
    assert len(answers) == 2 and all(a.get("callback_query_id") for a in answers)
    assert "muted until" in answers[0]["text"]
    mutes = worker.store.mutes(T0)
    assert mutes["rut-2500"] == T0 + timedelta(hours=1)
    # "today": until the next local midnight (New York)
    assert mutes["rut-levels"] == datetime(2024, 11, 26, 5, 0, tzinfo=UTC)
    assert str(fake_telegram.sent_to(GROUP)[0].params.get("message_thread_id")) == "9"


def test_buttons_from_a_non_admin_are_answered_with_nothing_and_change_nothing(
    tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    worker = new_worker(make_config(tmp_path, fake_telegram), FakeClock(T0))

    async def scenario() -> None:
        async with running_cockpit(worker):
            fake_telegram.callback(GROUP, "mute1h:rut-2500", user_id=USER)
            fake_telegram.callback(GROUP, "chart:rut-2500", user_id=USER)
            await wait_for(lambda: len(fake_telegram.requests_for("answerCallbackQuery")) == 2)
            await asyncio.sleep(0.3)

    asyncio.run(scenario())
    assert worker.store.mutes(T0) == {}
    assert fake_telegram.sent_to(GROUP) == [] and fake_telegram.photos == []
    assert all("text" not in a for a in fake_telegram.requests_for("answerCallbackQuery"))


def test_chart_command_and_button_send_a_valid_png(
    tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    worker = new_worker(make_config(tmp_path, fake_telegram), FakeClock(T0))
    worker.store.save_history("RUT", rut_history())

    async def scenario() -> None:
        async with running_cockpit(worker):
            fake_telegram.message(PRIVATE, "/chart RUT 1y", thread_id=None)
            await wait_for(lambda: len(fake_telegram.photos) == 1)
            fake_telegram.callback(GROUP, "chart:rut-2500", user_id=ADMIN)
            await wait_for(lambda: len(fake_telegram.photos) == 2)
            fake_telegram.message(PRIVATE, "/chart RUT 2w")
            fake_telegram.message(PRIVATE, "/chart")
            fake_telegram.message(PRIVATE, "/chart FED")  # no history: said so
            await wait_for(lambda: len(fake_telegram.sent_to(PRIVATE)) == 3)

    asyncio.run(scenario())
    first, second = fake_telegram.photos
    assert first.chat_id == PRIVATE and second.chat_id == GROUP
    for photo in (first, second):
        width, height = png_size(photo.photo)
        assert width >= 400 and height >= 200
    assert first.caption == "Russell 2000 — 1y"
    usage1, usage2, missing = [m.text for m in fake_telegram.sent_to(PRIVATE)]
    assert usage1.startswith("Usage: /chart") and usage2.startswith("Usage: /chart")
    assert missing == "No history of FED yet."


def test_a_chart_true_alert_attaches_its_chart(tmp_path: Path, fake_telegram: FakeTelegram) -> None:
    worker = new_worker(make_config(tmp_path, fake_telegram), FakeClock(T0))
    worker.store.save_history("RUT", rut_history())

    async def scenario() -> None:
        async with running_cockpit(worker):
            notifier = worker.notifier
            assert isinstance(notifier, TelegramNotifier)
            await notifier.send(PRIVATE, _alert(chart=True))
            await notifier.send(PRIVATE, _alert("rut-levels"))

    asyncio.run(scenario())
    assert len(fake_telegram.sent_to(PRIVATE)) == 2
    (photo,) = fake_telegram.photos
    assert photo.chat_id == PRIVATE and png_size(photo.photo)[0] > 0


def test_chart_option_is_accepted_on_cross_and_record_rules(
    tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    extra = (
        "  - {id: rut-rec, type: record_close, symbol: RUT, chart: true}\n"
        "  - {id: rut-2700, type: cross, symbol: RUT, level: 2700, chart: true}\n"
    )
    config = make_config(tmp_path, fake_telegram, extra=extra)
    assert [getattr(p, "chart", None) for p in config.rules][-2:] == [True, True]


def test_a_button_pressed_in_an_unknown_chat_is_answered_empty_and_logged(
    tmp_path: Path, fake_telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    worker = new_worker(make_config(tmp_path, fake_telegram), FakeClock(T0))

    async def scenario() -> None:
        async with running_cockpit(worker):
            fake_telegram.callback(777, "mute1h:rut-2500", user_id=ADMIN)
            await wait_for(lambda: len(fake_telegram.requests_for("answerCallbackQuery")) == 1)

    asyncio.run(scenario())
    assert worker.store.mutes(T0) == {} and fake_telegram.messages == []
    assert "text" not in fake_telegram.requests_for("answerCallbackQuery")[0]
    assert any("refused" in r.getMessage() and "777" in r.getMessage() for r in caplog.records)


def test_replies_share_the_alerts_bot_and_its_rate_limiter(
    tmp_path: Path, fake_telegram: FakeTelegram
) -> None:
    from bot.cockpit.app import Cockpit
    from bot.notify.telegram import ChatRateLimiter

    worker = new_worker(make_config(tmp_path, fake_telegram), FakeClock(T0))
    notifier = worker.notifier
    assert isinstance(notifier, TelegramNotifier)
    cockpit = Cockpit(worker, notifier.bot)
    assert cockpit.app.bot is notifier.bot
    assert isinstance(notifier.bot.rate_limiter, ChatRateLimiter)


def test_charts_mark_the_alerts_that_were_sent(tmp_path: Path, fake_telegram: FakeTelegram) -> None:
    from bot.cockpit.chart import alert_marks

    worker = new_worker(make_config(tmp_path, fake_telegram), FakeClock(T0))
    alert = _alert()
    worker.store.commit({}, [(alert, ["traders", "desk"])], T0)
    assert alert_marks(worker, "RUT") == []  # queued, not sent
    worker.store.mark_sent(alert.id, "traders", T0, [1])
    worker.store.mark_sent(alert.id, "desk", T0, [2])
    assert alert_marks(worker, "RUT") == [(T0.date(), 2510.0, "rut-2500")]  # once per alert
