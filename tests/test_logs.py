"""setup_logging: the bot token never reaches the log output, at any level, from any logger."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import telegram

from bot.config import TelegramConfig
from bot.errors import register_secret
from bot.logs import QUIET_LOGGERS, setup_logging
from bot.model import Alert
from bot.notify.base import DeliveryFailed
from bot.notify.telegram import TelegramNotifier
from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram

SECRET_PART = FAKE_TOKEN.split(":")[1]


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put the root logger and the library loggers back the way they were."""
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    names = [*QUIET_LOGGERS, "httpx", "httpcore", "telegram", "demo"]
    saved = {name: logging.getLogger(name).level for name in names}
    factory = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(factory)
    for handler in root.handlers:
        if handler not in saved_root[1]:
            root.removeHandler(handler)
    root.setLevel(saved_root[0])
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(False)


def alert() -> Alert:
    return Alert(
        id="rut-2500:1",
        rule_id="rut-2500",
        rule_type="cross",
        symbol="RUT",
        time=datetime(2025, 9, 18, 14, 30, tzinfo=UTC),
        value=2505.0,
        text="RUT crossed 2,500",
    )


def test_library_loggers_are_turned_down() -> None:
    setup_logging("DEBUG", stream=io.StringIO())
    assert logging.getLogger().level == logging.DEBUG
    assert logging.getLogger("httpx").level == logging.WARNING
    assert logging.getLogger("httpcore").level == logging.WARNING
    assert logging.getLogger("telegram").level == logging.INFO
    setup_logging("ERROR", stream=io.StringIO())
    assert logging.getLogger("telegram").level == logging.ERROR
    assert logging.getLogger("httpx").level == logging.ERROR


def test_unknown_level_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        setup_logging("LOUD")


def test_token_absent_from_debug_output_of_every_logger_during_real_sends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = io.StringIO()
    setup_logging("DEBUG", stream=stream)
    # Worst case: someone turns the chatty libraries all the way up again. httpx now logs each
    # request URL (with /bot<token>/) and python-telegram-bot its Bot API URL and parameters.
    for name in ("httpx", "httpcore", "telegram"):
        logging.getLogger(name).setLevel(logging.DEBUG)

    async def run(fake: FakeTelegram) -> None:
        config = TelegramConfig(token=FAKE_TOKEN, base_url=fake.base_url, chats={"t": 42})
        notifier = TelegramNotifier(config)
        await notifier.start()
        await notifier.send(42, alert())
        fake.block(43)
        try:
            await notifier.send(43, alert())
        except DeliveryFailed:
            logging.getLogger("demo").exception("send failed")
        await notifier.stop()
        # A library exception that quotes the token, logged with its traceback.
        try:
            async with telegram.Bot(
                "111111111:AAwrongTokenForThisServer_abcdefgh", base_url=f"{fake.base_url}/bot"
            ):
                pass
        except telegram.error.InvalidToken:
            logging.getLogger("demo").exception("start failed")

    with FakeTelegram() as fake:
        asyncio.run(run(fake))

    output = stream.getvalue()
    # other handlers (here pytest's caplog) get the records already redacted too
    assert "/bot<redacted>/sendMessage" in caplog.text
    assert SECRET_PART not in caplog.text
    assert fake.messages, "the message went through the real client"
    assert "HTTP Request: POST http://127.0.0.1" in output  # httpx did log its URL lines...
    assert "/bot<redacted>/sendMessage" in output  # ...with the token redacted
    assert "start failed" in output and "InvalidToken" in output
    assert FAKE_TOKEN not in output
    assert SECRET_PART not in output
    assert "AAwrongTokenForThisServer" not in output


def test_filter_redacts_message_args_and_exception_text() -> None:
    stream = io.StringIO()
    setup_logging("INFO", stream=stream)
    register_secret("hunter2-database-password")
    log = logging.getLogger("demo")
    log.info("connecting to %s", "postgresql://bot:hunter2-database-password@db/state")
    log.warning("token %s in args, %d", FAKE_TOKEN, 3)
    try:
        raise RuntimeError(f"request to https://api.telegram.org/bot{FAKE_TOKEN}/getMe failed")
    except RuntimeError:
        log.exception("with traceback")
    log.info("stack", stack_info=True, extra={"note": FAKE_TOKEN})

    output = stream.getvalue()
    assert "postgresql://bot:<redacted>@db/state" in output
    assert "token <redacted> in args, 3" in output
    assert "RuntimeError: request to https://api.telegram.org/bot<redacted>/getMe" in output
    assert "hunter2" not in output and SECRET_PART not in output


def test_setup_twice_keeps_one_handler() -> None:
    root = logging.getLogger()
    before = len(root.handlers)
    setup_logging("INFO", stream=io.StringIO())
    setup_logging("INFO", stream=io.StringIO())
    assert len(root.handlers) == before + 1
