"""The sender: drains the store's outbox through a notifier, exactly as the rows say.

One :meth:`Sender.drain`:

1. claims due outbox rows under a lease (``store.claim``: a second replica never gets them);
2. groups them by chat, in alert order, and holds back any row that has an earlier message to
   the same chat still pending elsewhere (waiting for a retry, or leased by another replica) —
   one chat's alerts arrive in the order they happened;
3. sends each chat's rows one after another, different chats concurrently
   (``asyncio.gather``), so a slow or rate-limited chat holds up nobody else;
4. records the outcome of each row as soon as it is known:

   ============================  ==========================================================
   Telegram answered ok          ``mark_sent`` (only now: at least once, never at most once)
   part k of a long alert ok     its message id kept on the row (``record_parts``) before
                                 part k+1 goes out: a retry sends only the parts after it
   429 ``retry_after``           wait that long (``sleep``, injectable) and send again, for
                                 this chat only; a long wait becomes ``retry_later``
   5xx / network / timeout       ``retry_later`` with exponential back-off (capped at
                                 ``delivery.max_backoff`` for any attempt number); after
                                 ``delivery.max_attempts`` attempts ``mark_failed``
   403 / 400 chat not found      ``mark_failed``, logged, and the admin chat told once per chat
                                 (the admin chat itself failing: an ERROR saying so)
   400 can't parse entities      the notifier resends that part as plain text at once
   any other exception (a bug)   ``mark_failed`` once, logged at ERROR with the traceback —
                                 not retried for a day as if Telegram were down
   ``migrate_to_chat_id``        the new id remembered (store key ``chat_migrations``), logged
                                 for the operator, and the message resent there at once
   ============================  ==========================================================

Crash safety: a row is marked sent only after Telegram answered ok, and a crash leaves claimed
rows leased until the lease runs out, then they are sent again — from the first part Telegram
had not accepted. So nothing is lost, and the one message (part) in flight at a crash may
arrive twice (at-least-once delivery).

Without a Telegram token every row's chat is ``console`` and the console notifier prints it.

Length (over 400 lines): the outcome table above is one state machine per outbox row; the
ordering per chat, the leases and the admin notices act on the same rows.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock, SystemClock
from bot.config import Config, DeliveryConfig
from bot.errors import StoreError, redact
from bot.model import Alert
from bot.notify.base import DeliveryFailed, Notifier
from bot.notify.console import ConsoleNotifier
from bot.store.base import Delivery, Store
from bot.templates import bound

log = logging.getLogger(__name__)

CONSOLE_CHAT = "console"
MIGRATIONS_KEY = "chat_migrations"
ADMIN_NOTICE_PREFIX = "admin_notified:"
ADMIN_RULE_ID = "bot-admin"


def admin_notice(kind: str, key: str, text: str, now: datetime, chat: str) -> Alert:
    """An alert for the admin chat. Its id is deterministic in ``kind`` and ``key`` (so a
    second replica's identical notice is a no-op in the outbox); its text is redacted and
    bounded like any alert's."""
    return Alert(
        id=f"{ADMIN_RULE_ID}:{kind}:{key}",
        rule_id=ADMIN_RULE_ID,
        rule_type="admin",
        symbol="",
        time=now,
        value=0.0,
        text=bound(redact(text)),
        chats=(chat,),
    )


Sleep = Callable[[float], Awaitable[Any]]


@dataclass
class DrainReport:
    """What one drain did. ``pending``: rows still pending in the outbox afterwards."""

    claimed: int = 0
    sent: int = 0  # outbox rows delivered (marked sent)
    messages: int = 0  # Telegram messages that made up those rows (a long alert is several)
    retried: int = 0  # rows rescheduled (retry_later)
    failed: int = 0  # rows given up on (mark_failed)
    rate_limited: int = 0  # 429 answers received
    migrated: int = 0  # chats found to have moved to a new id
    held: int = 0  # claimed rows handed back unsent (order within a chat, deadline, lease)
    pending: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: DrainReport) -> None:
        """Accumulate another report into this one (``pending`` is taken from ``other``)."""
        for name in ("claimed", "sent", "messages", "retried", "failed", "rate_limited"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.migrated += other.migrated
        self.held += other.held
        self.pending = other.pending
        self.errors.extend(other.errors)


@dataclass
class _Round:
    """Per-claim bookkeeping shared by the chat tasks of one round."""

    report: DrainReport
    claim_now: datetime
    send_until: datetime  # no new send after this (lease safety margin or shutdown deadline)
    migrations: dict[str, int | str]
    notices: int = 0


class _Stop(Exception):
    """A chat's remaining rows must wait (rescheduled head, deadline, store error)."""

    def __init__(self, not_before: datetime) -> None:
        super().__init__()
        self.not_before = not_before


class Sender:
    """Drains the outbox of ``store`` through ``notifier``.

    Either pass ``config`` (chats, admin chat and delivery settings are read from it) or the
    pieces (``chats``, ``admin_chat``, ``delivery``). ``clock`` and ``sleep`` are inputs so tests
    control time; ``worker_id`` names this process's leases (set it before the first drain).
    """

    def __init__(
        self,
        *,
        store: Store,
        notifier: Notifier,
        config: Config | None = None,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        worker_id: str = "sender",
        chats: Mapping[str, int | str | None] | None = None,
        admin_chat: str | None = None,
        delivery: DeliveryConfig | None = None,
        batch_size: int = 200,
        max_inline_wait: float = 10.0,
        console: Notifier | None = None,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.clock: Clock = clock or SystemClock()
        self.sleep = sleep
        self.worker_id = worker_id
        if config is not None:
            chats = config.telegram.chats if chats is None else chats
            admin_chat = admin_chat or config.telegram.admin_chat
            delivery = delivery or config.delivery
        self.chats: dict[str, int | str | None] = dict(chats or {})
        self.admin_chat = admin_chat
        self.delivery = delivery or DeliveryConfig()
        self.batch_size = batch_size
        self.max_inline_wait = max_inline_wait
        # Telegram off (no token): every chat is printed by the console notifier.
        self.console_only = isinstance(notifier, ConsoleNotifier) or (
            config is not None and not config.telegram.enabled
        )
        self.console = console or (
            notifier if isinstance(notifier, ConsoleNotifier) else ConsoleNotifier()
        )

    # ------------------------------------------------------------------ public API

    async def drain(self, now: datetime | None = None) -> DrainReport:
        """Deliver every row due at ``now`` (default: the clock's now) that can go out now."""
        return await self._drain(now, deadline=None)

    async def drain_until_empty(self, deadline: datetime) -> DrainReport:
        """For shutdown: drain until nothing is due or ``deadline`` passes.

        Sends already started finish; no new send starts after ``deadline``; rows not tried
        stay queued (handed back at once so a restart or another replica can take them).
        """
        total = DrainReport()
        while self.clock.now() < deadline:
            report = await self._drain(None, deadline=deadline)
            total.add(report)
            if report.claimed == 0 or (report.sent == 0 and report.failed == 0):
                return total
        total.pending = await self._count_pending()
        return total

    # ------------------------------------------------------------------ draining

    async def _drain(self, now: datetime | None, deadline: datetime | None) -> DrainReport:
        report = DrainReport()
        lease = self.delivery.lease
        margin = min(lease / 4, timedelta(seconds=30))
        while True:
            claim_now = now or self.clock.now()
            started = self.clock.now()
            claimed = await asyncio.to_thread(
                self.store.claim, self.worker_id, claim_now, lease, self.batch_size
            )
            if not claimed:
                break
            report.claimed += len(claimed)
            send_until = started + lease - margin
            if deadline is not None:
                send_until = min(send_until, deadline)
            round_ = _Round(report, claim_now, send_until, await self._migrations())
            groups, held = await self._in_chat_order(claimed)
            if held:
                await self._hand_back(held, claim_now, report)
            before = report.sent + report.failed
            outcomes = await asyncio.gather(
                *(self._send_chat(rows, round_) for rows in groups.values()),
                return_exceptions=True,
            )
            for chat, outcome in zip(groups, outcomes, strict=True):
                if isinstance(outcome, BaseException):  # a bug: keep the other chats going
                    log.error("delivering to chat %s failed: %r", chat, outcome)
                    report.errors.append(redact(f"chat {chat}: {outcome!r}"))
            progressed = report.sent + report.failed > before
            more = len(claimed) >= self.batch_size or round_.notices > 0
            if not (more and progressed) or (deadline and self.clock.now() >= deadline):
                break
        report.pending = await self._count_pending()
        return report

    async def _in_chat_order(
        self, claimed: Sequence[Delivery]
    ) -> tuple[dict[str, list[Delivery]], list[Delivery]]:
        """Claimed rows per chat in alert order, and the rows that must wait for an earlier
        pending row of their chat that this claim does not hold."""
        pending = await asyncio.to_thread(self.store.deliveries, "pending")
        mine = {(d.alert.id, d.chat): d for d in claimed}
        groups: dict[str, list[Delivery]] = {}
        blocked: set[str] = set()
        for row, _status in pending:
            key = (row.alert.id, row.chat)
            if row.chat in blocked:
                continue
            if key in mine:
                groups.setdefault(row.chat, []).append(mine.pop(key))
            else:
                blocked.add(row.chat)  # an earlier message of this chat is not ours to send
        # Claimed rows the pending listing did not show (a race with another writer) go last,
        # unless their chat is blocked; rows after a blocker wait.
        held: list[Delivery] = []
        for d in mine.values():
            if d.chat in blocked:
                held.append(d)
            else:
                groups.setdefault(d.chat, []).append(d)
        return groups, held

    async def _send_chat(self, rows: list[Delivery], round_: _Round) -> None:
        """Send one chat's rows in order; stop at the first that has to wait."""
        for index, row in enumerate(rows):
            if self.clock.now() >= round_.send_until:
                await self._hand_back(rows[index:], self.clock.now(), round_.report)
                return
            try:
                await self._deliver(row, round_)
            except _Stop as stop:
                await self._hand_back(rows[index + 1 :], stop.not_before, round_.report)
                return

    async def _deliver(self, row: Delivery, round_: _Round) -> None:
        """Send one row and record the outcome; raises :class:`_Stop` if it has to wait."""
        report = round_.report
        inline_waits = 0
        hops = 0
        # Ids of the parts of a long alert Telegram has accepted (also by earlier attempts):
        # a retry sends only the parts after them.
        sent: list[int] = list(row.message_ids)

        async def part_sent(message_id: int) -> None:
            sent.append(message_id)
            await self._record_parts(row, sent)

        while True:
            chat_id: int | str = row.chat
            before = len(sent)
            try:
                chat_id = self._resolve(row.chat, round_.migrations)
                notifier = self.console if self._is_console(row.chat) else self.notifier
                new_ids = await notifier.send_parts(
                    chat_id, row.alert, done=before, on_part=part_sent
                )
            except _Stop:
                raise
            except DeliveryFailed as exc:
                failure = exc
            except Exception as exc:
                # Not Telegram, not the network: a bug. Retrying it for a day would only make
                # it look like an outage; fail this row once, loudly, with the traceback.
                error = redact(f"internal error (a bug): {type(exc).__name__}: {exc}")
                log.exception(
                    "alert %s to chat %s: unexpected error, marked failed (not retried)",
                    row.alert.id,
                    row.chat,
                )
                await self._store(
                    self.store.mark_failed, row.alert.id, row.chat, self.clock.now(), error
                )
                report.failed += 1
                report.errors.append(error)
                return
            else:
                message_ids = sent[:before] + new_ids
                await self._store(
                    self.store.mark_sent, row.alert.id, row.chat, self.clock.now(), message_ids
                )
                report.sent += 1
                report.messages += len(new_ids)
                log.info(
                    "delivered alert %s to chat %s (message %s)",
                    row.alert.id,
                    row.chat,
                    ", ".join(map(str, message_ids)),
                )
                return

            error = _error_text(row.chat, failure)
            if failure.migrate_to is not None and hops < 3:
                hops += 1
                await self._remember_migration(row.chat, chat_id, failure.migrate_to, round_)
                report.migrated += 1
                continue  # resend to the new id at once

            now = self.clock.now()
            if failure.retry_after is not None:
                report.rate_limited += 1
                wait = max(failure.retry_after, 0.0)
                resume = now + timedelta(seconds=wait)
                if inline_waits < 3 and wait <= self.max_inline_wait and resume < round_.send_until:
                    inline_waits += 1
                    log.warning(
                        "chat %s: rate limited by Telegram (429), sending again in %g s",
                        row.chat,
                        wait,
                    )
                    await self.sleep(wait)
                    continue
                # A 429 is flow control: it never fails a row (the store counts the attempt).
                await self._store(self.store.retry_later, row.alert.id, row.chat, resume, error)
                report.retried += 1
                log.warning(
                    "alert %s to chat %s: %s; queued until %s",
                    row.alert.id,
                    row.chat,
                    error,
                    resume,
                )
                raise _Stop(resume)

            if failure.permanent:
                await self._store(self.store.mark_failed, row.alert.id, row.chat, now, error)
                report.failed += 1
                report.errors.append(error)
                if self.admin_chat and row.chat == self.admin_chat:
                    log.error(
                        "alert %s to the admin chat %s failed for good: %s; nobody is told "
                        "about undeliverable alerts until the admin chat is fixed",
                        row.alert.id,
                        row.chat,
                        error,
                    )
                else:
                    log.error(
                        "alert %s to chat %s failed for good: %s", row.alert.id, row.chat, error
                    )
                await self._tell_admin(row.chat, error, round_)
                return

            attempts = row.attempts + 1
            if attempts >= self.delivery.max_attempts:
                final = f"gave up after {attempts} attempts: {error}"
                await self._store(self.store.mark_failed, row.alert.id, row.chat, now, final)
                report.failed += 1
                report.errors.append(final)
                log.error("alert %s to chat %s: %s", row.alert.id, row.chat, final)
                return
            resume = now + self.backoff(attempts)
            await self._store(self.store.retry_later, row.alert.id, row.chat, resume, error)
            report.retried += 1
            log.warning(
                "alert %s to chat %s: %s; attempt %d of %d, next at %s",
                row.alert.id,
                row.chat,
                error,
                attempts,
                self.delivery.max_attempts,
                resume,
            )
            raise _Stop(resume)

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed try: ``backoff × 2^(attempts−1)``, at most
        ``max_backoff``. The cap is applied before the power is taken, so attempt 47 or 10,000
        is the cap too (not an OverflowError that would resend the row on every drain)."""
        base, cap = self.delivery.backoff, self.delivery.max_backoff
        if base <= timedelta(0) or cap <= base:
            return max(min(base, cap), timedelta(0))
        doublings = max(attempts - 1, 0)
        if doublings >= math.ceil(math.log2(cap / base)):  # 2^doublings × base ≥ cap
            return cap
        return min(base * 2**doublings, cap)

    # ------------------------------------------------------------------ chats

    def _is_console(self, chat: str) -> bool:
        return self.console_only or chat == CONSOLE_CHAT

    def _resolve(self, chat: str, migrations: Mapping[str, int | str]) -> int | str:
        """The chat id to send to: config's id for the name, followed through migrations."""
        if self._is_console(chat):
            return chat
        chat_id = self.chats.get(chat)
        if chat_id is None:
            if re.fullmatch(r"-?\d+", chat):
                chat_id = int(chat)
            elif chat.startswith("@"):
                chat_id = chat
            else:
                raise DeliveryFailed(
                    "unknown chat name (not under telegram.chats in the config)",
                    chat=chat,
                    permanent=True,
                )
        for _ in range(5):  # follow a chain of upgrades, never loop forever
            moved = migrations.get(str(chat_id))
            if moved is None or moved == chat_id:
                break
            chat_id = moved
        return chat_id

    async def _migrations(self) -> dict[str, int | str]:
        value = await asyncio.to_thread(self.store.get_value, MIGRATIONS_KEY)
        return dict(value) if isinstance(value, dict) else {}

    async def _remember_migration(
        self, chat: str, old_id: int | str, new_id: int, round_: _Round
    ) -> None:
        """Store old id → new id (the store key ``chat_migrations``) and tell the operator."""
        current = await self._migrations()
        current[str(old_id)] = new_id
        await self._store(self.store.set_value, MIGRATIONS_KEY, current)
        round_.migrations[str(old_id)] = new_id
        log.warning(
            "chat %s (id %s) was upgraded to a supergroup: update config: chat %s is now %s "
            "(sending there meanwhile)",
            chat,
            old_id,
            chat,
            new_id,
        )

    async def _tell_admin(self, chat: str, error: str, round_: _Round) -> None:
        """Queue one notice to the admin chat the first time ``chat`` fails for good."""
        admin = self.admin_chat
        if not admin or chat == admin or self._is_console(chat):
            return
        now = self.clock.now()
        key = f"{ADMIN_NOTICE_PREFIX}{chat}"
        record = {"error": error, "time": now.isoformat()}
        try:
            first = await asyncio.to_thread(self.store.add_value, key, record)
        except NotImplementedError:
            first = await asyncio.to_thread(self.store.get_value, key) is None
            if first:
                await asyncio.to_thread(self.store.set_value, key, record)
        if not first:
            return
        notice = admin_notice(
            "unreachable",
            chat,
            f"Alerts to chat '{chat}' cannot be delivered\n"
            f"{error}\n"
            f"They are marked failed. Check that the bot is still a member of the chat and "
            f"not blocked, and the id under telegram.chats.{chat} in the config.",
            now,
            admin,
        )
        # Through the outbox: durable, rate limited, and its unique id makes it once only.
        await self._store(self.store.commit, {}, [(notice, [admin])], now)
        round_.notices += 1
        log.warning("told admin chat %s that chat %s is unreachable", admin, chat)

    # ------------------------------------------------------------------ store helpers

    async def _hand_back(
        self, rows: Sequence[Delivery], not_before: datetime, report: DrainReport
    ) -> None:
        """Give claimed-but-untried rows back without counting an attempt."""
        report.held += len(rows)
        for row in rows:
            try:
                await asyncio.to_thread(
                    self.store.release, row.alert.id, row.chat, self.worker_id, not_before
                )
            except NotImplementedError:
                return  # this store can't: the rows wait for their lease to run out
            except StoreError as exc:
                log.warning(
                    "could not hand back alert %s for chat %s: %s", row.alert.id, row.chat, exc
                )

    async def _record_parts(self, row: Delivery, message_ids: Sequence[int]) -> None:
        """Persist the parts of ``row`` sent so far; a store that can't, or fails, only means
        a retry may repeat them (the send goes on)."""
        try:
            await asyncio.to_thread(
                self.store.record_parts, row.alert.id, row.chat, list(message_ids)
            )
        except NotImplementedError:
            pass
        except StoreError as exc:
            log.warning(
                "could not record the parts sent of alert %s to chat %s: %s",
                row.alert.id,
                row.chat,
                exc,
            )

    async def _store(self, method: Callable[..., Any], *args: Any) -> Any:
        """Run a store call in a thread; a store error stops this chat for this drain."""
        try:
            return await asyncio.to_thread(method, *args)
        except StoreError as exc:
            log.error("store error while delivering: %s", exc)
            raise _Stop(self.clock.now()) from exc

    async def _count_pending(self) -> int:
        try:
            stats = await asyncio.to_thread(self.store.stats)
            return int(stats.get("pending", 0))
        except NotImplementedError:
            return len(await asyncio.to_thread(self.store.deliveries, "pending"))


def _error_text(chat: str, failure: DeliveryFailed) -> str:
    """The failure's message without the notifier's own ``chat …:`` prefix, redacted."""
    text = str(failure)
    if failure.chat is not None:
        prefix = f"chat {failure.chat}: "
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return redact(text)
