"""setup_logging: the bot token never reaches the log output, at any level, from any logger."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import telegram

from bot import lifecycle
from bot.config import TelegramConfig
from bot.errors import register_secret
from bot.logs import CHATTY_LOGGERS, QUIET_LOGGERS, log_failure, setup_logging
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
    names = [*QUIET_LOGGERS, *CHATTY_LOGGERS, "httpx", "httpcore", "telegram", "demo"]
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


# ---------------------------------------------------------------- closed stderr, one-line errors


def test_a_closed_log_stream_goes_quiet_and_asks_the_process_to_stop(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run 2>&1 | head``: the log handler finds its pipe closed. No "--- Logging error ---"
    traceback per record; the handler goes quiet and the process is asked to stop."""
    monkeypatch.setattr(lifecycle, "_closed", [])  # this process's real outputs stay open
    reasons: list[str] = []
    read_end, write_end = os.pipe()
    os.close(read_end)
    stream = os.fdopen(write_end, "w")
    lifecycle.add_listener(reasons.append)
    try:
        handler = setup_logging("INFO", stream=stream)
        log = logging.getLogger("demo")
        log.warning("first line nobody reads")
        log.warning("second line nobody reads")
        assert reasons and "closed" in reasons[0]
        assert getattr(handler, "silenced", False)
    finally:
        lifecycle.remove_listener(reasons.append)
        with contextlib.suppress(OSError):
            stream.close()
    captured = capfd.readouterr()
    assert "Logging error" not in captured.err and "Traceback" not in captured.err


def test_apscheduler_chatter_is_hidden_but_skipped_runs_still_show() -> None:
    """At INFO, APScheduler's "Adding job tentatively" / "Running job" / "executed
    successfully" lines are hidden; "skipped: maximum number of running instances" is a
    WARNING and shows. At DEBUG its chatter is back."""
    info = _scheduler_log("INFO")
    assert "Running job" not in info
    assert "Adding job tentatively" not in info and "executed successfully" not in info
    assert "WARNING" in info and "skipped: maximum number of running instances" in info
    assert "Running job" in _scheduler_log("DEBUG")


def _scheduler_log(level: str) -> str:
    """The log of a real AsyncIOScheduler whose job is asked to run while it still runs."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    stream = io.StringIO()
    setup_logging(level, stream=stream)

    async def scenario() -> None:
        scheduler = AsyncIOScheduler(timezone=UTC)
        started, release = asyncio.Event(), asyncio.Event()

        async def job() -> None:
            started.set()
            await release.wait()

        scheduler.add_job(  # added before start: "Adding job tentatively"
            job, "interval", hours=1, id="slow", max_instances=1, next_run_time=datetime.now(UTC)
        )
        scheduler.start()
        try:
            await asyncio.wait_for(started.wait(), 10)
            scheduler.get_job("slow").modify(next_run_time=datetime.now(UTC))
            for _ in range(500):  # until the scheduler has tried (and skipped) the second run
                if "skipped" in stream.getvalue():
                    break
                await asyncio.sleep(0.01)
            release.set()
            await asyncio.sleep(0.05)  # let the first run finish ("executed successfully")
        finally:
            scheduler.shutdown(wait=False)

    asyncio.run(scenario())
    return stream.getvalue()


def test_log_failure_is_one_line_with_the_traceback_only_at_debug() -> None:
    stream = io.StringIO()
    setup_logging("INFO", stream=stream)
    log = logging.getLogger("demo")
    try:
        raise sqlite3.OperationalError("database or disk is full")
    except sqlite3.OperationalError as exc:
        log_failure(log, "poll cycle failed", exc, "retrying next cycle")
        output = stream.getvalue()
        assert output.count("\n") == 1 and "Traceback" not in output
        assert (
            "poll cycle failed (OperationalError: database or disk is full); retrying next cycle"
            in output
        )
        setup_logging("DEBUG", stream=stream)
        log_failure(log, "poll cycle failed", exc, "retrying next cycle")
    assert "Traceback" in stream.getvalue()


def test_json_format_is_one_object_per_line_with_secrets_redacted() -> None:
    """``--log-format json``: each record one JSON object; the cycle's structured fields come
    along; the token is redacted in the message, the fields and the exception text."""
    import json

    stream = io.StringIO()
    setup_logging("INFO", stream=stream, fmt="json")
    log = logging.getLogger("demo")
    log.info("cycle: %s", "polled RUT", extra={"cycle": {"polled": ["RUT"], "err": FAKE_TOKEN}})
    try:
        raise RuntimeError(f"https://api.telegram.org/bot{FAKE_TOKEN}/getMe failed")
    except RuntimeError:
        log.exception("send failed for %s", FAKE_TOKEN)

    output = stream.getvalue()
    assert SECRET_PART not in output
    first, second = (json.loads(line) for line in output.splitlines())
    assert first["message"] == "cycle: polled RUT" and first["level"] == "INFO"
    assert first["cycle"] == {"polled": ["RUT"], "err": "<redacted>"}
    assert first["logger"] == "demo" and first["time"].endswith("+00:00")
    assert "RuntimeError" in second["exception"] and "<redacted>" in second["exception"]


def test_unknown_log_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="log format"):
        setup_logging("INFO", stream=io.StringIO(), fmt="xml")
