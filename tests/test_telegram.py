"""TelegramNotifier through the real python-telegram-bot client against the fake Bot API server."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import telegram

from bot.config import TelegramConfig
from bot.errors import NotifyError
from bot.model import Alert
from bot.notify.base import NOTIFIERS, DeliveryFailed
from bot.notify.split import utf16_len
from bot.notify.telegram import ChatRateLimiter, RateLimits, TelegramNotifier, format_alert_html
from tests.fakes.telegram import (
    FAKE_TOKEN,
    Failure,
    FakeTelegram,
    Limits,
    bad_json,
    blocked,
    cant_parse_entities,
    chat_not_found,
    kicked,
    migrated,
    rate_limited,
    server_error,
)

T0 = datetime(2025, 9, 18, 14, 30, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


def make_alert(text: str = "RUT crossed 2,500", *, silent: bool = False, n: int = 1) -> Alert:
    return Alert(
        id=f"rut-2500:{n}",
        rule_id="rut-2500",
        rule_type="cross",
        symbol="RUT",
        time=T0,
        value=2505.0,
        text=text,
        silent=silent,
    )


def make_notifier(
    base_url: str,
    *,
    token: str = FAKE_TOKEN,
    rate_limits: RateLimits | None = None,
    timeout: timedelta = timedelta(seconds=5),
) -> TelegramNotifier:
    config = TelegramConfig(token=token, base_url=base_url, chats={"traders": 42}, timeout=timeout)
    return TelegramNotifier(config, rate_limits=rate_limits)


async def send(notifier: TelegramNotifier, chat_id: int | str, alert: Alert) -> list[int]:
    await notifier.start()
    try:
        return await notifier.send(chat_id, alert)
    finally:
        await notifier.stop()


async def send_failure(notifier: TelegramNotifier, chat_id: int | str) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as info:
        await send(notifier, chat_id, make_alert())
    return info.value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# The fake itself speaks the Bot API
# ---------------------------------------------------------------------------------------------


def test_fake_answers_getme_and_sendmessage_in_bot_api_shapes(fake: FakeTelegram) -> None:
    async def run() -> tuple[telegram.User, telegram.Message]:
        async with telegram.Bot(FAKE_TOKEN, base_url=f"{fake.base_url}/bot") as bot:
            me = await bot.get_me()
            message = await bot.send_message(-100123, "<i>hi</i>", parse_mode="HTML")
            return me, message

    me, message = asyncio.run(run())
    assert me.is_bot and me.id == 123456789
    assert message.chat.type == "supergroup" and message.chat.id == -100123
    assert message.text == "hi"

    # JSON bodies and GET query strings work too; wrong tokens get 401
    url = f"{fake.base_url}/bot{FAKE_TOKEN}/sendMessage"
    answer = httpx.post(url, json={"chat_id": 7, "text": "json", "disable_notification": True})
    assert answer.json()["ok"] is True
    assert answer.json()["result"]["chat"] == {"id": 7, "type": "private", "first_name": "Trader"}
    assert httpx.get(url, params={"chat_id": "@news", "text": "q"}).json()["ok"] is True
    bad = httpx.post(f"{fake.base_url}/bot1:wrong/getMe")
    assert bad.status_code == 401 and bad.json()["description"] == "Unauthorized"

    assert [(m.chat_id, m.text, m.disable_notification) for m in fake.messages] == [
        (-100123, "<i>hi</i>", False),
        (7, "json", True),
        ("@news", "q", False),
    ]


def test_fake_rejects_html_telegram_would_reject(fake: FakeTelegram) -> None:
    url = f"{fake.base_url}/bot{FAKE_TOKEN}/sendMessage"
    for text, complaint in [
        ("1 < 2", "Unsupported start tag"),
        ("AT&T", "Character entity expected"),
        ("<b>bold", "Can't find end tag"),
        ("<script>x</script>", 'Unsupported start tag "script"'),
        ("x" * 4097, "message is too long"),
    ]:
        answer = httpx.post(url, data={"chat_id": 1, "text": text, "parse_mode": "HTML"})
        assert answer.status_code == 400, text
        assert complaint in answer.json()["description"], text
    assert fake.messages == []


def test_fake_scripted_failures_use_telegram_error_bodies(fake: FakeTelegram) -> None:
    url = f"{fake.base_url}/bot{FAKE_TOKEN}/sendMessage"
    fake.fail(rate_limited(5), chat_id=1)
    fake.fail(server_error(502))
    assert httpx.post(url, data={"chat_id": 2, "text": "a"}).status_code == 502
    body = httpx.post(url, data={"chat_id": 1, "text": "a"}).json()
    assert body == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 5",
        "parameters": {"retry_after": 5},
    }
    assert httpx.post(url, data={"chat_id": 1, "text": "a"}).json()["ok"] is True
    assert [c.status for c in fake.calls] == [502, 429, 200]


def test_fake_enforces_limits_when_asked() -> None:
    # A frozen clock: every message lands "at once", whatever the machine's speed.
    with FakeTelegram(limits=Limits(), clock=lambda: 0.0) as fake:
        url = f"{fake.base_url}/bot{FAKE_TOKEN}/sendMessage"
        answers = [httpx.post(url, data={"chat_id": 5, "text": str(n)}) for n in range(5)]
    # a burst of 3 is tolerated, the 4th message within a second is not
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert answers[3].json()["parameters"]["retry_after"] >= 1
    assert fake.rate_limited == 2


# ---------------------------------------------------------------------------------------------
# Sending
# ---------------------------------------------------------------------------------------------


def test_notifier_is_registered() -> None:
    assert NOTIFIERS.get("telegram") is TelegramNotifier


def test_text_is_escaped_and_first_line_bold(fake: FakeTelegram) -> None:
    text = "Russell 2000 <RUT> crossed 2,500 & up\nvalue 2,505.3 > level <b>not a tag</b>"
    ids = asyncio.run(send(make_notifier(fake.base_url), 42, make_alert(text)))

    [message] = fake.messages
    assert ids == [message.message_id]
    assert message.chat_id == 42
    assert message.parse_mode == "HTML"
    assert message.text == (
        "<b>Russell 2000 &lt;RUT&gt; crossed 2,500 &amp; up</b>\n"
        "value 2,505.3 &gt; level &lt;b&gt;not a tag&lt;/b&gt;"
    )
    assert message.plain == text  # what the user reads is exactly the alert text
    assert message.disable_notification is False


def test_silent_alert_is_sent_without_notification(fake: FakeTelegram) -> None:
    asyncio.run(send(make_notifier(fake.base_url), "@alerts", make_alert(silent=True)))
    [message] = fake.messages
    assert message.chat_id == "@alerts"
    assert message.disable_notification is True


def test_ten_thousand_character_alert_is_split_into_balanced_parts(fake: FakeTelegram) -> None:
    lines = [f"{n:03d} RUT <close> & change " + "=" * 80 for n in range(100)]
    text = "Digest of 100 lines\n" + "\n".join(lines)
    assert len(text) > 10_000

    ids = asyncio.run(send(make_notifier(fake.base_url), 42, make_alert(text)))

    # the fake checks each part's HTML like Telegram and would have answered 400 otherwise
    assert len(ids) == len(fake.messages) == 3
    assert ids == sorted(ids)
    for message in fake.messages:
        assert utf16_len(message.text) <= 4096
        assert message.parse_mode == "HTML"
    assert fake.messages[0].text.startswith("<b>Digest of 100 lines</b>\n000 RUT &lt;close&gt;")
    assert "\n".join(m.plain for m in fake.messages) == text


def test_one_line_longer_than_a_message_is_split_with_bold_kept(fake: FakeTelegram) -> None:
    text = " ".join(["word&"] * 1000)  # 10,000 chars of HTML in the (bold) first line
    asyncio.run(send(make_notifier(fake.base_url), 42, make_alert(text)))
    assert len(fake.messages) == 3
    for message in fake.messages:
        assert message.text.startswith("<b>") and message.text.endswith("</b>")
    assert " ".join(m.plain for m in fake.messages) == text


def test_format_never_leaves_raw_markup() -> None:
    assert format_alert_html(make_alert("a<b>&c")) == "<b>a&lt;b&gt;&amp;c</b>"
    assert format_alert_html(make_alert("\nsecond")) == "<b>second</b>"
    assert format_alert_html(make_alert("")) == "<b>rut-2500:1</b>"


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "permanent", "retry_after", "migrate_to", "words"),
    [
        (rate_limited(7), False, 7.0, None, "retry after 7"),
        (blocked(), True, None, None, "bot was blocked by the user"),
        (kicked(), True, None, None, "kicked from the group"),
        (chat_not_found(), True, None, None, "chat not found"),
        (migrated(-1001234567890), False, None, -1001234567890, "supergroup"),
        (server_error(500), False, None, None, "Internal Server Error"),
        (server_error(502), False, None, None, "Bad Gateway"),
        (Failure(400, "Bad Request: message text is empty"), True, None, None, "empty"),
    ],
)
def test_bot_api_errors_map_to_delivery_failed(
    fake: FakeTelegram,
    failure: Failure,
    permanent: bool,
    retry_after: float | None,
    migrate_to: int | None,
    words: str,
) -> None:
    fake.fail(failure, chat_id=-555)
    exc = asyncio.run(send_failure(make_notifier(fake.base_url), -555))
    assert exc.permanent is permanent
    assert exc.retry_after == retry_after
    assert exc.migrate_to == migrate_to
    assert words.lower() in str(exc).lower()
    assert str(exc).startswith("chat -555: ")
    assert exc.__cause__ is None and exc.__suppress_context__


def test_unreachable_server_is_retryable() -> None:
    notifier = make_notifier(f"http://127.0.0.1:{closed_port()}")
    exc = asyncio.run(send_failure(notifier, 42))
    assert not exc.permanent and exc.retry_after is None and exc.migrate_to is None
    assert "Telegram unavailable" in str(exc)


def test_timeout_is_retryable(fake: FakeTelegram) -> None:
    async def run() -> DeliveryFailed:
        notifier = make_notifier(fake.base_url, timeout=timedelta(seconds=0.2))
        await notifier.start()
        fake.delay = 1.0  # getMe answered; the send times out
        try:
            with pytest.raises(DeliveryFailed) as info:
                await notifier.send(42, make_alert())
            return info.value
        finally:
            await notifier.stop()

    exc = asyncio.run(run())
    assert not exc.permanent
    assert "timed out" in str(exc)


def test_rejected_token_at_start_is_a_notify_error_without_the_token(fake: FakeTelegram) -> None:
    other = "987654321:AAAnotherTokenThatTheServerRejects_xyz"
    notifier = make_notifier(fake.base_url, token=other)
    with pytest.raises(NotifyError) as info:
        asyncio.run(notifier.start())
    text = "".join(traceback.format_exception(info.value))
    assert "rejected the token" in text
    assert other not in text and "AAAnotherToken" not in text


def test_rejected_token_at_send_is_retryable(fake: FakeTelegram) -> None:
    notifier = make_notifier(
        fake.base_url, token="987654321:AAAnotherTokenThatTheServerRejects_xyz"
    )

    async def run() -> DeliveryFailed:
        try:
            with pytest.raises(DeliveryFailed) as info:
                await notifier.send(42, make_alert())  # no start(): the first send starts
            return info.value
        finally:
            await notifier.stop()

    exc = asyncio.run(run())
    assert not exc.permanent and "rejected the token" in str(exc)
    assert "AAAnotherToken" not in str(exc)


def test_token_never_in_exception_text(fake: FakeTelegram) -> None:
    failures: list[BaseException] = []
    for failure in (rate_limited(3), blocked(), chat_not_found(), migrated(-100), server_error()):
        fake.fail(failure)
        failures.append(asyncio.run(send_failure(make_notifier(fake.base_url), 42)))
    failures.append(
        asyncio.run(send_failure(make_notifier(f"http://127.0.0.1:{closed_port()}"), 1))
    )
    for exc in failures:
        text = "".join(traceback.format_exception(exc)) + repr(exc) + repr(exc.args)
        assert FAKE_TOKEN not in text
        assert FAKE_TOKEN.split(":")[1] not in text


# ---------------------------------------------------------------------------------------------
# Rate limits
# ---------------------------------------------------------------------------------------------

# Everything ten (or fifty) times faster, so the test takes about a second of real time.
FAST = 0.02


async def fan_out(fake: FakeTelegram, rate_limits: RateLimits | None) -> None:
    """22 messages to one group and 10 to each of three private chats, chats concurrently."""
    notifier = make_notifier(fake.base_url, rate_limits=rate_limits)
    await notifier.start()

    async def to_chat(chat_id: int, count: int) -> None:
        for n in range(count):
            await notifier.send(chat_id, make_alert(f"message {n}", n=n))

    try:
        await asyncio.gather(to_chat(-100777, 22), *(to_chat(c, 10) for c in (1, 2, 3)))
    finally:
        await notifier.stop()


def test_rate_limiter_keeps_every_limit_of_an_enforcing_server() -> None:
    # chat_burst 6: at this speed a busy CI machine's scheduling jitter (tens of ms) must not
    # look like a burst; the sustained per-chat rate is still enforced.
    with FakeTelegram(limits=Limits(time_factor=FAST, chat_burst=6)) as fake:
        asyncio.run(fan_out(fake, RateLimits(time_factor=FAST)))
    assert fake.rate_limited == 0
    assert len(fake.messages) == 52
    for chat_id, count in ((-100777, 22), (1, 10), (2, 10), (3, 10)):
        assert [m.plain for m in fake.sent_to(chat_id)] == [f"message {n}" for n in range(count)]


def test_without_the_limiter_the_enforcing_server_answers_429() -> None:
    # The control for the test above: the same load unthrottled does break the limits.
    with (
        FakeTelegram(limits=Limits(time_factor=FAST, chat_burst=6)) as fake,
        pytest.raises(DeliveryFailed) as info,
    ):
        asyncio.run(fan_out(fake, None))
    assert info.value.retry_after is not None
    assert fake.rate_limited > 0


def test_rate_limits_default_to_telegrams() -> None:
    limits = RateLimits()
    assert (limits.per_chat_per_second, limits.group_per_minute, limits.overall_per_second) == (
        1.0,
        20.0,
        30.0,
    )
    # a notifier built from config throttles by default
    notifier = NOTIFIERS.get("telegram")(
        TelegramConfig(token=FAKE_TOKEN, chats={"traders": 42}, base_url="http://127.0.0.1:9")
    )
    assert notifier.rate_limits == RateLimits()
    assert timedelta(seconds=15) == notifier.config.timeout


# ---------------------------------------------------------------------------------------------
# A total deadline per Bot API request
# ---------------------------------------------------------------------------------------------


def deadline_notifier(base_url: str, *, timeout: float, deadline: float) -> TelegramNotifier:
    config = TelegramConfig(
        token=FAKE_TOKEN,
        base_url=base_url,
        chats={"traders": 42},
        timeout=timedelta(seconds=timeout),
        deadline=timedelta(seconds=deadline),
    )
    return TelegramNotifier(config, rate_limits=None)


def send_misbehaving(fake: FakeTelegram, notifier: TelegramNotifier, guard: float) -> float:
    """Send once after getMe; the seconds it took until DeliveryFailed (``guard``: give up)."""

    async def run() -> float:
        await notifier.start()
        fake.trickle, fake.stall = trickle, stall
        started = time.monotonic()
        try:
            with pytest.raises(DeliveryFailed) as info:
                await asyncio.wait_for(notifier.send(42, make_alert()), guard)
            assert not info.value.permanent and "deadline" in str(info.value)
            return time.monotonic() - started
        finally:
            fake.trickle, fake.stall = None, False
            await notifier.stop()

    trickle, stall = fake.trickle, fake.stall
    fake.trickle, fake.stall = None, False
    return asyncio.run(run())


def test_trickled_answer_is_cut_off_at_the_total_deadline(fake: FakeTelegram) -> None:
    # every read gets a byte well within the 2 s read timeout; the whole answer would take 60 s
    fake.trickle = 0.2
    notifier = deadline_notifier(fake.base_url, timeout=2, deadline=0.6)
    assert send_misbehaving(fake, notifier, guard=5) < 2


def test_answer_stalled_after_headers_is_cut_off_at_the_total_deadline(fake: FakeTelegram) -> None:
    fake.stall = True
    notifier = deadline_notifier(fake.base_url, timeout=3, deadline=0.5)
    assert send_misbehaving(fake, notifier, guard=5) < 2


def test_deadline_defaults_to_twice_the_timeout() -> None:
    config = TelegramConfig(token=FAKE_TOKEN, chats={"t": 1}, timeout=timedelta(seconds=15))
    assert config.request_deadline == timedelta(seconds=30)
    config = TelegramConfig(token=FAKE_TOKEN, chats={"t": 1}, deadline=timedelta(seconds=7))
    assert config.request_deadline == timedelta(seconds=7)


# ---------------------------------------------------------------------------------------------
# Bugs are bugs; handled events are one line
# ---------------------------------------------------------------------------------------------


def test_unexpected_exception_keeps_its_type_and_traceback(
    fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: ChatRateLimiter, chat_id: str | int) -> None:
        raise KeyError("a bug in our own code")

    monkeypatch.setattr(ChatRateLimiter, "_chat_limiter", broken)
    notifier = make_notifier(fake.base_url, rate_limits=RateLimits())
    with pytest.raises(KeyError) as info:
        asyncio.run(send(notifier, 42, make_alert()))
    assert "broken" in "".join(traceback.format_tb(info.value.__traceback__))


def test_import_leaves_the_environment_alone_and_429_gives_no_deprecation_warning(
    fake: FakeTelegram,
) -> None:
    fake.fail(rate_limited(3), chat_id=42)
    script = f"""
