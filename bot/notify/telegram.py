"""The Telegram notifier: python-telegram-bot against the configured Bot API root, within limits.

Messages use HTML parse mode. An alert's text is plain text, so all of it is escaped (the first
line is shown bold); texts over 4,096 characters are sent as several messages cut on line
boundaries (:mod:`bot.notify.split`). Every Bot API error becomes a
:class:`~bot.notify.base.DeliveryFailed` that tells the sender what to do:

=========================================  ==============================================
Telegram says                              DeliveryFailed
=========================================  ==============================================
429 Too Many Requests (``retry_after``)     ``retry_after`` = the seconds asked for
403 bot blocked / kicked                   ``permanent``
400 can't parse entities                   resent at once as plain text (tags stripped)
400 chat not found, other 400s             ``permanent`` (the same request would fail again)
400 with ``migrate_to_chat_id``            ``migrate_to`` = the supergroup's new id
401/404 token rejected                     retryable (fix the config; nothing is lost)
5xx, network errors, timeouts, bad JSON    retryable
=========================================  ==============================================

Any other exception is a bug and is not wrapped: it keeps its type and traceback, so the sender
fails that row loudly once instead of retrying it as if Telegram were down.

Every Bot API request has a total deadline (``telegram.deadline``, default twice ``timeout``) on
top of httpx's per-read timeouts, so an answer that trickles in or stalls after its headers
cannot hold a send longer than that. A long alert is sent part by part; the sender is told of
each part Telegram accepted (``on_part``) and a retry starts after those.

python-telegram-bot's own log lines for events handled here (a 429 its rate limiter passes on,
a body that is not JSON) are dropped, or kept at DEBUG with their traceback when DEBUG is on:
the sender logs one line per event.

Flood limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this)
are kept by :class:`ChatRateLimiter`: python-telegram-bot's ``AIORateLimiter`` (overall and
per-group limits, through ``ExtBot(rate_limiter=...)``) plus the per-chat limit it lacks, all
on ``aiolimiter`` buckets. The bot token never reaches an exception or log text from here:
messages are built without it and :class:`~bot.errors.BotError` redacts what it is given.

Length (over 400 lines): the error table above, the request deadline and the rate limiter are
one notifier's contract with the Bot API; message splitting already lives in
:mod:`bot.notify.split`.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from aiolimiter import AsyncLimiter
from telegram import InlineKeyboardMarkup, LinkPreviewOptions, Message
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import AIORateLimiter, ExtBot
from telegram.request import HTTPXRequest, RequestData
from telegram.warnings import PTBDeprecationWarning

from bot.cockpit.buttons import alert_keyboard
from bot.config import TelegramConfig
from bot.errors import NotifyError, redact, register_secret
from bot.model import Alert
from bot.notify.base import NOTIFIERS, DeliveryFailed, Notifier
from bot.notify.split import TELEGRAM_LIMIT, html_to_plain, split_html

log = logging.getLogger(__name__)

# python-telegram-bot reads ``RetryAfter.retry_after`` itself while building the exception for
# a 429 and warns that the attribute will become a timedelta; we read it without the warning
# (``_seconds``). Silence just that notice instead of setting ``PTB_TIMEDELTA`` in os.environ
# (process-wide state other code may read).
warnings.filterwarnings(
    "ignore", message=r".*attribute `retry_after` will be", category=PTBDeprecationWarning
)

PartSent = Callable[[int], Awaitable[None]]

_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

JSONish = bool | dict[str, Any] | list[dict[str, Any]]


@dataclass(frozen=True)
class RateLimits:
    """The flood limits to keep, as rates a sender must not exceed.

    Defaults are Telegram's: about one message per second per chat (short bursts tolerated),
    20 messages per minute per group or channel, 30 messages per second overall.
    ``time_factor`` < 1 shortens every period (benchmarks against a time-scaled fake server).
    """

    per_chat_per_second: float = 1.0
    group_per_minute: float = 20.0
    overall_per_second: float = 30.0
    time_factor: float = 1.0
    #: How many messages a group may get at once; the rest of the per-minute budget is its
    #: steady refill (burst + refill per minute stays below ``group_per_minute``).
    group_burst: float | None = None


class _HandledElsewhere(logging.Filter):
    """Drops python-telegram-bot's ERROR-with-traceback for an event this module handles (a
    429 passed on by the rate limiter, a body that is not JSON); with DEBUG on for that logger
    the record is kept, as a DEBUG line with its traceback."""

    def __init__(self, *starts: str) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG or not str(record.msg).startswith(self.starts):
            return True
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def _quiet_library_logs() -> None:
    """Install the :class:`_HandledElsewhere` filters once (idempotent)."""
    for name, starts in (
        ("telegram.ext.AIORateLimiter", ("Rate limit hit",)),
        ("telegram.request.BaseRequest", ("Can not load invalid JSON",)),
    ):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _HandledElsewhere) for f in logger.filters):
            logger.addFilter(_HandledElsewhere(*starts))


class DeadlineRequest(HTTPXRequest):
    """``HTTPXRequest`` with a total deadline per request, whatever the server does.

    httpx's timeouts bound each read (and connect, write, pool wait); a server that sends its
    headers and then one byte a second never trips them. Past ``deadline`` seconds the request
    is cancelled and fails as python-telegram-bot's ``TimedOut`` (retryable).
    """

    def __init__(self, *, deadline: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deadline = deadline

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        write_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        connect_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        pool_timeout: Any = HTTPXRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Run the request; ``TimedOut`` if the whole answer is not in within the deadline."""
        try:
            async with asyncio.timeout(self.deadline) as scope:
                return await super().do_request(
                    url,
                    method,
                    request_data=request_data,
                    read_timeout=read_timeout,
                    write_timeout=write_timeout,
                    connect_timeout=connect_timeout,
                    pool_timeout=pool_timeout,
                )
        except TimeoutError:
            if not scope.expired():
                raise
            raise TimedOut(f"no complete answer within the {self.deadline:g} s deadline") from None


