"""The live driver: one poll → evaluate → persist cycle, and what it needs around it.

``Worker.poll_once`` is what the scheduler runs every ``poll.every`` and what ``run --once``
runs once. Per cycle:

1. decide which symbols are due (their market is open or just closed, their own interval
   passed — measured on the monotonic clock, so a wall-clock step back never stalls polling);
2. fetch their latest values concurrently (failover per symbol);
3. for markets whose session just became final, fetch the final daily close — ``on: close``
   rules and record rules only ever see final closes;
4. in **one transaction** (``Store.transact``), on what the database holds *now*: sanity-check
   the values against the stored sanity memory, drop closes another cycle already took (the
   stored closes-seen marks), run the engine (the same one backtests use), and write the new
   rule states, the new alerts (the outbox), the sanity memory and the closes-seen marks.
   A failed transaction leaves nothing marked: the next cycle does it all again;
5. wake the send loop (``bot.sending``), which delivers in its own task: a slow Telegram never
   delays a poll.

Rules that need history (``Rule.history_days``) are *unseeded* until their symbols' history
is loaded (``bot.history.HistoryKeeper``: concurrent loads, a start-up deadline, retries with
back-off): they evaluate nothing and fire nothing, which is said once in the log and to the
admin chat. When the history arrives, each such rule's stored state is reconciled with it
(``Rule.reconcile``) inside the next cycle's transaction.

A restart reloads states and the outbox, so it neither repeats an alert (ids are deterministic,
the outbox has a unique key) nor misses a crossing (rules compare with the last persisted value).

Length (over 400 lines): the five steps above are one cycle around one transaction; start-up,
history and the send loop already live in their own modules.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.calendars import get_calendar
from bot.clock import Clock
from bot.config import Config, SymbolConfig
from bot.engine import Engine, EvaluationResult
from bot.errors import SanityError, SourceError
from bot.history import HistoryKeeper, HistoryLoader, history_needs
from bot.model import Alert, History, Observation
from bot.monitor import FeedMonitor, Heartbeat, MonitorPlan, cycle_inputs, last_polls
from bot.notify.base import Notifier
from bot.notify.sender import Sender, admin_notice
from bot.reload import ConfigWatcher, check_for_reload
from bot.rules import Rule
from bot.sanity import SanityChecker
from bot.sending import SendLoop
from bot.sources.poller import Poller
from bot.store.base import Outcome, Snapshot, Store

log = logging.getLogger(__name__)

CONSOLE_CHAT = "console"
#: Store keys written in the cycle's transaction, with the rule states.
SANITY_KEY = "sanity"
CLOSES_KEY = "closes_seen"
POLLS_KEY = "last_polls"  # symbol → its last poll (time, ok, value or error), for `status`
MONITOR_KEY = "monitor"  # the feed monitor's counters (bot.monitor)
#: How often sent and failed outbox rows past ``delivery.retention`` are deleted.
PRUNE_EVERY = timedelta(hours=6)
#: The engine's newest-seen map ("SYMBOL/kind" → time), apart from the rule states.
SEEN_KEY = "seen"
#: How long start-up waits for history before the first poll (loads go on in the background).
STARTUP_DEADLINE = timedelta(seconds=10)
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
    unseeded: list[str] = field(default_factory=list)  # rule ids waiting for history
    fetch_failed: dict[str, str] = field(default_factory=dict)  # polled symbol → fetch error
    rules_evaluated: int = 0
    durations: dict[str, float] = field(default_factory=dict)  # step → milliseconds

    @property
    def healthy(self) -> bool:
        """False when symbols were polled and every fetch failed (the bot is blind)."""
        return not (self.polled and len(self.fetch_failed) == len(self.polled))

    def summary(self) -> str:
        """One log line: what was polled and alerted (delivery runs in its own task)."""
        waiting = f", {len(self.unseeded)} rules unseeded" if self.unseeded else ""
        timing = ", ".join(f"{k} {v:.0f} ms" for k, v in self.durations.items())
        return (
            f"polled {','.join(self.polled) or 'nothing (markets closed)'}, "
            f"{len(self.alerts)} alerts ({len(self.new_alert_ids)} new), "
            f"{len(self.errors)} errors{waiting}, {self.rules_evaluated} rules evaluated"
            + (f"; {timing}" if timing else "")
        )

    def fields(self) -> dict[str, Any]:
        """The cycle as structured data (``--log-format json`` puts it under ``cycle``)."""
        return {
            "polled": self.polled,
            "fetch_failed": list(self.fetch_failed),
            "errors": self.errors,
            "rules_evaluated": self.rules_evaluated,
            "alerts": len(self.alerts),
            "new_alerts": len(self.new_alert_ids),
            "unseeded": self.unseeded,
            "healthy": self.healthy,
            "duration_ms": {k: round(v, 1) for k, v in self.durations.items()},
        }


@dataclass
class _Fetched:
    """A cycle's inputs gathered before its transaction (network work stays outside it)."""

    quotes: list[tuple[Observation, bool]] = field(default_factory=list)  # (value, market open)
    closes: list[Observation] = field(default_factory=list)


