"""Hot reload: a changed ``config.yaml`` takes effect in the running bot, or is refused.

:class:`ConfigWatcher` looks at the file's modification time each cycle (and on SIGHUP reads
it regardless). A changed file is parsed exactly as ``check`` and ``run`` parse it:

* **valid** — :func:`apply_config` swaps it into the :class:`~bot.worker.Worker` between two
  cycles (under the worker's cycle lock), rebuilding only what depends on what changed:
  the engine (always: it is cheap and pure), the poller and its sources (when sources, symbols
  or ``poll.concurrency`` changed), the history loader (its symbols), the sender's chats and
  delivery settings, the monitor and heartbeat settings. Rule state lives in the store under
  the rule's ``id``, so a rule whose id is unchanged keeps everything: armed or not, its last
  value, cooldown, mutes, a seeded record. New rules start fresh (and wait for history if they
  need some the bot does not hold yet); removed rules simply stop being evaluated;
* **invalid** — nothing changes; the admin chat gets one message with the problems as
  ``check`` prints them, once per distinct file content (the notice id is a hash of it);
* **valid, but changing what the process was built on** — the Telegram connection
  (``telegram.token``, ``base_url``, ``timeout``, ``deadline``) or the store (``state.*``):
  not applied at all (never half-applied), one log line and one admin message say a restart
  is needed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Config, ConfigError, parse_config
from bot.errors import redact
from bot.lifecycle import freeze_long_lived
from bot.monitor import digest

if TYPE_CHECKING:
    from bot.model import Alert
    from bot.worker import Worker

log = logging.getLogger(__name__)

#: Telegram settings the running notifier was built with (chats and admin_chat are not).
TELEGRAM_RESTART_KEYS = ("token", "base_url", "timeout", "deadline")


@dataclass
class Change:
    """A changed config file, parsed: a ``config`` or the ``error`` it raised."""

    text_digest: str
    config: Config | None = None
    error: ConfigError | None = None


class ConfigWatcher:
    """Notices changes of the config file (mtime, or a forced read) and parses them once."""

    def __init__(self, path: str, environ: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.environ = environ
        self._mtime = self._stat()
        self._digest = self._read_digest()

    def _stat(self) -> int | None:
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return None

    def _read(self) -> str | None:
        try:
            return Path(self.path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def _read_digest(self) -> str | None:
        text = self._read()
        return digest(text) if text is not None else None

    def poll(self, *, force: bool = False) -> Change | None:
        """The file's new content, parsed, if it changed since the last call (``force``: read
        it even if its mtime did not move, as on SIGHUP). Content seen before — the running
        config, or a broken version already reported — gives None."""
        mtime = self._stat()
        if not force and mtime == self._mtime:
            return None
        self._mtime = mtime
        text = self._read()
        if text is None:
            return None  # deleted or unreadable mid-edit: keep running, look again next cycle
        text_digest = digest(text)
        if text_digest == self._digest:
            return None
        self._digest = text_digest
        environ = os.environ if self.environ is None else self.environ
        try:
            return Change(text_digest, config=parse_config(text, self.path, environ))
        except ConfigError as exc:
            return Change(text_digest, error=exc)


def restart_needed(old: Config, new: Config) -> list[str]:
    """Keys whose change needs a restart (the notifier or the store was built with them)."""
    keys = [
        f"telegram.{key}"
        for key in TELEGRAM_RESTART_KEYS
        if getattr(old.telegram, key) != getattr(new.telegram, key)
    ]
    keys.extend(
        f"state.{key}"
        for key in type(old.state).model_fields
        if getattr(old.state, key) != getattr(new.state, key)
    )
    return keys


@dataclass
class Diff:
    """What a reload changes, for the log line and for what to rebuild."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    sources_changed: bool = False
    symbols_changed: set[str] = field(default_factory=set)  # changed or removed symbol ids

    def describe(self) -> str:
        """One line: rules added / removed / changed, and whether sources were rebuilt."""
        parts = [
            f"{label} {', '.join(ids)}"
            for label, ids in (
                ("rules added:", self.added),
                ("removed:", self.removed),
                ("changed:", self.changed),
            )
            if ids
        ]
        if self.sources_changed:
            parts.append("sources rebuilt")
        return "; ".join(parts) or "no rule or source changes"