class ChatRateLimiter(AIORateLimiter):
    """``AIORateLimiter`` plus a per-chat limit, tuned so no window is ever over the limit.

    ``AIORateLimiter`` only throttles groups and the bot as a whole; private chats are limited
    too (about 1/s each), so every request with a ``chat_id`` first passes that chat's own
    bucket. The buckets are sized so that even a strict sliding-window reading of Telegram's
    limits holds: the overall bucket paces evenly (no burst of 30 followed by 30 more within the
    same second) at 29/s; a group's bucket allows a burst of 10 and refills 9 per minute, so no
    60 s window sees more than 19. (A leaky bucket can't give both a full burst and the full
    sustained rate under a sliding window: burst + refill per window must stay below the limit.)
    Requests without a chat (getMe) are not throttled.
    A 429 is not retried here (``max_retries=0``): it goes back to the sender, which delays only
    that chat.
    """

    def __init__(self, limits: RateLimits | None = None) -> None:
        limits = limits or RateLimits()
        f = limits.time_factor
        overall = max(limits.overall_per_second - 1, 1.0)  # one below the limit: a safety margin
        group_burst = limits.group_burst or max(limits.group_per_minute // 2, 1.0)
        group_refill = max(limits.group_per_minute - group_burst - 1, 1.0)  # per minute
        super().__init__(
            overall_max_rate=1,
            overall_time_period=f / overall,
            group_max_rate=group_burst,
            group_time_period=60.0 * f * group_burst / group_refill,
            max_retries=0,
        )
        self._chat_period = f / limits.per_chat_per_second
        self._chat_limiters: dict[str | int, AsyncLimiter] = {}

    def _chat_limiter(self, chat_id: str | int) -> AsyncLimiter:
        limiter = self._chat_limiters.get(chat_id)
        if limiter is None:
            if len(self._chat_limiters) > 1024:
                # forget idle chats (a full bucket means nothing sent for a while)
                for key, idle in list(self._chat_limiters.items()):
                    if idle.has_capacity(idle.max_rate):
                        del self._chat_limiters[key]
            limiter = self._chat_limiters[chat_id] = AsyncLimiter(1, self._chat_period)
        return limiter

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSONish]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> JSONish:
        """Wait for the chat's own bucket, then for the group and overall ones."""
        chat_id = data.get("chat_id")
        if chat_id is None:
            return await super().process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )
        key: str | int = chat_id
        with contextlib.suppress(TypeError, ValueError):
            key = int(chat_id)
        async with self._chat_limiter(key):
            return await super().process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )


def format_alert_html(alert: Alert) -> str:
    """The alert as Telegram HTML: every character of its text escaped, the first line bold."""
    text = alert.text.strip("\n") or alert.id
    first, newline, rest = text.partition("\n")
    head = html.escape(first, quote=False)
    out = f"<b>{head}</b>" if first.strip() else head
    return f"{out}\n{html.escape(rest, quote=False)}" if newline else out


