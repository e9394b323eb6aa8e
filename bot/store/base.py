"""The state store contract: rule state, the alert outbox, history cache, small key/values.

Backends (SQLite, PostgreSQL) implement :class:`Store`; the same contract tests run against
both. The outbox holds one row per (alert id, chat name); alert ids are unique, so writing the
same alert twice is a no-op. Rule states and new outbox rows are written in one transaction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from bot.model import Alert, DailySeries


@dataclass(frozen=True)
class Delivery:
    """One outbox row: an alert to be delivered to one named chat.

    ``message_ids``: Telegram's ids of the parts of a long alert it has accepted so far (a
    retry sends only the parts after these)."""

    alert: Alert
    chat: str
    attempts: int = 0
    message_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class OutboxRow:
    """Everything the store knows about one outbox row (for operators, tests and ``stats``).

    Times are timezone-aware UTC; ``message_ids`` are Telegram's ids of the parts it accepted
    (all of them once sent; of a pending row, the parts a retry will not send again).
    """

    alert: Alert
    chat: str
    status: str  # pending | sent | failed
    attempts: int
    next_attempt_at: datetime
    claimed_by: str | None
    lease_until: datetime | None
    error: str | None
    message_ids: tuple[int, ...]
    sent_at: datetime | None
    created_at: datetime


@dataclass
class Snapshot:
    """What a cycle's transaction read: every rule state and the key/values it asked for
    (a key never written is absent)."""

    states: dict[str, dict[str, Any]]
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """What a cycle's transaction writes: changed rule states, new alerts with their chats,
    and key/values to replace (sanity memory, closes seen: whatever must commit with them)."""

    states: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    deliveries: Sequence[tuple[Alert, Sequence[str]]] = ()
    values: Mapping[str, Any] = field(default_factory=dict)


class Store(ABC):
    """Persistent state. Methods are synchronous and each is one transaction."""

    @abstractmethod
    def migrate(self) -> None:
        """Create or upgrade the schema; idempotent."""

    @abstractmethod
    def load_states(self) -> dict[str, dict[str, Any]]:
        """Rule id → engine state."""

    @abstractmethod
    def commit(
        self,
        states: Mapping[str, Mapping[str, Any]],
        deliveries: Sequence[tuple[Alert, Sequence[str]]],
        now: datetime,
    ) -> list[str]:
        """In one transaction: upsert rule states; insert each alert with one outbox row per
        chat unless an alert with that id exists. Returns the ids that were new."""

    @abstractmethod
    def evaluate_and_commit(
        self,
        evaluate: Callable[
            [dict[str, dict[str, Any]]],
            tuple[Mapping[str, Mapping[str, Any]], Sequence[tuple[Alert, Sequence[str]]]],
        ],
        now: datetime,
    ) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """In one transaction that excludes every other process's: read the rule states, call
        ``evaluate(states) -> (new states, deliveries)``, write like :meth:`commit`. Returns
        all states after the write and the new alert ids. (Replicas evaluate one at a time,
        always on the latest states.)"""

    def transact(
        self, evaluate: Callable[[Snapshot], Outcome], now: datetime, keys: Sequence[str] = ()
    ) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """Like :meth:`evaluate_and_commit`, with key/values under the same discipline: in one
        transaction that excludes every other process's, read the rule states and the values
        of ``keys``, call ``evaluate(snapshot) -> outcome``, write the outcome's states,
        alerts (as :meth:`commit`) and values. Nothing is written if anything fails. Returns
        all states after the write and the new alert ids."""
        raise NotImplementedError

    @abstractmethod
    def claim(self, worker: str, now: datetime, lease: timedelta, limit: int) -> list[Delivery]:
        """Take up to ``limit`` due, pending deliveries nobody holds a live lease on.

        A row leased by ``worker`` itself is not handed out again until its lease expires either:
        a sender that claims while earlier claims are still in flight never gets a row twice.
        Rows come oldest alert first (alert time, then insertion order), then by chat."""

    @abstractmethod
    def mark_sent(
        self, alert_id: str, chat: str, now: datetime, message_ids: Sequence[int]
    ) -> None:
        """The chat got the message (Telegram answered ok)."""

    def record_parts(self, alert_id: str, chat: str, message_ids: Sequence[int]) -> None:
        """Remember the message ids of the parts of a long alert Telegram accepted so far, on
        a pending row (a sent or failed row is left alone). A later claim returns them, so a
        retry — or another process after a crash — sends only the remaining parts."""
        raise NotImplementedError

    @abstractmethod
    def mark_failed(self, alert_id: str, chat: str, now: datetime, error: str) -> None:
        """Give up on this delivery (permanent failure)."""

    @abstractmethod
    def retry_later(self, alert_id: str, chat: str, not_before: datetime, error: str) -> None:
        """Count an attempt, release the lease, and make the row due again at ``not_before``."""

    @abstractmethod
    def deliveries(self, status: str | None = None) -> list[tuple[Delivery, str]]:
        """Every outbox row with its status (pending, sent, failed), oldest first."""

    @abstractmethod
    def get_value(self, key: str) -> Any | None:
        """A small JSON value stored under ``key`` (chat migrations, notices sent...)."""

    @abstractmethod
    def set_value(self, key: str, value: Any) -> None:
        """Store a small JSON value."""

    @abstractmethod
    def load_history(self, symbol: str) -> DailySeries | None:
        """The cached daily series of a symbol."""

    @abstractmethod
    def save_history(self, symbol: str, series: DailySeries) -> None:
        """Replace the cached daily series of a symbol."""

    @abstractmethod
    def close(self) -> None:
        """Close connections."""

    # Additive helpers with a default so other Store implementations (fakes) need not have them.

    def add_value(self, key: str, value: Any) -> bool:
        """Store ``value`` under ``key`` only if the key is absent; True when this call stored it.

        Atomic across processes: two replicas racing to "notify the admin once" get one True."""
        raise NotImplementedError

    def outbox(self, status: str | None = None) -> list[OutboxRow]:
        """Every outbox row with all its columns, oldest first (optionally one status only)."""
        raise NotImplementedError

    def stats(self) -> dict[str, int]:
        """Outbox row counts by status (``pending``, ``sent``, ``failed``; zeros included)."""
        raise NotImplementedError

    def release(self, alert_id: str, chat: str, worker: str, not_before: datetime) -> None:
        """Hand back a pending row ``worker`` claimed but did not try: clear the lease without
        counting an attempt; due again at ``not_before`` (or later, if it already was).

        The sender uses it to keep one chat's messages in order: when an earlier message to the
        chat has to wait, the later ones it claimed wait with it instead of holding a lease."""
        raise NotImplementedError

    def prune_outbox(self, before: datetime) -> int:
        """Delete sent and failed outbox rows that finished before ``before`` (and alerts left
        with no row); pending rows are never touched. Returns how many rows were deleted."""
        raise NotImplementedError

    def history_summary(self) -> dict[str, tuple[int, date | None, date | None]]:
        """Symbol → (rows, first date, last date) of the cached daily history (``status``)."""
        raise NotImplementedError

    # The Telegram cockpit (schema version 3): mutes and the getUpdates lease.

    def set_mute(self, rule_id: str, until: datetime, by: str | None, now: datetime) -> None:
        """Mute ``rule_id`` (``*``: every rule) until ``until``; replaces an earlier mute."""
        raise NotImplementedError

    def clear_mutes(self, rule_id: str | None = None) -> int:
        """Lift the mute of ``rule_id`` (None: every mute); how many were lifted."""
        raise NotImplementedError

    def mutes(self, now: datetime) -> dict[str, datetime]:
        """Rule id (``*``: all rules) → until when it is muted, for mutes still running."""
        raise NotImplementedError

    def acquire_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take or renew the lease ``name`` for ``holder`` until ``now + ttl``; True if held."""
        raise NotImplementedError

    def release_lease(self, name: str, holder: str) -> None:
        """Give up the lease ``name`` now if ``holder`` has it."""
        raise NotImplementedError

    def advance_mark(self, name: str, holder: str, mark: int) -> bool:
        """Raise the lease's mark to ``mark`` if ``holder`` holds it and it is lower; True if so."""
        raise NotImplementedError