def diff(old: Config, new: Config) -> Diff:
    """Compare two configs rule by rule (by id) and symbol by symbol."""
    old_rules = {r.id: r for r in old.rules}
    new_rules = {r.id: r for r in new.rules}
    result = Diff(
        added=[i for i in new_rules if i not in old_rules],
        removed=[i for i in old_rules if i not in new_rules],
        changed=[i for i in new_rules if i in old_rules and new_rules[i] != old_rules[i]],
    )
    result.symbols_changed = {s for s, spec in old.symbols.items() if new.symbols.get(s) != spec}
    result.sources_changed = bool(
        old.sources != new.sources
        or result.symbols_changed
        or set(new.symbols) - set(old.symbols)
        or old.poll.concurrency != new.poll.concurrency
    )
    return result


def apply_config(worker: Worker, new: Config) -> Diff:
    """Swap ``new`` into ``worker`` (call between cycles, under its lock). Rebuilds only what
    depends on what changed; rule states stay in the store under their ids."""
    from bot.engine import Engine
    from bot.history import HistoryLoader
    from bot.sources.poller import Poller, build_sources

    old = worker.config
    changes = diff(old, new)
    old_needs = worker._history_needs()
    worker.config = new
    worker.engine = Engine.from_config(new)
    if changes.sources_changed:
        old_poller = worker.poller
        worker.poller = Poller(build_sources(new, worker.clock), concurrency=new.poll.concurrency)
        worker.poller.attach_store(worker.store)  # as start() did (sources that cache in it)
        old_poller.close()  # between cycles: no fetch of ours is running on it
    worker.history_loader = HistoryLoader(
        config=new, store=worker.store, fetch_daily=worker.poller.fetch_daily, clock=worker.clock
    )
    keeper = worker.history_keeper
    keeper.loader = worker.history_loader
    new_needs = worker._history_needs()
    for symbol, days in new_needs.items():
        before = old_needs.get(symbol, 0)
        grew = before is not None and (days is None or days > before)
        if symbol in changes.symbols_changed or (symbol in old_needs and grew):
            keeper.forget(symbol)  # its rules wait for the new history, loaded at once
    worker.sender.chats = dict(new.telegram.chats)
    worker.sender.admin_chat = new.telegram.admin_chat
    worker.sender.delivery = new.delivery
    worker.send_loop.idle_every = min(new.poll.every, worker.send_loop.idle_every)
    removed_symbols = set(old.symbols) - set(new.symbols)
    for symbol in removed_symbols:
        worker._last_polled.pop(symbol, None)
    worker.monitor.config = new.monitor
    worker.monitor.forget(removed_symbols)
    worker.heartbeat.config = new.heartbeat
    worker._told_unseeded.difference_update(changes.removed)
    return changes


def check_for_reload(
    worker: Worker, watcher: ConfigWatcher, *, force: bool = False
) -> list[tuple[Alert, list[str]]]:
    """Look at the config file; apply a valid change, report a broken or restart-needing one.

    Returns the admin notices to queue (possibly none). Never raises for a bad file."""
    change = watcher.poll(force=force)
    if change is None:
        return []
    now = worker.clock.now()
    if change.error is not None:
        problems = redact(str(change.error))
        log.error(
            "config %s changed but is invalid; still running the previous config:\n%s",
            watcher.path,
            problems,
        )
        text = (
            f"{watcher.path} changed but is invalid, so it was NOT applied; the bot goes on "
            f"with the previous config. Problems (as `python -m bot check` shows them):\n"
            f"{problems}"
        )
        return worker.admin_notices("config-invalid", change.text_digest, text, now)
    assert change.config is not None
    needs_restart = restart_needed(worker.config, change.config)
    if needs_restart:
        keys = ", ".join(needs_restart)
        log.warning(
            "config %s changed %s: that needs a restart; NOT applied (nothing of it), "
            "the bot goes on with the previous config until restarted",
            watcher.path,
            keys,
        )
        text = (
            f"{watcher.path} changed {keys}, which takes a restart: nothing of the change "
            "was applied. Restart the bot to use it."
        )
        return worker.admin_notices("config-restart", change.text_digest, text, now)
    for warning in change.config.warnings:
        log.warning("config: %s", warning)
    changes = apply_config(worker, change.config)
    freeze_long_lived()  # the new config and engine live until the next reload, as at start
    log.info("config %s reloaded: %s", watcher.path, changes.describe())
    return []