@NOTIFIERS.register("telegram")
class TelegramNotifier(Notifier):
    """Sends alerts through the Bot API at ``config.base_url`` with python-telegram-bot.

    ``rate_limits``: the limits to keep (Telegram's by default); ``None`` turns throttling off
    (tests that are not about it). The bot is created on :meth:`start` (or the first send) inside
    the running event loop.
    """

    type_name: ClassVar[str] = "telegram"

    def __init__(
        self,
        config: TelegramConfig,
        *,
        rate_limits: RateLimits | None = RateLimits(),
        max_length: int = TELEGRAM_LIMIT,
    ) -> None:
        if not config.token:
            raise NotifyError("the Telegram notifier needs telegram.token")
        register_secret(config.token)
        self.config = config
        self.rate_limits = rate_limits
        self.max_length = max_length
        self._bot: ExtBot[Any] | None = None
        self._ready = False
        #: the chart to attach to an alert with ``chart`` set (the cockpit provides it)
        self.chart_for: Callable[[Alert], Awaitable[bytes | None]] | None = None

    @property
    def bot(self) -> ExtBot[Any]:
        """The bot (created on first use): the cockpit answers commands through it, so its
        replies pass the same rate limiter as alerts."""
        if self._bot is None:
            self._bot = self._make_bot()
        return self._bot

    @property
    def api_root(self) -> str:
        """The Bot API root, without the token (safe to show)."""
        return self.config.base_url.rstrip("/")

    def _make_bot(self) -> ExtBot[Any]:
        timeout = self.config.timeout.total_seconds()
        request = DeadlineRequest(
            deadline=self.config.request_deadline.total_seconds(),
            connection_pool_size=64,  # chats are sent to concurrently
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
            pool_timeout=timeout,
        )
        limiter = ChatRateLimiter(self.rate_limits) if self.rate_limits else None
        assert self.config.token  # checked in __init__
        _quiet_library_logs()
        return ExtBot(
            self.config.token,
            base_url=f"{self.api_root}/bot",
            request=request,
            get_updates_request=HTTPXRequest(connection_pool_size=1),
            rate_limiter=limiter,
        )

    async def start(self) -> None:
        """Create the bot and check the token with ``getMe``.

        A rejected token is a :class:`NotifyError` (fix the config); Telegram being unreachable
        is only logged — sends will try again and undelivered alerts stay queued.
        """
        if self._bot is None:
            self._bot = self._make_bot()
        try:
            await self._bot.initialize()
            self._ready = True
            log.info("telegram: connected to %s as @%s", self.api_root, self._bot.username)
        except InvalidToken:
            raise NotifyError(
                f"telegram: the Bot API at {self.api_root} rejected the token "
                "(check telegram.token / TELEGRAM_BOT_TOKEN)"
            ) from None
        except TelegramError as exc:
            log.warning(
                "telegram: %s not reachable yet (%s); will retry when sending",
                self.api_root,
                _describe(exc),
            )

    async def stop(self) -> None:
        """Close the HTTP connections."""
        if self._bot is not None:
            with contextlib.suppress(Exception):
                await self._bot.shutdown()
            self._bot = None
            self._ready = False

    async def send(self, chat_id: int | str, alert: Alert) -> list[int]:
        """Send ``alert`` to ``chat_id`` (split if long); the Telegram message ids.

        Raises :class:`DeliveryFailed` for anything Telegram or the network did; any other
        exception is a bug and propagates as it is.
        """
        return await self.send_parts(chat_id, alert)

    async def send_parts(
        self,
        chat_id: int | str,
        alert: Alert,
        *,
        done: int = 0,
        on_part: PartSent | None = None,
    ) -> list[int]:
        """Send the parts of ``alert`` after the first ``done`` (those went out before); await
        ``on_part(message_id)`` after each accepted part that has more after it; the ids of
        the parts sent now.

        A part Telegram cannot parse as HTML is sent again at once as plain text (logged).
        """
        if self._bot is None:
            self._bot = self._make_bot()
        if not self._ready:
            try:
                await self.start()
            except NotifyError as exc:  # token rejected: retryable, the operator must fix it
                raise DeliveryFailed(exc.message, chat=chat_id) from None
        parts = split_html(format_alert_html(alert), self.max_length)
        ids: list[int] = []
        # the buttons go under the last part (the one a reader presses after reading)
        keyboard = alert_keyboard(alert) if self.config.buttons and self.config.commands else None
        for number, part in enumerate(parts[done:], start=done + 1):
            markup = keyboard if number == len(parts) else None
            try:
                message = await self._send_part(
                    chat_id, part, alert.silent, html_mode=True, markup=markup
                )
            except BadRequest as exc:  # only "can't parse entities" gets here
                log.warning(
                    "chat %s: Telegram could not parse part %d of %d of alert %s as HTML (%s); "
                    "sending it as plain text",
                    chat_id,
                    number,
                    len(parts),
                    alert.id,
                    _describe(exc),
                )
                message = await self._send_part(
                    chat_id, html_to_plain(part), alert.silent, html_mode=False, markup=markup
                )
            ids.append(message.message_id)
            if on_part is not None and number < len(parts):  # the last one: in the result
                await on_part(message.message_id)
        if alert.chart and self.chart_for is not None:
            await self._send_chart(chat_id, alert)
        return ids

    async def _send_chart(self, chat_id: int | str, alert: Alert) -> None:
        """The alert's chart after its text. Best effort: the text is delivered already, so a
        failed picture is logged and never makes the sender send the text again."""
        assert self._bot is not None and self.chart_for is not None
        try:
            png = await self.chart_for(alert)
            if png:
                await self._bot.send_photo(
                    chat_id=chat_id, photo=png, disable_notification=alert.silent
                )
        except TelegramError as exc:
            log.warning(
                "chat %s: chart of alert %s not sent: %s", chat_id, alert.id, _describe(exc)
            )
        except Exception as exc:  # drawing failed: the alert itself went out
            log.warning("chart of alert %s not drawn: %s", alert.id, _describe(exc))

    async def _send_part(
        self,
        chat_id: int | str,
        text: str,
        silent: bool,
        *,
        html_mode: bool,
        markup: InlineKeyboardMarkup | None = None,
    ) -> Message:
        """One sendMessage. Telegram's errors become :class:`DeliveryFailed` (``BadRequest``
        stays as it is in HTML mode: the caller decides about the plain-text fallback)."""
        assert self._bot is not None
        try:
            return await self._bot.send_message(
                chat_id=chat_id,
                text=text,
                parse_mode="HTML" if html_mode else None,
                disable_notification=silent,
                link_preview_options=_NO_PREVIEW,
                reply_markup=markup,
            )
        except BadRequest as exc:
            if html_mode and _cannot_parse(exc):
                raise  # the caller resends the part as plain text
            raise _delivery_failed(chat_id, exc) from None
        except TelegramError as exc:
            # ``from None``: the library's exception may carry request details; ours are
            # complete and redacted. Anything that is not a TelegramError is a bug: not caught.
            raise _delivery_failed(chat_id, exc) from None


