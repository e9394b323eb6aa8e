"""Self-monitoring: the bot telling the operator when it is blind, and that it is alive.

* :class:`FeedMonitor` counts, per symbol, the polls in a row that failed while its market was
  open, and the history loads in a row that failed while rules wait for that history. At the
  configured count (``monitor.feed_down_after``, ``monitor.history_down_after``) it produces one
  "data feed down" notice for the admin chat, with the last error (already token-free: sources
  raise errors with redacted URLs, and the text is redacted again); when the symbol serves
  again, one "recovered" notice. Nothing in between, however long the outage.
* :class:`Heartbeat` pings ``heartbeat.url`` after each healthy cycle, in its own task with a
  short total timeout, so a dead-man's-switch service raises the alarm when the bot itself
  stops. A slow or failing ping never delays a cycle, and at most one is in flight.

Notices are :class:`~bot.model.Alert` rows queued through the outbox in the cycle's
transaction (:func:`admin_notice`), so they are delivered — and retried — like any alert. The
monitor's counters change only once that transaction committed (:meth:`FeedMonitor.commit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.config import HeartbeatConfig, MonitorConfig
from bot.errors import redact
from bot.model import Alert
from bot.notify.sender import admin_notice

if TYPE_CHECKING:
    from bot.model import Observation
    from bot.worker import CycleReport, Worker

log = logging.getLogger(__name__)


def digest(text: str) -> str:
    """A short stable hash of ``text`` (a config file's content, for once-per-content ids)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class _Track:
    """One feed's run of failures."""

    failures: int = 0
    error: str = ""
    down_since: datetime | None = None  # set once the "down" notice was queued

    def to_json(self) -> dict[str, Any]:
        since = self.down_since.isoformat() if self.down_since else None
        return {"failures": self.failures, "error": self.error, "down_since": since}

    @classmethod
    def from_json(cls, data: Any) -> _Track:
        since = data.get("down_since")
        return cls(
            failures=int(data.get("failures") or 0),
            error=str(data.get("error") or ""),
            down_since=datetime.fromisoformat(since) if since else None,
        )


@dataclass
class MonitorPlan:
    """What one cycle's observations mean for the monitor: notices to queue, and the counters
    to keep once they are queued (see :meth:`FeedMonitor.commit`)."""

    notices: list[Alert] = field(default_factory=list)
    tracks: dict[str, _Track] = field(default_factory=dict)

    def state(self) -> dict[str, Any]:
        """The counters as JSON, stored with the cycle's transaction (shared by replicas, kept
        across restarts: a restart in the middle of an outage does not report it again)."""
        return {key: track.to_json() for key, track in sorted(self.tracks.items())}


class FeedMonitor:
    """Feed-down / recovered detection for quotes (``feed:``) and history (``history:``)."""

    def __init__(self, config: MonitorConfig) -> None:
        self.config = config
        self._tracks: dict[str, _Track] = {}  # "feed:RUT" / "history:RUT" → its run

    def down(self) -> list[str]:
        """Keys ("feed:RUT", "history:RUT") currently reported down."""
        return sorted(k for k, t in self._tracks.items() if t.down_since is not None)

    def plan(
        self,
        now: datetime,
        chat: str | None,
        *,
        feed_ok: Iterable[str] = (),
        feed_failed: Mapping[str, str] | None = None,
        history_ok: Iterable[str] = (),
        history_failed: Mapping[str, tuple[int, str, list[str]]] | None = None,
        stored: Mapping[str, Any] | None = None,
    ) -> MonitorPlan:
        """Decide the notices of one cycle.

        ``feed_ok``: symbols polled successfully; ``feed_failed``: symbol → error, for polls
        that failed *while the market was open* (a closed market's failures do not count).
        ``history_ok``: symbols whose history is loaded; ``history_failed``: symbol →
        (failed loads in a row, last error, ids of the rules waiting for it). ``stored``: the
        counters as the store holds them (:meth:`MonitorPlan.state`; they win over this
        process's own, so replicas count together and report an outage once)."""
        tracks = {k: _Track(t.failures, t.error, t.down_since) for k, t in self._tracks.items()}
        if stored is not None:
            tracks = {}
            for key, data in stored.items():
                try:
                    tracks[key] = _Track.from_json(data)
                except (AttributeError, TypeError, ValueError):  # unreadable: start it over
                    log.warning("monitor: ignoring unreadable stored state of %s", key)
        plan = MonitorPlan(tracks=tracks)
        for symbol in feed_ok:
            self._recover(plan, f"feed:{symbol}", now, chat, f"Data feed {symbol} recovered")
        for symbol, error in (feed_failed or {}).items():
            track = tracks.setdefault(f"feed:{symbol}", _Track())
            track.failures += 1
            track.error = error
            if track.down_since is None and track.failures >= self.config.feed_down_after:
                track.down_since = now
                text = (
                    f"Data feed down: {symbol} failed {track.failures} polls in a row while "
                    f"its market is open. Last error: {error}"
                )
                self._notify(plan, "feed-down", f"{symbol}:{now.isoformat()}", text, now, chat)
        for symbol in history_ok:
            text = f"History of {symbol} loaded: its rules evaluate again"
            self._recover(plan, f"history:{symbol}", now, chat, text)
        for symbol, (failures, error, rules) in (history_failed or {}).items():
            track = tracks.setdefault(f"history:{symbol}", _Track())
            track.failures = failures
            track.error = error
            if track.down_since is None and failures >= self.config.history_down_after:
                track.down_since = now
                text = (
                    f"History of {symbol} cannot be loaded ({failures} tries in a row); "
                    f"rules waiting: {', '.join(rules) or '-'}. Last error: {error}"
                )
                self._notify(plan, "history-down", f"{symbol}:{now.isoformat()}", text, now, chat)
        return plan

    def _recover(
        self, plan: MonitorPlan, key: str, now: datetime, chat: str | None, text: str
    ) -> None:
        track = plan.tracks.pop(key, None)
        if track is None or track.down_since is None:
            return
        kind = key.split(":", 1)[0]
        since = track.down_since.isoformat()
        self._notify(plan, f"{kind}-recovered", f"{key.split(':', 1)[1]}:{since}", text, now, chat)

    @staticmethod
    def _notify(
        plan: MonitorPlan, kind: str, key: str, text: str, now: datetime, chat: str | None
    ) -> None:
        log.warning("monitor: %s", text)
        if chat is not None:
            plan.notices.append(admin_notice(kind, key, text, now, chat))

    def commit(self, plan: MonitorPlan) -> None:
        """The plan's notices are queued: keep its counters."""
        self._tracks = plan.tracks

    def forget(self, symbols: Iterable[str]) -> None:
        """Stop tracking symbols no longer configured (after a reload)."""
        gone = set(symbols)
        self._tracks = {k: t for k, t in self._tracks.items() if k.split(":", 1)[1] not in gone}


class Heartbeat:
    """Pings ``heartbeat.url`` (GET) in the background; at most one ping in flight."""

    def __init__(self, config: HeartbeatConfig) -> None:
        self.config = config
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self.sent = 0  # pings answered with a 2xx/3xx (for tests and logs)

    def ping(self) -> None:
        """Start a ping unless one is still running or no URL is configured (never waits)."""
        if self.config.url is None:
            return
        if self._task is not None and not self._task.done():
            log.debug("heartbeat: previous ping still running; skipping this one")
            return
        self._task = asyncio.create_task(self._ping(self.config.url), name="heartbeat")

    async def _ping(self, url: str) -> None:
        timeout = self.config.timeout.total_seconds()
        try:
            # the thread's own timeout bounds connect and read; wait_for bounds the total
            await asyncio.wait_for(asyncio.to_thread(_get, url, timeout), timeout)
        except Exception as exc:  # a failing heartbeat is worth a line, never a crash
            if not self._failing:
                log.warning("heartbeat to %s failed: %s", redact(url), redact(str(exc)) or exc)
            self._failing = True
            return
        if self._failing:
            log.info("heartbeat to %s works again", redact(url))
        self._failing = False
        self.sent += 1

    async def idle(self, timeout: float | None = None) -> None:
        """Wait (at most ``timeout`` s) for the ping in flight, if any."""
        task = self._task
        if task is not None and not task.done():
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), timeout)