import asyncio, os, sys, warnings
sys.path.insert(0, {str(ROOT)!r})
from telegram.warnings import PTBDeprecationWarning
warnings.simplefilter("error", PTBDeprecationWarning)
os.environ.pop("PTB_TIMEDELTA", None)
before = dict(os.environ)
import bot.notify.telegram as t
from tests.test_telegram import make_notifier, send_failure
assert dict(os.environ) == before, "os.environ changed at import"
exc = asyncio.run(send_failure(make_notifier({fake.base_url!r}), 42))
assert exc.retry_after == 3, exc
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def _loud(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    """Records a default (INFO) log would show with a traceback, or at ERROR."""
    return [
        r
        for r in records
        if r.levelno >= logging.ERROR or (r.levelno >= logging.INFO and r.exc_info)
    ]


def test_a_429_through_the_rate_limiter_logs_no_error_or_traceback(
    fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail(rate_limited(3), chat_id=42)
    notifier = make_notifier(fake.base_url, rate_limits=RateLimits(time_factor=0.01))
    with caplog.at_level(logging.INFO):
        exc = asyncio.run(send_failure(notifier, 42))
    assert exc.retry_after == 3
    assert _loud(caplog.records) == []


def test_bad_json_from_telegram_is_retryable_and_one_line(
    fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail(bad_json(), chat_id=42)
    with caplog.at_level(logging.INFO):
        exc = asyncio.run(send_failure(make_notifier(fake.base_url), 42))
    assert not exc.permanent and "invalid server response" in str(exc).lower()
    assert _loud(caplog.records) == []


def test_handled_events_keep_their_traceback_at_debug(
    fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail(bad_json(), chat_id=42)
    with caplog.at_level(logging.DEBUG):
        asyncio.run(send_failure(make_notifier(fake.base_url), 42))
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    assert debug and "invalid JSON" in debug[0].getMessage()


def test_plain_text_fallback_at_the_notifier(fake: FakeTelegram) -> None:
    fake.fail(cant_parse_entities(), chat_id=42, html_only=True, times=None)
    asyncio.run(send(make_notifier(fake.base_url), 42, make_alert("a < b & c\nmore")))
    [message] = fake.sent_to(42)
    assert (message.parse_mode, message.text) == (None, "a < b & c\nmore")


def test_chat_not_found_is_not_retried_as_plain_text(fake: FakeTelegram) -> None:
    fake.forget_chat(42)
    exc = asyncio.run(send_failure(make_notifier(fake.base_url), 42))
    assert exc.permanent
    assert len(fake.calls_to(42)) == 1