def _delivery_failed(chat_id: int | str, exc: TelegramError) -> DeliveryFailed:
    """Map a python-telegram-bot exception to what the sender needs to know."""
    what = _describe(exc)
    # Order matters: ChatMigrated, RetryAfter and BadRequest are NetworkError subclasses too.
    if isinstance(exc, ChatMigrated):
        return DeliveryFailed(
            f"group was upgraded to a supergroup with id {exc.new_chat_id}",
            chat=chat_id,
            migrate_to=int(exc.new_chat_id),
        )
    if isinstance(exc, RetryAfter):
        seconds = _seconds(exc)
        return DeliveryFailed(
            f"Telegram rate limit (429): retry after {seconds:g} s",
            chat=chat_id,
            retry_after=seconds,
        )
    if isinstance(exc, Forbidden):
        return DeliveryFailed(f"Telegram refused (403): {what}", chat=chat_id, permanent=True)
    if isinstance(exc, InvalidToken):
        return DeliveryFailed(f"Telegram rejected the bot token: {what}", chat=chat_id)
    if isinstance(exc, BadRequest):
        return DeliveryFailed(
            f"Telegram rejected the message (400): {what}", chat=chat_id, permanent=True
        )
    if isinstance(exc, TimedOut):
        return DeliveryFailed(f"timed out talking to Telegram: {what}", chat=chat_id)
    if isinstance(exc, NetworkError):
        return DeliveryFailed(f"Telegram unavailable: {what}", chat=chat_id)
    return DeliveryFailed(f"Telegram error: {what}", chat=chat_id)


def _cannot_parse(exc: BadRequest) -> bool:
    """Telegram's 400 for text that is not valid HTML ("Bad Request: can't parse entities")."""
    return "can't parse entities" in (exc.message or "").lower()


def _describe(exc: BaseException) -> str:
    """Type and message of an exception, redacted (library messages can quote the token)."""
    if isinstance(exc, TelegramError) and exc.message:
        return redact(exc.message)  # Telegram's own description, e.g. "Forbidden: bot was ..."
    return redact(f"{type(exc).__name__}: {exc}")


def _seconds(exc: RetryAfter) -> float:
    """``retry_after`` in seconds (the attribute is an int or a timedelta depending on
    python-telegram-bot's ``PTB_TIMEDELTA`` transition setting; read it without the warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value: Any = exc.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)
