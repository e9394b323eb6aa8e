"""Wiring: build a ready :class:`~bot.worker.Worker` from a validated config."""

from __future__ import annotations

from bot.clock import Clock, SystemClock
from bot.config import Config
from bot.notify.base import NOTIFIERS, Notifier
from bot.notify.sender import Sender
from bot.sources.poller import Poller, build_sources
from bot.store import open_store
from bot.worker import Worker


def build_notifier(config: Config) -> Notifier:
    """Telegram when a token is configured, otherwise the console (stdout)."""
    if config.telegram.enabled:
        return NOTIFIERS.get("telegram")(config.telegram)
    return NOTIFIERS.get("console")()


def build_worker(
    config: Config,
    *,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
    worker_id: str | None = None,
) -> Worker:
    """Sources, store, notifier and sender for ``config``, assembled into a Worker."""
    clock = clock or SystemClock()
    store = open_store(config.state.url, settings=config.state)
    poller = Poller(build_sources(config, clock), concurrency=config.poll.concurrency)
    notifier = notifier or build_notifier(config)
    worker = Worker(
        config,
        clock=clock,
        store=store,
        poller=poller,
        notifier=notifier,
        sender=Sender(config=config, store=store, notifier=notifier, clock=clock),
        worker_id=worker_id,
    )
    worker.sender.worker_id = worker.worker_id
    return worker
