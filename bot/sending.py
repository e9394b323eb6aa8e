"""Delivery as its own asyncio task, so polling never waits for Telegram.

:class:`SendLoop` drains the outbox through :class:`~bot.notify.sender.Sender` whenever it is
woken (:meth:`SendLoop.wake`: the poll cycle just committed new alerts) and on a timer (rows
waiting for a retry or back-off, rows another replica left behind when its lease ran out). It
claims only when the outbox has pending rows: an idle timer tick first asks the store for a
count, a read that takes no write lock.

A slow or hanging Telegram (up to the notifier's timeout per request, or longer with a trickled
answer) then holds up only this task: the poll job keeps its cadence and evaluates on time, and
the alerts wait in the outbox, durable.

:meth:`SendLoop.stop` lets a drain in progress finish (an in-flight send is recorded, not
cancelled after Telegram got it) up to a deadline, then stops the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from bot.notify.sender import Sender

log = logging.getLogger(__name__)


class SendLoop:
    """Runs ``sender.drain()`` in a background task, woken by new rows and by a timer.

    ``retry_every``: how often to drain again while rows are pending (retries, back-off);
    ``idle_every``: how often to look for rows nobody woke us for (another replica's).
    """

    def __init__(
        self,
        sender: Sender,
        *,
        retry_every: timedelta = timedelta(seconds=1),
        idle_every: timedelta = timedelta(seconds=30),
    ) -> None:
        self.sender = sender
        self.retry_every = retry_every
        self.idle_every = idle_every
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.drains = 0  # drains run (for tests and stats)

    @property
    def running(self) -> bool:
        """Whether the task is running."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the task (in the running loop); idempotent."""
        if not self.running:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="sender")

    def wake(self) -> None:
        """The outbox got rows: drain now (or right after the drain in progress)."""
        self._wake.set()

    async def stop(self, timeout: timedelta = timedelta(seconds=10)) -> None:
        """Let the drain in progress finish (at most ``timeout``), then end the task."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout.total_seconds())
        except TimeoutError:
            log.warning("delivery still busy after %s at shutdown; stopping it", timeout)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self) -> None:
        has_rows = await self._outbox_has_rows()  # rows may be waiting from before a restart
        while not self._stopping:
            self._wake.clear()  # before the drain: a wake during it triggers the next one
            if has_rows:
                has_rows = await self._drain()
            if self._stopping:
                return
            period = await self._until_due() if has_rows else self.idle_every
            woken = await self._sleep(period)
            if woken:
                has_rows = True
            elif not has_rows:
                has_rows = await self._outbox_has_rows()

    async def _drain(self) -> bool:
        """One drain; whether rows are still pending after it."""
        self.drains += 1
        try:
            report = await self.sender.drain()
        except Exception:  # a store outage or a bug: keep the loop alive, retry later
            log.exception("delivery failed; undelivered alerts stay queued")
            return True
        return report.pending > 0

    async def _sleep(self, period: timedelta) -> bool:
        """Wait for a wake (True) or ``period`` (False)."""
        try:
            await asyncio.wait_for(self._wake.wait(), period.total_seconds())
        except TimeoutError:
            return False
        return True

    async def _until_due(self) -> timedelta:
        """How long until the earliest pending row can be claimed (its retry time, or the end
        of a lease someone holds on it), within ``retry_every`` .. ``idle_every``."""
        try:
            rows = await asyncio.to_thread(self.sender.store.outbox, "pending")
        except NotImplementedError:
            return self.retry_every
        except Exception as exc:
            log.warning("could not read the outbox: %s", exc)
            return self.retry_every
        if not rows:
            return self.idle_every
        now = self.sender.clock.now()
        due = min(max(row.next_attempt_at, row.lease_until or row.next_attempt_at) for row in rows)
        return min(max(due - now, self.retry_every), self.idle_every)

    async def _outbox_has_rows(self) -> bool:
        store = self.sender.store
        try:
            stats = await asyncio.to_thread(store.stats)
        except NotImplementedError:
            return True
        except Exception as exc:
            log.warning("could not count the outbox: %s", exc)
            return True
        return int(stats.get("pending", 0)) > 0
