"""The live driver: one poll → evaluate → persist → deliver cycle, and what it needs around it.

``Worker.poll_once`` is what the scheduler runs every ``poll.every`` and what ``run --once``
runs once. Per cycle:

1. decide which symbols are due (their market is open or just closed, their own interval passed);
2. fetch their latest values concurrently (failover per symbol), sanity-check them;
3. for markets whose session just became final, fetch the final daily close and append it to
   history — ``on: close`` rules and record rules only ever see final closes;
4. run the engine (the same one backtests use) and write the new rule states and the new alerts
   to the store in **one transaction** (the outbox);
5. drain the outbox through the notifier.

A restart reloads states and the outbox, so it neither repeats an alert (ids are deterministic,
the outbox has a unique key) nor misses a crossing (rules compare with the last persisted value).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.calendars import get_calendar
from bot.clock import Clock
from bot.config import Config, SymbolConfig
from bot.engine import Engine, EvaluationResult
from bot.errors import SanityError, SourceError
from bot.history import HistoryLoader, history_needs
from bot.model import Alert, History, Observation
from bot.notify.base import Notifier
from bot.notify.sender import Sender
from bot.sanity import SanityChecker
from bot.sources.poller import Poller
from bot.store.base import Store

log = logging.getLogger(__name__)

CONSOLE_CHAT = "console"
_SANITY_KEY = "sanity"
_CLOSES_KEY = "closes_seen"
# a source's "poll me at" moment this close counts as now (timers fire a few ms early)
_HINT_SLACK = timedelta(milliseconds=200)


@dataclass
class CycleReport:
    """What one cycle did, for logs, ``--once`` and tests."""

    polled: list[str] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    new_alert_ids: list[str] = field(default_factory=list)
    delivered: int = 0
    pending: int = 0

    def summary(self) -> str:
        """One log line: what was polled, alerted, delivered."""
        return (
            f"polled {','.join(self.polled) or 'nothing (markets closed)'}, "
            f"{len(self.alerts)} alerts ({len(self.new_alert_ids)} new), "
            f"{self.delivered} delivered, {self.pending} pending, {len(self.errors)} errors"
        )


class Worker:
    """Owns the live state of one bot process: rule states, history, sanity memory."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock,
        store: Store,
        poller: Poller,
        notifier: Notifier,
        sender: Sender,
        engine: Engine | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        self.poller = poller
        self.notifier = notifier
        self.sender = sender
        self.engine = engine or Engine.from_config(config)
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:8]}"
        self.sanity = SanityChecker(config.sanity, clock, history=lambda: self.history)
        self.history = History()
        self.states: dict[str, dict[str, Any]] = {}
        self._history_refreshed: datetime | None = None
        self._last_polled: dict[str, datetime] = {}
        self._closes_seen: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self.history_loader = HistoryLoader(
            config=config, store=store, fetch_daily=poller.fetch_daily, clock=clock
        )

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Open the store, reload state, load history, start the notifier."""
        await asyncio.to_thread(self.store.migrate)
        self.poller.attach_store(self.store)
        self.states = await asyncio.to_thread(self.store.load_states)  # for logs and status
        self.sanity.load(await asyncio.to_thread(self.store.get_value, _SANITY_KEY) or {})
        self._closes_seen = dict(await asyncio.to_thread(self.store.get_value, _CLOSES_KEY) or {})
        await self.refresh_history()
        await self.notifier.start()
        log.info(
            "worker %s started: %d symbols, %d rules, %d rule states restored",
            self.worker_id,
            len(self.config.symbols),
            len(self.config.rules),
            len(self.states),
        )

    async def idle(self) -> None:
        """Return once no cycle is running (the next one may start right after)."""
        async with self._lock:
            pass

    async def stop(self, drain_for: timedelta = timedelta(seconds=10)) -> None:
        """Finish in-flight deliveries (the rest stays queued), flush state, close."""
        try:
            await self.sender.drain_until_empty(self.clock.now() + drain_for)
        except Exception:  # shutting down: log, never lose the queued rows
            log.exception("delivery during shutdown failed; undelivered alerts stay queued")
        await self.notifier.stop()
        await asyncio.to_thread(self.poller.close)  # the sources' pooled HTTP connections
        await asyncio.to_thread(self._flush)
        await asyncio.to_thread(self.store.close)
        log.info("worker %s stopped", self.worker_id)

    def _flush(self) -> None:
        self.store.set_value(_SANITY_KEY, self.sanity.state())
        self.store.set_value(_CLOSES_KEY, self._closes_seen)

    async def refresh_history(self) -> None:
        """Load/refresh daily history for symbols whose rules need it (start, then daily)."""
        needs = self._history_needs()
        if not needs:
            return
        self.history = await asyncio.to_thread(self.history_loader.load, needs)
        self._history_refreshed = self.clock.now()

    def _history_needs(self) -> dict[str, int | None]:
        """Symbol id → days of history the enabled rules need (None: all)."""
        needs = history_needs(rule for rule in self.engine.rules if rule.params.enabled)
        return {symbol: days for symbol, days in needs.items() if symbol in self.config.symbols}

    # ---------------------------------------------------------------- the cycle

    def due_symbols(self, now: datetime) -> list[str]:
        """Symbols to poll now: market open (or just closed) and their own interval passed."""
        due: list[str] = []
        for symbol_id, spec in self.config.symbols.items():
            calendar = get_calendar(spec.calendar)
            if not calendar.should_poll(now, self.config.poll.after_close):
                continue
            every = spec.poll or self.config.poll.every
            last = self._last_polled.get(symbol_id)
            # a little slack so a job firing a few ms early does not skip a round
            if last is not None and now - last < every - timedelta(seconds=1):
                wish = self.poller.next_poll(symbol_id, spec, now)  # e.g. fast FOMC polling
                if wish is None or wish - now > _HINT_SLACK:
                    continue
            due.append(symbol_id)
        return due

    def next_hint(self, now: datetime) -> datetime | None:
        """The soonest moment a source asked for a poll (see ``Source.next_poll``), if any."""
        wishes = [
            wish
            for symbol_id, spec in self.config.symbols.items()
            if (wish := self.poller.next_poll(symbol_id, spec, now)) is not None
        ]
        return min(wishes) if wishes else None

    def next_wake(self, now: datetime) -> datetime:
        """When any symbol next needs a poll (lets the scheduler sleep through closed hours)."""
        wakes = [
            get_calendar(spec.calendar).next_poll_time(now, self.config.poll.after_close)
            for spec in self.config.symbols.values()
        ]
        return min(wakes) if wakes else now + self.config.poll.every

    async def poll_once(self) -> CycleReport:
        """One poll → evaluate → persist → deliver cycle. Never raises for bad data."""
        async with self._lock:  # a slow cycle never overlaps the next one
            return await self._cycle()

    async def _cycle(self) -> CycleReport:
        now = self.clock.now()
        report = CycleReport()
        if self.history_loader.refresh_due(self._history_refreshed, now):
            await self.refresh_history()
        due = self.due_symbols(now)
        report.polled = due
        requests = [(symbol_id, self.config.symbols[symbol_id]) for symbol_id in due]
        results = await asyncio.to_thread(self.poller.fetch_latest_many, requests)
        for symbol_id in due:
            self._last_polled[symbol_id] = now
            result = results.get(symbol_id)
            if isinstance(result, SourceError) or result is None:
                # the poller has logged it (with the source, symbol and URL)
                report.errors[symbol_id] = str(result) if result is not None else "no result"
                continue
            spec = self.config.symbols[symbol_id]
            try:
                checked = self.sanity.check(
                    result, market_open=get_calendar(spec.calendar).is_open(now)
                )
            except SanityError as exc:  # logged by the checker; never reaches a rule
                report.errors[symbol_id] = str(exc)
                continue
            report.observations.append(checked)
        report.observations.extend(await self._final_closes(now, due, report))
        report.observations.append(Observation(symbol="*", time=now, value=0.0, kind="tick"))

        evaluation: list[EvaluationResult] = []

        def evaluate(
            states: dict[str, dict[str, Any]],
        ) -> tuple[dict[str, dict[str, Any]], list[tuple[Alert, list[str]]]]:
            # Runs inside the store's transaction on the states as they are *now* in the
            # database (another replica may have just moved them), never a stale copy.
            result = self.engine.evaluate(report.observations, self.history, states, self.clock)
            evaluation.append(result)
            return result.states, [(alert, self.chats_for(alert)) for alert in result.alerts]

        self.states, report.new_alert_ids = await asyncio.to_thread(
            self.store.evaluate_and_commit, evaluate, now
        )
        report.alerts = evaluation[-1].alerts
        await asyncio.to_thread(self._flush)
        for alert in report.alerts:
            if alert.id in report.new_alert_ids:
                log.info("alert %s queued: %s", alert.id, alert.text)
        drained = await self.sender.drain()
        report.delivered = drained.sent
        report.pending = drained.pending
        return report

    async def _final_closes(
        self, now: datetime, due: Sequence[str], report: CycleReport
    ) -> list[Observation]:
        """Final daily closes not seen before, for due symbols whose session is now final."""
        observations: list[Observation] = []
        for symbol_id in due:
            spec = self.config.symbols[symbol_id]
            observation = await self._final_close(symbol_id, spec, now, report)
            if observation is not None:
                observations.append(observation)
        return observations

    async def _final_close(
        self, symbol_id: str, spec: SymbolConfig, now: datetime, report: CycleReport
    ) -> Observation | None:
        if not self._wants_closes(symbol_id):
            return None
        calendar = get_calendar(spec.calendar)
        session = calendar.last_session_closed_by(now)
        if session is None or not calendar.close_is_final(
            session.date, now, self.config.poll.settle
        ):
            return None
        if self._closes_seen.get(symbol_id, "") >= session.date.isoformat():
            return None
        try:
            bars = await asyncio.to_thread(
                self.poller.fetch_daily,
                symbol_id,
                spec,
                session.date - timedelta(days=7),
                session.date,
            )
        except SourceError as exc:
            report.errors[symbol_id] = str(exc)
            log.warning("final close of %s for %s not available: %s", symbol_id, session.date, exc)
            return None
        found = bars.value_on_or_before(session.date)
        if found is None or found[0] != session.date:
            # no bar for that session yet (data lag): try again next poll
            return None
        close = Observation(
            symbol=symbol_id,
            time=session.close,
            value=found[1],
            kind="close",
            session=session.date,
            source="daily",
        )
        try:
            self.sanity.check(close, market_open=False)
        except SanityError as exc:  # logged by the checker; not marked seen: asked again
            report.errors[symbol_id] = str(exc)
            return None
        self._closes_seen[symbol_id] = session.date.isoformat()
        series = self.history.get(symbol_id)
        last = series.last()
        if last is None or last[0] <= session.date:  # a refresh may already hold this row
            series.append(session.date, close.value)
        return close

    def _wants_closes(self, symbol_id: str) -> bool:
        probe = Observation(symbol=symbol_id, time=self.clock.now(), value=1.0, kind="close")
        return any(rule.params.enabled and rule.wants(probe) for rule in self.engine.rules)

    def chats_for(self, alert: Alert) -> list[str]:
        """Named chats an alert goes to: the rule's ``chats``, else all; console without a token."""
        if not self.config.telegram.enabled:
            return [CONSOLE_CHAT]
        return list(alert.chats) or list(self.config.telegram.chats)
