"""The cockpit: python-telegram-bot's ``Application`` answering commands and alert buttons.

It shares the alert notifier's bot (so replies pass the same flood-limit rate limiter as
alerts) and the scheduler's asyncio loop. Replicas take turns polling ``getUpdates``
(Telegram allows one poller per bot: a second gets 409 Conflict): only the holder of the store
lease :data:`LEASE` polls; it renews the lease every quarter ``telegram.poll_lease`` and stops
polling as soon as it cannot; a replica whose holder died takes over once the lease runs out.
Each update is handled only after the store's mark for the lease moved past its id, so an
update the dead holder had already answered (but not yet confirmed to Telegram) is never
answered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

from telegram import BotCommand, LinkPreviewOptions, Update
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackContext,
    CallbackQueryHandler,
    CommandHandler,
    ExtBot,
    TypeHandler,
)

from bot.cockpit.access import Access
from bot.cockpit.buttons import parse_callback
from bot.cockpit.chart import chart_png, series_of
from bot.cockpit.rules import (
    ALL,
    MUTE_USAGE,
    UNMUTE_USAGE,
    mute_until,
    resolve_rule,
    rules_text,
)
from bot.cockpit.status import odds_text, status_text
from bot.errors import redact
from bot.model import Alert, DailySeries
from bot.worker import Worker

log = logging.getLogger(__name__)

LEASE = "telegram-updates"
CHART_USAGE = "Usage: /chart SYMBOL [1m|3m|6m|1y|5y|max]"
STATUS_USAGE = "Usage: /status [SYMBOL]"
PERIODS = ("1m", "3m", "6m", "1y", "5y", "max")

#: (command, menu description); the menu Telegram shows (setMyCommands)
COMMANDS = (
    ("start", "what this bot watches"),
    ("help", "commands and buttons"),
    ("status", "last values, records, levels: /status [SYMBOL]"),
    ("rules", "every rule and its state"),
    ("mute", "silence a rule: /mute RULE|all 1h|today"),
    ("unmute", "lift a mute: /unmute RULE|all"),
    ("chart", "a chart: /chart SYMBOL [1m|3m|6m|1y|5y|max]"),
)

_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

Context = CallbackContext[ExtBot[None], Any, Any, Any]


class Cockpit:
    """Commands and buttons for one worker; :meth:`start` / :meth:`stop` around its life."""

    def __init__(self, worker: Worker, bot: ExtBot[Any], *, poll_timeout: float = 10.0) -> None:
        self.worker = worker
        self.config = worker.config
        self.access = Access(self.config.telegram)
        self.poll_timeout = poll_timeout
        self.lease = self.config.telegram.poll_lease
        self.polling = False
        self._initialized = False
        self._task: asyncio.Task[None] | None = None
        self.app: Application[Any, Any, Any, Any, Any, Any] = Application.builder().bot(bot).build()
        self.app.add_handler(TypeHandler(Update, self._gate), group=-1)
        for name, handler in (
            ("start", self._start),
            ("help", self._help),
            ("status", self._status),
            ("rules", self._rules),
            ("mute", self._mute),
            ("unmute", self._unmute),
            ("chart", self._chart),
        ):
            self.app.add_handler(CommandHandler(name, handler))
        self.app.add_handler(CallbackQueryHandler(self._button))
        self.app.add_error_handler(self._error)

    @property
    def holder(self) -> str:
        return self.worker.worker_id

    # ---------------------------------------------------------------- lifecycle

    async def start(self, *, every: float | None = None) -> None:
        """Start handling updates and the lease loop (every ``every`` s; default a quarter
        lease; 0: no loop — the caller drives :meth:`tick`)."""
        period = self.lease.total_seconds() / 4 if every is None else every
        if period > 0:
            self._task = asyncio.create_task(self._loop(period), name="cockpit-lease")
        try:
            await self.tick()
        except Exception as exc:  # the lease loop tries again
            log.warning("cockpit: start failed: %s", redact(str(exc)))

    async def _loop(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                await self.tick()
            except Exception as exc:  # the loop must go on: next tick tries again
                log.warning("cockpit: lease check failed: %s", redact(str(exc)))

    async def tick(self) -> bool:
        """Renew (or take) the polling lease; start or stop polling to match. True if polling."""
        if not await self._ensure_started():
            return False
        try:
            held = await asyncio.to_thread(
                self.worker.store.acquire_lease,
                LEASE,
                self.holder,
                self.worker.clock.now(),
                self.lease,
            )
        except NotImplementedError:
            held = True  # a store without leases: a single process
        except Exception as exc:  # cannot renew: stop before another replica starts
            log.warning("cockpit: cannot renew the polling lease (%s)", redact(str(exc)))
            held = False
        if held and not self.polling:
            assert self.app.updater is not None
            await self.app.updater.start_polling(
                timeout=timedelta(seconds=self.poll_timeout),
                allowed_updates=["message", "callback_query"],
                error_callback=_polling_error,
            )
            self.polling = True
            log.info("cockpit: %s polls Telegram for commands", self.holder)
        elif not held and self.polling:
            await self._stop_polling()
            log.info("cockpit: %s stopped polling (another replica holds the lease)", self.holder)
        return self.polling

    async def _ensure_started(self) -> bool:
        if self._initialized:
            return True
        try:
            await self.app.initialize()
            await self.app.start()
            await self.app.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS])
        except Exception as exc:  # Telegram unreachable: the next tick tries again
            log.warning("cockpit: Telegram not reachable yet (%s)", redact(str(exc)))
            return False
        self._initialized = True
        return True

    async def _stop_polling(self) -> None:
        if self.polling and self.app.updater is not None:
            with contextlib.suppress(Exception):
                await self.app.updater.stop()
        self.polling = False

    async def stop(self, *, release: bool = True) -> None:
        """Stop polling and handling; give the lease up (``release``) so another replica can
        take over at once. The bot itself is closed by the notifier."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._stop_polling()
        if self._initialized and self.app.running:
            await self.app.stop()
        if release:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.worker.store.release_lease, LEASE, self.holder)

    # ---------------------------------------------------------------- gate

    async def _gate(self, update: Update, context: Context) -> None:
        """Before any handler: handled once across replicas; configured chats only."""
        try:
            first = await asyncio.to_thread(
                self.worker.store.advance_mark, LEASE, self.holder, update.update_id
            )
        except NotImplementedError:
            first = True
        if not first:
            log.info("cockpit: update %d was handled already; skipped", update.update_id)
            raise ApplicationHandlerStop
        chat = update.effective_chat
        user = update.effective_user
        if chat is None:
            raise ApplicationHandlerStop
        if self.access.chat_allowed(chat.id, chat.username):
            return
        message = update.effective_message
        text = message.text if message is not None else None
        if update.message is not None and text and _command_of(text) == "start":
            await self._reply(
                update,
                f"This chat's id is {chat.id}. To use the bot here, name it in config.yaml:\n"
                f"telegram:\n  chats: {{mychat: {chat.id}}}",
            )
        Access.refuse("an update", chat.id, user.id if user else None)
        if update.callback_query is not None:
            await update.callback_query.answer()
        raise ApplicationHandlerStop

    def _may_change(self, update: Update, what: str) -> bool:
        user = update.effective_user
        if self.access.may_change(user.id if user else None):
            return True
        chat = update.effective_chat
        Access.refuse(what, chat.id if chat else None, user.id if user else None)
        return False

    async def _reply(self, update: Update, text: str) -> None:
        """Answer in the chat (and forum topic) the update came from."""
        chat = update.effective_chat
        message = update.effective_message
        if chat is None:
            return
        thread = (
            message.message_thread_id if message is not None and message.is_topic_message else None
        )
        await self.app.bot.send_message(
            chat_id=chat.id, text=text, message_thread_id=thread, link_preview_options=_NO_PREVIEW
        )

    # ---------------------------------------------------------------- commands

    async def _start(self, update: Update, context: Context) -> None:
        watched = ", ".join(self.config.symbol_name(s) for s in self.config.symbols) or "nothing"
        await self._reply(
            update,
            f"I watch {watched} with {len(self.config.rules)} rules and send alerts here.\n"
            "Send /help for the commands.",
        )

    async def _help(self, update: Update, context: Context) -> None:
        lines = [f"/{c} — {d}" for c, d in COMMANDS]
        lines.append("Buttons under alerts: Chart, Mute 1h, Mute today.")
        await self._reply(update, "\n".join(lines))

    async def _status(self, update: Update, context: Context) -> None:
        args = context.args or []
        if len(args) > 1:
            await self._reply(update, STATUS_USAGE)
            return
        symbols = list(self.config.symbols)
        if args:
            symbol = self._symbol(args[0])
            if symbol is None:
                await self._reply(update, f"Unknown symbol {args[0][:32]!r}. {STATUS_USAGE}")
                return
            symbols = [symbol]
        series = {s: await self._series(s) for s in symbols}
        text = status_text(
            self.config, symbols, dict(self.worker.last_quotes), series, self.worker.clock.now()
        )
        if not args:  # every symbol: then the rate_odds rules' latest odds
            text += await asyncio.to_thread(odds_text, self.config, self.worker.store)
        await self._reply(update, text)

    async def _rules(self, update: Update, context: Context) -> None:
        now = self.worker.clock.now()
        states = await asyncio.to_thread(self.worker.store.load_states)
        mutes = await asyncio.to_thread(self.worker.current_mutes, now)
        text = rules_text(self.config, states, mutes, self.worker.unseeded_rules(), now)
        await self._reply(update, text)

    async def _mute(self, update: Update, context: Context) -> None:
        if not self._may_change(update, "/mute"):
            return
        args = context.args or []
        now = self.worker.clock.now()
        until = mute_until(args[1], now, self.config.tz) if len(args) == 2 else None
        rule = resolve_rule(self.config, args[0]) if args else None
        if until is None or rule is None:
            await self._reply(update, MUTE_USAGE)
            return
        await self._set_mute(update, rule, until)

    async def _set_mute(self, update: Update, rule: str, until: datetime) -> None:
        user = update.effective_user
        now = self.worker.clock.now()
        await asyncio.to_thread(
            self.worker.store.set_mute, rule, until, str(user.id) if user else None, now
        )
        what = "All rules" if rule == ALL else f"Rule {rule}"
        log.info("cockpit: %s muted until %s by user %s", rule, until.isoformat(), user and user.id)
        from bot.rules.text import fmt_time

        await self._reply(update, f"{what} muted until {fmt_time(until, self.config.tz)}.")

    async def _unmute(self, update: Update, context: Context) -> None:
        if not self._may_change(update, "/unmute"):
            return
        args = context.args or []
        rule = resolve_rule(self.config, args[0]) if len(args) == 1 else None
        if rule is None:
            await self._reply(update, UNMUTE_USAGE)
            return
        lifted = await asyncio.to_thread(
            self.worker.store.clear_mutes, None if rule == ALL else rule
        )
        log.info("cockpit: %s unmuted (%d mutes lifted)", rule, lifted)
        what = "All mutes lifted" if rule == ALL else f"Rule {rule} unmuted"
        await self._reply(update, f"{what}." if lifted else "Nothing was muted.")

    async def _chart(self, update: Update, context: Context) -> None:
        args = context.args or []
        symbol = self._symbol(args[0]) if args else None
        period = args[1].lower() if len(args) == 2 else "6m"
        if symbol is None or len(args) > 2 or period not in PERIODS:
            await self._reply(update, CHART_USAGE)
            return
        await self._send_chart(update, symbol, period)

    # ---------------------------------------------------------------- buttons

    async def _button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        parsed = parse_callback(query.data)
        rule = next((p for p in self.config.rules if parsed and p.id == parsed[1]), None)
        if parsed is None or rule is None:
            await query.answer("This button is no longer valid.")
            return
        if not self._may_change(update, "a button"):
            await query.answer()  # stop the spinner; nothing else
            return
        action = parsed[0]
        now = self.worker.clock.now()
        if action == "chart":
            symbols = rule.watched_symbols()
            await query.answer()
            if symbols:
                await self._send_chart(update, symbols[0], "6m")
            return
        until = mute_until("1h" if action == "mute1h" else "today", now, self.config.tz)
        assert until is not None
        from bot.rules.text import fmt_time

        await query.answer(f"{rule.id} muted until {fmt_time(until, self.config.tz)}")
        await self._set_mute(update, rule.id, until)

    # ---------------------------------------------------------------- helpers

    def _symbol(self, name: str) -> str | None:
        for symbol in self.config.symbols:
            if symbol.lower() == name.lower():
                return symbol
        return None

    async def _series(self, symbol: str) -> DailySeries | None:
        return await series_of(self.worker, symbol)

    async def chart_png(self, symbol: str, period: str) -> bytes | None:
        """The chart of ``symbol`` (None without history): record, levels, alerts fired."""
        return await chart_png(self.worker, symbol, period)

    async def alert_chart(self, alert: Alert) -> bytes | None:
        """The chart attached to an alert with ``chart`` set (its symbol, six months)."""
        if alert.symbol not in self.config.symbols:
            return None
        return await chart_png(self.worker, alert.symbol, "6m")

    async def _send_chart(self, update: Update, symbol: str, period: str) -> None:
        png = await self.chart_png(symbol, period)
        if png is None:
            await self._reply(update, f"No history of {symbol} yet.")
            return
        chat = update.effective_chat
        message = update.effective_message
        assert chat is not None
        thread = (
            message.message_thread_id if message is not None and message.is_topic_message else None
        )
        await self.app.bot.send_photo(
            chat_id=chat.id,
            photo=png,
            caption=f"{self.config.symbol_name(symbol)} — {period}",
            message_thread_id=thread,
        )

    async def _error(self, update: object, context: Context) -> None:
        """A handler failed: one redacted line (never the message text)."""
        exc = context.error
        chat = (
            update.effective_chat.id
            if isinstance(update, Update) and update.effective_chat
            else None
        )
        log.warning(
            "cockpit: handling an update from chat %s failed: %s",
            chat,
            redact(f"{type(exc).__name__}: {exc}"),
        )


def _command_of(text: str) -> str:
    """``/start@bot args`` → ``start``."""
    word = text.split(maxsplit=1)[0] if text.strip() else ""
    return word.lstrip("/").split("@", 1)[0].lower() if word.startswith("/") else ""


def _polling_error(exc: Exception) -> None:
    log.warning("cockpit: getUpdates failed: %s", redact(f"{type(exc).__name__}: {exc}"))