class Worker:
    """Owns the live side of one bot process: history, poll times, the send loop."""

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
        startup_deadline: timedelta | None = STARTUP_DEADLINE,  # None: wait for every load
        history_retry: timedelta = timedelta(minutes=1),
        history_max_retry: timedelta = timedelta(minutes=30),
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        self.poller = poller
        self.notifier = notifier
        self.sender = sender
        # Rows another replica queued (or left leased when it died) wake nobody here: look
        # for them at least as often as we poll, as when delivery ran inside each cycle.
        self.send_loop = SendLoop(sender, idle_every=min(config.poll.every, timedelta(seconds=30)))
        self.engine = engine or Engine.from_config(config)
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:8]}"
        self.startup_deadline = startup_deadline
        self.sanity = self._new_checker()  # as of the last commit (read-only)
        self.states: dict[str, dict[str, Any]] = {}
        self._last_polled: dict[str, float] = {}  # symbol → clock.monotonic() of its last poll
        self._closes_seen: dict[str, str] = {}  # as of the last commit: skips needless fetches
        self._to_reconcile: set[str] = set()  # rule ids whose history just arrived
        self._told_unseeded: set[str] = set()
        #: symbol → its newest accepted quote (for the cockpit's /status)
        self.last_quotes: dict[str, Observation] = {}
        self._lock = asyncio.Lock()
        self.history_loader = HistoryLoader(
            config=config, store=store, fetch_daily=poller.fetch_daily, clock=clock
        )
        self.history_keeper = HistoryKeeper(
            self.history_loader, clock, retry=history_retry, max_retry=history_max_retry
        )
        # Self-monitoring and hot reload (bot.monitor, bot.reload).
        self.monitor = FeedMonitor(config.monitor)
        self.heartbeat = Heartbeat(config.heartbeat)
        self.watcher: ConfigWatcher | None = None  # set by start() when the config is a file
        self._last_prune: float | None = None

    def _new_checker(self) -> SanityChecker:
        """A sanity checker; the cycle's transaction loads it from the stored memory."""
        return SanityChecker(self.config.sanity, self.clock, history=lambda: self.history)

    @property
    def history(self) -> History:
        """Daily history of the symbols rules need (loaded, or partial while unseeded)."""
        return self.history_keeper.history

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Open the store, reload state, load history (bounded), start notifier and sender."""
        if not self.config.telegram.enabled:
            # INFO, which `run` shows by default; the demo (console by design, WARNING) does not
            log.info("no token: alerts go to the console (set TELEGRAM_BOT_TOKEN to send)")
        await asyncio.to_thread(self.store.migrate)
        self.poller.attach_store(self.store)
        self.states = await asyncio.to_thread(self.store.load_states)  # for logs and status
        self.sanity.load(await asyncio.to_thread(self.store.get_value, SANITY_KEY) or {})
        self._closes_seen = dict(await asyncio.to_thread(self.store.get_value, CLOSES_KEY) or {})
        if Path(self.config.path).is_file():
            self.watcher = ConfigWatcher(self.config.path)
        await self.load_history(self.startup_deadline)
        await self.notifier.start()
        self.send_loop.start()
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
        """Finish in-flight deliveries (the rest stays queued), then close.

        Nothing is written here: every cycle's state went out with its transaction."""
        await self.send_loop.stop(drain_for)
        try:
            await self.sender.drain_until_empty(self.clock.now() + drain_for)
        except Exception:  # shutting down: log, never lose the queued rows
            log.exception("delivery during shutdown failed; undelivered alerts stay queued")
        await self.heartbeat.idle(self.config.heartbeat.timeout.total_seconds())
        await self.notifier.stop()
        await asyncio.to_thread(self.poller.close)  # the sources' pooled HTTP connections
        await asyncio.to_thread(self.store.close)
        log.info("worker %s stopped", self.worker_id)

    async def load_history(self, timeout: timedelta | None = None) -> None:
        """Start the due history loads (all symbols at once) and wait for them, at most
        ``timeout``; loads still running are picked up by a later cycle."""
        self.history_keeper.start(self._history_needs())
        await self.history_keeper.wait(timeout.total_seconds() if timeout is not None else None)
        self._history_arrived(self.history_keeper.take_arrived())
        late = self.history_keeper.loading()
        if late:
            log.warning("history of %s still loading; going on without it", ", ".join(late))

    def _history_needs(self) -> dict[str, int | None]:
        """Symbol id → days of history the enabled rules need (None: all)."""
        needs = history_needs(rule for rule in self.engine.rules if rule.params.enabled)
        return {
            symbol: days
            for symbol, days in needs.items()
            if symbol in self.config.symbols
            and self.poller.has_daily_history(self.config.symbols[symbol])
        }

    def _history_arrived(self, symbols: set[str]) -> None:
        for rule in self._needing_history():
            if symbols.intersection(rule.symbols()):
                self._to_reconcile.add(rule.id)

    def _needing_history(self) -> list[Rule[Any]]:
        return [r for r in self.engine.rules if r.params.enabled and r.history_days() != 0]

    def unseeded_rules(self) -> list[str]:
        """Ids of enabled rules whose history is not loaded: they evaluate nothing yet."""
        loaded = self.history_keeper.loaded
        needs = self._history_needs()
        return [
            rule.id
            for rule in self._needing_history()
            if any(s in needs and s not in loaded for s in rule.symbols())
        ]

    # ---------------------------------------------------------------- the cycle

    def due_symbols(self, now: datetime | None = None) -> list[str]:
        """Symbols to poll now: market open (or just closed) and their own interval passed.

        ``now`` (default: the clock's) decides sessions; intervals are measured on
        ``clock.monotonic()``."""
        now = now if now is not None else self.clock.now()
        mono = self.clock.monotonic()
        due: list[str] = []
        for symbol_id, spec in self.config.symbols.items():
            calendar = get_calendar(spec.calendar)
            if not calendar.should_poll(now, self.config.poll.after_close):
                continue
            every = (spec.poll or self.config.poll.every).total_seconds()
            last = self._last_polled.get(symbol_id)
            # a little slack so a job firing a few ms early does not skip a round
            if last is not None and mono - last < every - 1.0:
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

    def mark_polled(self, symbol_id: str) -> None:
        """Record that ``symbol_id`` was polled now (what a cycle does for each due symbol)."""
        self._last_polled[symbol_id] = self.clock.monotonic()

    def next_wake(self, now: datetime) -> datetime:
        """When any symbol next needs a poll (lets the scheduler sleep through closed hours)."""
        wakes = [
            get_calendar(spec.calendar).next_poll_time(now, self.config.poll.after_close)
            for spec in self.config.symbols.values()
        ]
        return min(wakes) if wakes else now + self.config.poll.every

    async def poll_once(self) -> CycleReport:
        """One poll → evaluate → persist cycle. Never raises for bad data.

        First the config file is looked at (hot reload, between cycles); after a healthy
        cycle the heartbeat is pinged; one structured log line tells what the cycle did."""
        async with self._lock:  # a slow cycle never overlaps the next one
            await self._reload(force=False)
            started = time.perf_counter()
            report = await self._cycle()
            report.durations["total"] = (time.perf_counter() - started) * 1000
            # Inside the lock: shutdown waits for idle() and then cancels the job, so work left
            # outside it would be cancelled mid-statement by every SIGTERM after a cycle.
            await self._prune_if_due()
        log.info("cycle: %s", report.summary(), extra={"cycle": report.fields()})
        if report.healthy:
            self.heartbeat.ping()
        return report

    async def reload_config(self) -> None:
        """Read the config file now (SIGHUP), between cycles; apply it if valid."""
        async with self._lock:
            await self._reload(force=True)

    async def _reload(self, *, force: bool) -> None:
        if self.watcher is None:
            return
        notices = check_for_reload(self, self.watcher, force=force)
        if not notices:
            return
        try:  # queued at once (not with the next cycle): the admin hears of it now
            await asyncio.to_thread(self.store.commit, {}, notices, self.clock.now())
        except Exception as exc:
            log.error("could not queue the config notice for the admin chat: %s", exc)
            return
        self.send_loop.wake()

    def admin_chat(self) -> str | None:
        """Where notices for the operator go: the admin chat, the console without a token."""
        telegram = self.config.telegram
        return telegram.admin_chat if telegram.enabled else CONSOLE_CHAT

    def admin_notices(
        self, kind: str, key: str, text: str, now: datetime
    ) -> list[tuple[Alert, list[str]]]:
        """One admin notice (id from ``kind`` and ``key``) with its chat; none without one."""
        chat = self.admin_chat()
        if chat is None:
            return []
        return [(admin_notice(kind, key, text, now, chat), [chat])]

    async def _prune_if_due(self) -> None:
        """Delete sent and failed outbox rows past ``delivery.retention`` (every few hours)."""
        mono = self.clock.monotonic()
        if self._last_prune is not None and mono - self._last_prune < PRUNE_EVERY.total_seconds():
            return
        self._last_prune = mono
        before = self.clock.now() - self.config.delivery.retention
        try:
            pruned = await asyncio.to_thread(self.store.prune_outbox, before)
        except Exception as exc:  # housekeeping: the next try is in a few hours
            log.warning("pruning old outbox rows failed: %s", exc)
            return
        if pruned:
            log.info("pruned %d sent/failed outbox rows older than %s", pruned, before.date())

    async def _cycle(self) -> CycleReport:
        now = self.clock.now()
        report = CycleReport()
        self._history_arrived(self.history_keeper.take_arrived())
        self.history_keeper.start(self._history_needs())  # retries and refreshes, not waited on
        due = self.due_symbols(now)
        report.polled = due
        requests = [(symbol_id, self.config.symbols[symbol_id]) for symbol_id in due]
        fetch_started = time.perf_counter()
        results = await asyncio.to_thread(self.poller.fetch_latest_many, requests)
        report.durations["fetch"] = (time.perf_counter() - fetch_started) * 1000
        fetched = _Fetched()
        for symbol_id in due:
            self.mark_polled(symbol_id)
            result = results.get(symbol_id)
            if isinstance(result, SourceError) or result is None:
                # the poller has logged it (with the source, symbol and URL)
                report.errors[symbol_id] = str(result) if result is not None else "no result"
                report.fetch_failed[symbol_id] = report.errors[symbol_id]
                continue
            calendar = get_calendar(self.config.symbols[symbol_id].calendar)
            fetched.quotes.append((result, calendar.is_open(now)))
        fetched.closes = await self._final_closes(now, due, report)
        report.unseeded = self.unseeded_rules()
        self._tell_unseeded_in_log(report.unseeded)
        monitored = cycle_inputs(self, now, report)
        plans: list[MonitorPlan] = []
        skipped = set(report.unseeded)
        report.rules_evaluated = sum(
            1 for r in self.engine.rules if r.params.enabled and r.id not in skipped
        )
        mutes = await asyncio.to_thread(self.current_mutes, now)

        evaluation: list[tuple[EvaluationResult, SanityChecker, dict[str, str]]] = []

        def evaluate(snapshot: Snapshot) -> Outcome:
            # Runs inside the store's transaction on what the database holds *now* (another
            # replica may have just moved it), never a stale copy.
            checker, closes_seen, observations = self._accept(snapshot, fetched, report)
            states = snapshot.states
            reconciled = self._reconcile(states)
            states = {**states, **reconciled}
            observations.append(Observation(symbol="*", time=now, value=0.0, kind="tick"))
            report.observations = observations
            result = self.engine.evaluate(
                observations,
                self.history,
                states,
                self.clock,
                skip=report.unseeded,
                mutes=mutes,
                seen=snapshot.values.get(SEEN_KEY),
            )
            evaluation.append((result, checker, closes_seen))
            deliveries = [(alert, self.chats_for(alert)) for alert in result.alerts]
            deliveries.extend(self._unseeded_notices(report.unseeded, now))
            stored = {  # (a symbol removed from the config drops out)
                k: v
                for k, v in (snapshot.values.get(MONITOR_KEY) or {}).items()
                if k.split(":", 1)[-1] in self.config.symbols
            }
            plan = self.monitor.plan(now, self.admin_chat(), stored=stored, **monitored)
            plans.append(plan)
            deliveries.extend((notice, list(notice.chats)) for notice in plan.notices)
            values = {SANITY_KEY: checker.state(), CLOSES_KEY: closes_seen, SEEN_KEY: result.seen}
            if plan.state() != stored:
                values[MONITOR_KEY] = plan.state()
            if due:
                polls = snapshot.values.get(POLLS_KEY) or {}
                values[POLLS_KEY] = last_polls(polls, now, report, observations)
            return Outcome(
                states={**reconciled, **result.states}, deliveries=deliveries, values=values
            )

        transact_started = time.perf_counter()
        self.states, report.new_alert_ids = await asyncio.to_thread(
            self.store.transact,
            evaluate,
            now,
            (SANITY_KEY, CLOSES_KEY, SEEN_KEY, POLLS_KEY, MONITOR_KEY),
        )
        report.durations["transact"] = (time.perf_counter() - transact_started) * 1000
        self.monitor.commit(plans[-1])
        # Committed: only now is anything of this cycle "done" in memory.
        evaluated, self.sanity, self._closes_seen = evaluation[-1]
        report.alerts = evaluated.alerts
        for observation in report.observations:
            known = self.last_quotes.get(observation.symbol)
            if observation.symbol != "*" and (known is None or observation.time >= known.time):
                self.last_quotes[observation.symbol] = observation
        self._to_reconcile.clear()
        self._told_unseeded.intersection_update(report.unseeded)
        self._told_unseeded.update(report.unseeded)
        for alert in report.alerts:
            if alert.id in report.new_alert_ids:
                log.info("alert %s queued: %s", alert.id, alert.text)
        if report.new_alert_ids:
            self.send_loop.wake()
        return report

    def current_mutes(self, now: datetime) -> dict[str, datetime]:
        """The running mutes (``/mute``) from the store; none from a store without them."""
        try:
            return self.store.mutes(now)
        except NotImplementedError:
            return {}

    def _accept(
        self, snapshot: Snapshot, fetched: _Fetched, report: CycleReport
    ) -> tuple[SanityChecker, dict[str, str], list[Observation]]:
        """The fetched values that pass the stored sanity memory, and the closes not taken
        yet by the stored closes-seen marks (both updated, to be written with the states)."""
        checker = self._new_checker()
        checker.load(snapshot.values.get(SANITY_KEY) or {})
        closes_seen = dict(snapshot.values.get(CLOSES_KEY) or {})
        observations: list[Observation] = []
        for quote, market_open in fetched.quotes:
            try:
                observations.append(checker.check(quote, market_open=market_open))
            except SanityError as exc:  # logged by the checker; never reaches a rule
                report.errors[quote.symbol] = str(exc)
        for close in fetched.closes:
            assert close.session is not None
            try:
                checker.check(close, market_open=False)
            except SanityError as exc:  # logged by the checker; not marked seen: asked again
                report.errors[close.symbol] = str(exc)
                continue
            series = self.history.get(close.symbol)
            last = series.last()
            if last is None or last[0] <= close.session:  # a refresh may already hold it
                series.append(close.session, close.value)
            session = close.session.isoformat()
            if closes_seen.get(close.symbol, "") >= session:
                continue  # another cycle (a replica) took this close already
            closes_seen[close.symbol] = session
            observations.append(close)
        return checker, closes_seen, observations

    def _reconcile(self, states: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """States of rules whose history just arrived, made consistent with it."""
        changed: dict[str, dict[str, Any]] = {}
        for rule in self.engine.rules:
            state = states.get(rule.id)
            if rule.id not in self._to_reconcile or not state or state.get("rule") is None:
                continue
            fixed = rule.reconcile(state["rule"], self.history)
            if fixed != state["rule"]:
                log.warning("rule %s: state reconciled with the loaded history", rule.id)
                changed[rule.id] = {**state, "rule": fixed}
        return changed

    def _tell_unseeded_in_log(self, unseeded: Sequence[str]) -> None:
        for rule_id in self._told_unseeded.difference(unseeded):
            log.info("rule %s: history loaded; evaluating again", rule_id)
        for rule_id in unseeded:
            if rule_id not in self._told_unseeded:
                log.warning(
                    "rule %s is unseeded: its history is not loaded yet, so it evaluates "
                    "nothing until it is (retrying with back-off)",
                    rule_id,
                )

    def _unseeded_notices(
        self, unseeded: Sequence[str], now: datetime
    ) -> list[tuple[Alert, list[str]]]:
        """Admin-chat (or console) notices for rules newly unseeded; once per rule and day
        (the id is deterministic: a second replica's notice is a no-op)."""
        chat = self.admin_chat()
        if chat is None:
            return []
        notices = []
        for rule_id in unseeded:
            if rule_id in self._told_unseeded:
                continue
            text = (
                f"Rule {rule_id} is waiting for its history: the source did not deliver it. "
                "It sends no alerts until the history is loaded (retrying with back-off)."
            )
            notice = admin_notice(
                "unseeded", f"{rule_id}:{now.date().isoformat()}", text, now, chat
            )
            notices.append((notice, [chat]))
        return notices

    async def _final_closes(
        self, now: datetime, due: Sequence[str], report: CycleReport
    ) -> list[Observation]:
        """Final daily closes not seen before, for due symbols whose session is now final.

        Fetched concurrently: at a close every symbol of a market is due at once, and a
        source slow to publish the bar must not delay the others (the poller backs off per
        symbol while a bar is missing)."""
        found = await asyncio.gather(
            *(
                self._final_close(symbol_id, self.config.symbols[symbol_id], now, report)
                for symbol_id in due
            )
        )
        return [observation for observation in found if observation is not None]

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
        # The marks as of the last commit: the transaction checks again on the stored ones.
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
        value = found[1]
        if not (value > 0):
            return None
        return Observation(
            symbol=symbol_id,
            time=session.close,
            value=value,
            kind="close",
            session=session.date,
            source="daily",
        )

    def _wants_closes(self, symbol_id: str) -> bool:
        if not self.poller.has_daily_history(self.config.symbols[symbol_id]):
            return False  # e.g. FOMC statements: no daily bars to ask for
        probe = Observation(symbol=symbol_id, time=self.clock.now(), value=1.0, kind="close")
        return any(rule.params.enabled and rule.wants(probe) for rule in self.engine.rules)

    def chats_for(self, alert: Alert) -> list[str]:
        """Named chats an alert goes to: the rule's ``chats``, else all; console without a token."""
        if not self.config.telegram.enabled:
            return [CONSOLE_CHAT]
        return list(alert.chats) or list(self.config.telegram.chats)