def _get(url: str, timeout: float) -> None:
    import requests

    response = requests.get(url, timeout=timeout, allow_redirects=True)
    if response.status_code >= 400:
        raise RuntimeError(f"HTTP {response.status_code}")


def cycle_inputs(worker: Worker, now: datetime, report: CycleReport) -> dict[str, Any]:
    """What one cycle's fetches and the history loads tell ``worker.monitor`` (keyword
    arguments of :meth:`FeedMonitor.plan`): only failures while the symbol's market is open
    count towards "feed down"."""
    from bot.calendars import get_calendar

    ok = [s for s in report.polled if s not in report.fetch_failed]
    failed = {
        s: error
        for s, error in report.fetch_failed.items()
        if get_calendar(worker.config.symbols[s].calendar).is_open(now)
    }
    keeper = worker.history_keeper
    needs = worker._history_needs()
    waiting: dict[str, list[str]] = {}
    for rule in worker._needing_history():
        if rule.id in report.unseeded:
            for symbol in rule.symbols():
                waiting.setdefault(symbol, []).append(rule.id)
    history_failed = {
        s: (keeper.failures(s), keeper.errors.get(s, "not loaded"), waiting.get(s, []))
        for s in needs
        if s not in keeper.loaded and keeper.failures(s) > 0
    }
    return {
        "feed_ok": ok,
        "feed_failed": failed,
        "history_ok": [s for s in needs if s in keeper.loaded],
        "history_failed": history_failed,
    }


def last_polls(
    stored: Mapping[str, Any],
    now: datetime,
    report: CycleReport,
    observations: Iterable[Observation],
) -> dict[str, Any]:
    """The stored last-poll record (symbol → time, ok, value or error), updated with this
    cycle's polls; written with the cycle's transaction, read by ``status``."""
    polls = dict(stored)
    values = {o.symbol: o for o in observations if o.kind != "tick"}
    for symbol in report.polled:
        entry: dict[str, Any] = {"at": now.isoformat(), "ok": symbol not in report.errors}
        if symbol in report.errors:
            entry["error"] = report.errors[symbol]
        if symbol in values:
            entry["value"] = values[symbol].value
            entry["time"] = values[symbol].time.isoformat()
        polls[symbol] = entry
    return polls
