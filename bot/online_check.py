"""``python -m bot check --online``: is the deployed setup right, against the real services?

One line per check, ``ok`` or ``FAIL``, never a secret:

* the token, with ``getMe`` (the bot's name shown);
* each named chat: ``getChat`` (it exists and the bot can see it) and ``getChatMember`` for
  the bot itself (it is still a member and may post: ``can_post_messages`` in a channel, not
  ``left``/``kicked``, not restricted from sending);
* each symbol's sources, one ``fetch_latest`` per (symbol, source) pair, so a dead failover
  source is seen before the day it is needed.

The caller exits 2 when any line failed. Nothing is written: no store, no message sent (that
is ``send-test``).
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bot.config import Config, SymbolConfig, TelegramConfig
from bot.errors import BotError, redact


@dataclass(frozen=True)
class CheckLine:
    """The outcome of one check."""

    ok: bool
    what: str
    detail: str

    def __str__(self) -> str:
        return redact(f"{'ok  ' if self.ok else 'FAIL'} {self.what}: {self.detail}")


def run_checks(config: Config) -> list[CheckLine]:
    """Every online check of ``config``, in a stable order (Telegram first, then sources)."""
    lines = asyncio.run(check_telegram(config.telegram))
    lines.extend(check_sources(config))
    return lines


# ---------------------------------------------------------------------------------------------
# Telegram
# ---------------------------------------------------------------------------------------------


async def check_telegram(telegram_config: TelegramConfig) -> list[CheckLine]:
    """The token, then every named chat; nothing to check when Telegram is off."""
    if not telegram_config.token:
        return [CheckLine(True, "telegram", "off (no token): alerts are printed to the console")]
    from telegram import Bot
    from telegram.error import InvalidToken, TelegramError

    from bot.notify.telegram import DeadlineRequest

    timeout = telegram_config.timeout.total_seconds()
    request = DeadlineRequest(
        deadline=telegram_config.request_deadline.total_seconds(),
        connect_timeout=timeout,
        read_timeout=timeout,
        write_timeout=timeout,
        pool_timeout=timeout,
    )
    bot = Bot(telegram_config.token, base_url=f"{telegram_config.base_url}/bot", request=request)
    try:
        try:
            me = await bot.get_me()
        except InvalidToken as exc:
            return [CheckLine(False, "token", f"rejected by Telegram ({_describe(exc)})")]
        except TelegramError as exc:
            return [CheckLine(False, "token", f"getMe failed: {_describe(exc)}")]
        lines = [CheckLine(True, "token", f"@{me.username} ({me.first_name}), bot id {me.id}")]
        for name, chat_id in telegram_config.chats.items():
            if chat_id is not None:
                lines.append(await _check_chat(bot, me.id, name, chat_id))
        return lines
    finally:
        with contextlib.suppress(Exception):  # closing the HTTP client must not hide a result
            await bot.shutdown()


async def _check_chat(bot: Any, bot_id: int, name: str, chat_id: int | str) -> CheckLine:
    from telegram.constants import ChatMemberStatus, ChatType
    from telegram.error import TelegramError

    what = f"chat {name} ({chat_id})"
    try:
        chat = await bot.get_chat(chat_id)
    except TelegramError as exc:
        return CheckLine(False, what, f"{_describe(exc)} (wrong id, or the bot was never added)")
    label = f"{chat.type} {chat.title or chat.username or chat.first_name or chat.id!r}"
    if chat.type == ChatType.PRIVATE:
        # A private chat exists for a bot only once the user has started it; no membership.
        return CheckLine(True, what, label)
    try:
        member = await bot.get_chat_member(chat_id, bot_id)
    except TelegramError as exc:
        return CheckLine(False, what, f"{label}: the bot's membership: {_describe(exc)}")
    status = member.status
    if status in (ChatMemberStatus.LEFT, ChatMemberStatus.BANNED):
        return CheckLine(False, what, f"{label}: the bot is not a member ({status})")
    if chat.type == ChatType.CHANNEL:
        may_post = status == ChatMemberStatus.OWNER or (
            status == ChatMemberStatus.ADMINISTRATOR and bool(member.can_post_messages)
        )
        if not may_post:
            return CheckLine(
                False,
                what,
                f"{label}: the bot may not post (make it an administrator allowed to post)",
            )
    elif status == ChatMemberStatus.RESTRICTED and not member.can_send_messages:
        return CheckLine(False, what, f"{label}: the bot is restricted from sending messages")
    return CheckLine(True, what, f"{label}, the bot is {status}")


def _describe(exc: BaseException) -> str:
    return redact(str(exc) or type(exc).__name__)


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------


def check_sources(config: Config) -> list[CheckLine]:
    """One ``fetch_latest`` per (symbol, source), concurrently, reported in config order."""
    from bot.clock import SystemClock
    from bot.sources.poller import build_sources

    sources = build_sources(config, SystemClock())
    pairs = [(sid, spec, name) for sid, spec in config.symbols.items() for name in spec.source]

    def one(symbol_id: str, spec: SymbolConfig, source_name: str) -> CheckLine:
        what = f"symbol {symbol_id} via {source_name}"
        try:
            observation = sources[source_name].fetch_latest(symbol_id, spec)
        except BotError as exc:
            return CheckLine(False, what, str(exc))
        except Exception as exc:  # a bug in a source is a failed check too, not a traceback
            return CheckLine(False, what, f"{type(exc).__name__}: {exc}")
        when = observation.time.astimezone(config.tz).strftime("%Y-%m-%d %H:%M %Z")
        return CheckLine(True, what, f"{observation.value:,.2f} at {when} ({observation.kind})")

    try:
        with ThreadPoolExecutor(max_workers=config.poll.concurrency) as pool:
            return list(pool.map(lambda pair: one(*pair), pairs))
    finally:
        for source in sources.values():
            source.close()
