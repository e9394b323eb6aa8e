"""``python -m bot send-test [CHAT]``: one test message through the real delivery path.

The message is queued in an outbox and delivered by the same :class:`~bot.notify.sender.Sender`
and notifier (Telegram, or the console without a token) that deliver alerts: HTML formatting,
splitting, rate limits, chat-id migration and error handling included. The outbox is a scratch
SQLite store, deleted afterwards: the configured store (possibly shared with a running bot) is
not touched, so no queued alert is sent from here and no test row is left behind.

Exit 0 when every chat got the message, 2 when one did not (the reason is printed, token-free).
"""

from __future__ import annotations

import argparse
import socket
from typing import Any

from bot.commands.common import add_config_arg
from bot.errors import redact


def add_parser(subparsers: Any) -> None:
    """Register ``send-test``."""
    parser = subparsers.add_parser(
        "send-test",
        help="send one test message through the real delivery path",
        description=(
            "Send one test message to CHAT (a name under telegram.chats; default: the "
            "admin chat, else every named chat) through the outbox, sender and notifier."
        ),
    )
    parser.add_argument("chat", nargs="?", metavar="CHAT", help="a chat name from telegram.chats")
    add_config_arg(parser)
    parser.set_defaults(handler=run)


def target_chats(chats: dict[str, Any], admin_chat: str | None, asked: str | None) -> list[str]:
    """The chat names to send to; ``ValueError`` naming the known chats for an unknown one."""
    if asked is not None:
        if asked not in chats:
            raise ValueError(f"unknown chat {asked!r}; named chats: {', '.join(chats) or 'none'}")
        return [asked]
    if admin_chat is not None:
        return [admin_chat]
    return list(chats) or ["console"]


def run(args: argparse.Namespace) -> int:
    """Queue the test message, deliver it, report each chat; 2 if one was not delivered."""
    import asyncio

    from bot.config import read_config
    from bot.logs import setup_logging

    setup_logging("WARNING")  # the sender's own lines (a failure), in the bot's log format
    config = read_config(args.config)
    try:
        chats = target_chats(dict(config.telegram.chats), config.telegram.admin_chat, args.chat)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    return asyncio.run(_send(config, chats))


async def _send(config: Any, chats: list[str]) -> int:
    import tempfile
    from datetime import UTC
    from pathlib import Path
    from uuid import uuid4

    from bot.app import build_notifier
    from bot.clock import SystemClock
    from bot.errors import BotError
    from bot.model import Alert
    from bot.notify.sender import Sender
    from bot.store import open_store

    clock = SystemClock()
    now = clock.now()
    stamp = now.astimezone(config.tz).strftime("%Y-%m-%d %H:%M %Z")
    alert = Alert(
        id=f"send-test:{uuid4().hex}",
        rule_id="send-test",
        rule_type="send-test",
        symbol="",
        time=now.astimezone(UTC),
        value=0.0,
        text=(
            f"Test message from Index Alert Bot {_version()} on {socket.gethostname()}, "
            f"{stamp}\nDelivery works: alerts will arrive here."
        ),
        chats=tuple(chats),
    )
    notifier = build_notifier(config)
    with tempfile.TemporaryDirectory(prefix="bot-send-test-") as scratch:
        store = open_store(f"sqlite:///{Path(scratch) / 'outbox.sqlite'}")
        try:
            store.migrate()
            store.commit({}, [(alert, chats)], now)
            try:
                await notifier.start()
            except BotError as exc:  # a rejected token: nothing can be delivered
                print(f"FAIL {redact(str(exc))}")
                return 2
            try:
                sender = Sender(config=config, store=store, notifier=notifier, clock=clock)
                sender.worker_id = "send-test"
                await sender.drain()
            finally:
                await notifier.stop()
            rows = [row for row in store.outbox() if row.alert.id == alert.id]
        finally:
            store.close()
    failed = 0
    for row in sorted(rows, key=lambda r: chats.index(r.chat) if r.chat in chats else 0):
        where = _where(config, row.chat)
        if row.status == "sent":
            ids = ", ".join(map(str, row.message_ids))
            shown = f" (message id {ids})" if ids and config.telegram.enabled else ""
            print(f"ok   sent to {where}{shown}")
        else:
            failed += 1
            reason = row.error or row.status
            print(redact(f"FAIL not delivered to {where}: {reason}"))
    return 2 if failed or not rows else 0


def _version() -> str:
    """The installed version (as ``--version`` shows it), else the source tree's."""
    from importlib import metadata

    try:
        return metadata.version("index-alert-bot")
    except metadata.PackageNotFoundError:
        from bot import __version__

        return __version__


def _where(config: Any, chat: str) -> str:
    chat_id = config.telegram.chats.get(chat)
    if not config.telegram.enabled:
        return f"{chat} (console: no token)"
    return f"{chat} ({chat_id})"
