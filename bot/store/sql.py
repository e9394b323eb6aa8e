"""SQL shared by the SQLite and PostgreSQL stores.

Both backends speak the same SQL here (``INSERT … ON CONFLICT``, upserts with ``excluded``), written
with ``?`` placeholders; a backend supplies connections, transactions, its DDL and the few clauses
that differ (row locking on claim, how an alert gets its insertion sequence number).

Times are stored as fixed-width UTC ISO-8601 text (``2025-09-18T14:30:00.000000+00:00``), so they
compare correctly as strings in both databases and read back as timezone-aware UTC datetimes.
JSON values are stored as text written and read by Python's ``json`` (which keeps NaN, found in
history columns, that a database JSON type would reject).

Length (over 400 lines): every statement both backends run, and the migration list, in one place
so SQLite and PostgreSQL cannot drift apart.
"""

from __future__ import annotations

import json
import threading
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from bot.errors import StoreError
from bot.model import Alert, DailySeries
from bot.store.base import Delivery, OutboxRow, Outcome, Snapshot, Store

STATUSES = ("pending", "sent", "failed")
_PUT_VALUE = (
    "INSERT INTO kv (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"


def to_db_time(value: datetime) -> str:
    """A timezone-aware datetime as fixed-width UTC text (naive datetimes are a bug: refused)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"naive datetime {value.isoformat()} given to the store; pass UTC times")
    return value.astimezone(UTC).strftime(_TIME_FORMAT)


def from_db_time(value: str | None) -> datetime | None:
    """Text written by :func:`to_db_time` back to a timezone-aware UTC datetime."""
    if value is None:
        return None
    return datetime.fromisoformat(value).astimezone(UTC)


def dump_json(value: Any) -> str:
    """Compact JSON text."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def series_to_json(series: DailySeries) -> str:
    """A daily series as compact JSON: ISO dates, closes and extra columns."""
    return dump_json(
        {
            "dates": [d.isoformat() for d in series.dates],
            "values": series.values,
            "columns": series.columns,
        }
    )


def series_from_json(text: str) -> DailySeries:
    """Inverse of :func:`series_to_json`."""
    data = json.loads(text)
    return DailySeries(
        [date.fromisoformat(d) for d in data["dates"]],
        data["values"],
        data.get("columns") or {},
    )


def schema_v1(seq_column: str, *extra: str) -> tuple[str, ...]:
    """Version 1 of the schema, the same on every backend but for how ``alerts.seq`` (insertion
    order, the tie-break between alerts with the same time) is generated; ``extra`` statements
    follow the table they need."""
    return (
        "CREATE TABLE IF NOT EXISTS rule_state ("
        " rule_id TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS alerts ("
        f" id TEXT PRIMARY KEY, {seq_column}, rule_id TEXT NOT NULL, symbol TEXT NOT NULL,"
        " time TEXT NOT NULL, payload TEXT NOT NULL, created_at TEXT NOT NULL)",
        *extra,
        "CREATE INDEX IF NOT EXISTS alerts_order ON alerts (time, seq)",
        "CREATE TABLE IF NOT EXISTS deliveries ("
        " alert_id TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,"
        " chat TEXT NOT NULL,"
        " status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " next_attempt_at TEXT NOT NULL, claimed_by TEXT, lease_until TEXT, error TEXT,"
        " message_ids TEXT, sent_at TEXT,"
        " PRIMARY KEY (alert_id, chat))",
        "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at)",
        "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS history (symbol TEXT PRIMARY KEY, payload TEXT NOT NULL)",
    )


#: Version 3 (issue 10, the Telegram cockpit): mutes set with ``/mute`` and the leases replicas
#: take turns on (one ``getUpdates`` poller per bot), with the last update id handled.
SCHEMA_V3 = (
    "CREATE TABLE IF NOT EXISTS mutes ("
    " rule_id TEXT PRIMARY KEY, until TEXT NOT NULL, by_user TEXT, created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS leases ("
    " name TEXT PRIMARY KEY, holder TEXT NOT NULL, until TEXT NOT NULL,"
    " mark BIGINT NOT NULL DEFAULT 0)",
)


def _ids(text: str | None) -> tuple[int, ...]:
    """The ``message_ids`` column (JSON list, or NULL) as a tuple of ints."""
    return tuple(int(m) for m in json.loads(text)) if text else ()


class Cursor(Protocol):
    """The bits of a DB-API cursor the shared code uses."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Tx(Protocol):
    """One open transaction: run a ``?``-placeholder statement, get a cursor."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...


_WRITES = ("INSERT", "UPDATE", "DELETE")


class _CountingTx:
    """A :class:`Tx` that counts statements and the rows they wrote (``SqlStore.io``): what
    tests assert about a quiet cycle, and what the benchmarks print."""

    def __init__(self, tx: Tx, io: dict[str, int]) -> None:
        self._tx = tx
        self._io = io

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        cursor = self._tx.execute(sql, params)
        self._io["statements"] += 1
        if sql.startswith(_WRITES) and cursor.rowcount > 0:
            self._io["rows"] += cursor.rowcount
        return cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        self._tx.executemany(sql, rows)
        self._io["statements"] += 1  # one round of the driver's batch
        self._io["rows"] += len(rows)  # upserts: each row is written


@dataclass(frozen=True)
class Migration:
    """Statements that bring the schema to ``version``."""

    version: int
    statements: tuple[str, ...]


#: Migrations every backend applies after its own version 1, in order (append new ones here).
SHARED_MIGRATIONS: tuple[Migration, ...] = (
    # v2 (issue 11): the claim's scan of pending rows stays on a small index however many
    # sent/failed rows pile up; pruning finds old finished rows by when they finished.
    Migration(
        2,
        (
            "CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (next_attempt_at) "
            "WHERE status = 'pending'",
            "CREATE INDEX IF NOT EXISTS deliveries_finished ON deliveries (status, sent_at)",
        ),
    ),
    Migration(3, SCHEMA_V3),
)


class SqlStore(Store):
    """A :class:`Store` over a DB-API connection, one transaction per public method.

    One connection per store, guarded by a lock: calls from several threads (the poll loop and
    the sender running in a worker thread) are serialised rather than interleaved on the
    connection. Concurrency *between* stores (two replicas, two processes) is the database's job:
    row locks on PostgreSQL, the single-writer lock on SQLite.
    """

    backend = "sql"
    migrations: tuple[Migration, ...] = ()
    #: Appended to the claim query: row locking (PostgreSQL) or nothing (SQLite).
    claim_lock_clause = ""
    #: Inserts one alert; parameters: id, rule_id, symbol, time, payload, created_at.
    insert_alert_sql = ""

    def __init__(self, display_url: str) -> None:
        self.display_url = display_url  # password already redacted
        self._lock = threading.RLock()
        self._closed = False
        #: transactions (write / read), statements and rows written since the store opened
        self.io: dict[str, int] = {"write_tx": 0, "read_tx": 0, "statements": 0, "rows": 0}
        # rule_id → (stored text, decoded state): a state whose text is unchanged since the
        # last read is not decoded again (a quiet cycle reads every state, changes few)
        self._decoded: dict[str, tuple[str, dict[str, Any]]] = {}

    # -- backend hooks -------------------------------------------------------------------------

    @abstractmethod
    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Tx]:
        """Open a transaction (a write one takes the write lock up front), commit on success."""

    @abstractmethod
    def _is_db_error(self, exc: BaseException) -> bool:
        """Whether ``exc`` comes from the database driver."""

    @abstractmethod
    def _lock_for_migration(self, tx: Tx) -> None:
        """Serialise concurrent ``migrate`` calls across processes (inside the transaction)."""

    def _lock_for_evaluation(self, tx: Tx) -> None:
        """Serialise rule evaluation across processes (inside the transaction). A write
        transaction on SQLite already excludes other writers; PostgreSQL takes a lock."""

    @abstractmethod
    def _close_connection(self) -> None:
        """Close the underlying connection."""

    # -- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _tx(self, what: str, write: bool = True) -> Iterator[Tx]:
        """A transaction with the store lock held; database errors become :class:`StoreError`."""
        with self._lock:
            if self._closed:
                raise StoreError(f"{self.backend} store {self.display_url} is closed ({what})")
            try:
                with self._transaction(write) as tx:
                    self.io["write_tx" if write else "read_tx"] += 1
                    yield _CountingTx(tx, self.io)
            except StoreError:
                raise
            except (TypeError, ValueError) as exc:
                # e.g. a state or alert payload json can't serialise: the transaction rolled back
                raise StoreError(
                    f"{self.backend} store {self.display_url}: {what}: {type(exc).__name__}: {exc}"
                ) from exc
            except Exception as exc:
                if not self._is_db_error(exc):
                    raise
                raise StoreError(
                    f"{self.backend} store {self.display_url}: {what}: {type(exc).__name__}: {exc}"
                ) from exc

    # -- schema --------------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        """The version this code migrates to."""
        return max((m.version for m in self.migrations), default=0)

    def migrate(self) -> None:
        """Create or upgrade the schema in one transaction; safe to run twice or concurrently."""
        with self._tx("migrate") as tx:
            self._lock_for_migration(tx)
            tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = tx.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            if current > self.schema_version:
                raise StoreError(
                    f"{self.backend} store {self.display_url}: schema version {current} is newer "
                    f"than this bot's ({self.schema_version}); upgrade the bot"
                )
            for migration in self.migrations:
                if migration.version <= current:
                    continue
                for statement in migration.statements:
                    tx.execute(statement)
                tx.execute("DELETE FROM schema_version")
                tx.execute("INSERT INTO schema_version (version) VALUES (?)", (migration.version,))

    def current_version(self) -> int:
        """The schema version recorded in the database (0 before the first migrate)."""
        with self._tx("read schema version (has migrate() run?)", write=False) as tx:
            row = tx.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    # -- rule state ----------------------------------------------------------------------------

    def load_states(self) -> dict[str, dict[str, Any]]:
        """Rule id → engine state."""
        with self._tx("load rule states", write=False) as tx:
            rows = tx.execute("SELECT rule_id, state FROM rule_state").fetchall()
        return {rule_id: json.loads(state) for rule_id, state in rows}

    def commit(
        self,
        states: Mapping[str, Mapping[str, Any]],
        deliveries: Sequence[tuple[Alert, Sequence[str]]],
        now: datetime,
    ) -> list[str]:
        """In one transaction: upsert rule states; insert each new alert and its outbox rows.

        An alert whose id exists already is skipped together with its outbox rows (the unique
        id is what makes a re-poll, a restart or a second replica harmless). Any failure —
        including a state or alert that can't be serialised — rolls everything back.
        """
        with self._tx("commit") as tx:
            return self._write_evaluation(tx, states, deliveries, now)

    def evaluate_and_commit(
        self,
        evaluate: Callable[
            [dict[str, dict[str, Any]]],
            tuple[Mapping[str, Mapping[str, Any]], Sequence[tuple[Alert, Sequence[str]]]],
        ],
        now: datetime,
    ) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """Read the rule states, run ``evaluate`` on them and write its result, in one
        transaction that only one process at a time may hold.

        This is what makes two replicas safe: each evaluates against the states the other has
        just written, never a stale copy, so a crossing is only ever seen once.
        Returns every rule state after the write and the ids of the new alerts.
        """

        def run(snapshot: Snapshot) -> Outcome:
            new_states, deliveries = evaluate(snapshot.states)
            return Outcome(new_states, deliveries)

        return self.transact(run, now)

    def transact(
        self, evaluate: Callable[[Snapshot], Outcome], now: datetime, keys: Sequence[str] = ()
    ) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """Read rule states and the values of ``keys``, run ``evaluate``, write its outcome:
        one transaction that only one process at a time may hold (see
        :meth:`evaluate_and_commit`). Returns every rule state after the write and the new ids.
        """
        with self._tx("evaluate and commit") as tx:
            self._lock_for_evaluation(tx)
            states = self._read_states(tx)
            values: dict[str, Any] = {}
            stored: dict[str, str] = {}
            for key in dict.fromkeys(keys):
                row = tx.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
                if row is not None:
                    stored[key] = row[0]
                    values[key] = json.loads(row[0])
            outcome = evaluate(Snapshot(dict(states), values))
            new_ids = self._write_evaluation(tx, outcome.states, outcome.deliveries, now)
            changed = []
            for key, value in outcome.values.items():
                text = dump_json(value)
                if stored.get(key) != text:  # an unchanged value is not written again
                    changed.append((key, text))
            tx.executemany(_PUT_VALUE, changed)
        states.update({k: dict(v) for k, v in outcome.states.items()})
        return states, new_ids

    def _read_states(self, tx: Tx) -> dict[str, dict[str, Any]]:
        """Every rule state; JSON decoded only for rows whose text changed since last read.

        The decoded dicts are shared with earlier reads: callers must not mutate them (the
        engine and the rules never do; :meth:`transact` copies what it returns)."""
        cache = self._decoded
        states: dict[str, dict[str, Any]] = {}
        for rule_id, text in tx.execute("SELECT rule_id, state FROM rule_state").fetchall():
            hit = cache.get(rule_id)
            if hit is None or hit[0] != text:
                hit = cache[rule_id] = (text, json.loads(text))
            states[rule_id] = hit[1]
        if len(cache) > len(states):  # rows deleted elsewhere
            for rule_id in set(cache).difference(states):
                del cache[rule_id]
        return states

    def _write_evaluation(
        self,
        tx: Tx,
        states: Mapping[str, Mapping[str, Any]],
        deliveries: Sequence[tuple[Alert, Sequence[str]]],
        now: datetime,
    ) -> list[str]:
        stamp = to_db_time(now)
        new_ids: list[str] = []
        tx.executemany(  # one batch, not a round trip per rule
            "INSERT INTO rule_state (rule_id, state, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (rule_id) DO UPDATE "
            "SET state = excluded.state, updated_at = excluded.updated_at",
            [(rule_id, dump_json(state), stamp) for rule_id, state in states.items()],
        )
        for alert, chats in deliveries:
            cursor = tx.execute(
                self.insert_alert_sql,
                (
                    alert.id,
                    alert.rule_id,
                    alert.symbol,
                    to_db_time(alert.time),
                    dump_json(alert.to_json()),
                    stamp,
                ),
            )
            if cursor.rowcount != 1:
                continue  # this alert exists already: no second outbox entry
            new_ids.append(alert.id)
            for chat in dict.fromkeys(chats):  # a chat named twice still gets one message
                tx.execute(
                    "INSERT INTO deliveries (alert_id, chat, status, attempts, "
                    "next_attempt_at) VALUES (?, ?, 'pending', 0, ?)",
                    (alert.id, chat, stamp),
                )
        return new_ids

    # -- outbox --------------------------------------------------------------------------------

    _ORDER = "ORDER BY a.time, a.seq, d.chat"

    def claim(self, worker: str, now: datetime, lease: timedelta, limit: int) -> list[Delivery]:
        """Lease up to ``limit`` due pending rows that no one holds a live lease on."""
        if limit <= 0:
            return []
        stamp = to_db_time(now)
        until = to_db_time(now + lease)
        with self._tx("claim") as tx:
            rows = tx.execute(
                "SELECT d.alert_id, d.chat, d.attempts, a.payload, d.message_ids "
                "FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
                "WHERE d.status = 'pending' AND d.next_attempt_at <= ? "
                "AND (d.lease_until IS NULL OR d.lease_until <= ?) "
                f"{self._ORDER} LIMIT ? {self.claim_lock_clause}",
                (stamp, stamp, limit),
            ).fetchall()
            for alert_id, chat, *_rest in rows:
                tx.execute(
                    "UPDATE deliveries SET claimed_by = ?, lease_until = ? "
                    "WHERE alert_id = ? AND chat = ?",
                    (worker, until, alert_id, chat),
                )
        return [
            Delivery(Alert.from_json(json.loads(payload)), chat, int(attempts), _ids(ids))
            for _alert_id, chat, attempts, payload, ids in rows
        ]

    def _update_row(self, what: str, sql: str, params: Sequence[Any], key: tuple[str, str]) -> None:
        """Run an UPDATE of one outbox row; an unknown row is an error, a no-op update is not."""
        with self._tx(what) as tx:
            cursor = tx.execute(sql, params)
            if cursor.rowcount == 0:
                exists = tx.execute(
                    "SELECT status FROM deliveries WHERE alert_id = ? AND chat = ?", key
                ).fetchone()
                if exists is None:
                    raise StoreError(
                        f"{self.backend} store {self.display_url}: {what}: no outbox row for "
                        f"alert {key[0]!r} chat {key[1]!r}"
                    )

    def mark_sent(
        self, alert_id: str, chat: str, now: datetime, message_ids: Sequence[int]
    ) -> None:
        """The chat got the message: status ``sent``, lease released, message ids kept."""
        self._update_row(
            "mark sent",
            "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, sent_at = ?, "
            "message_ids = ?, error = NULL, claimed_by = NULL, lease_until = NULL "
            "WHERE alert_id = ? AND chat = ? AND status <> 'sent'",
            (to_db_time(now), dump_json([int(m) for m in message_ids]), alert_id, chat),
            (alert_id, chat),
        )

    def record_parts(self, alert_id: str, chat: str, message_ids: Sequence[int]) -> None:
        """The ids of the parts Telegram accepted so far, on a pending row (else a no-op)."""
        self._update_row(
            "record sent parts",
            "UPDATE deliveries SET message_ids = ? "
            "WHERE alert_id = ? AND chat = ? AND status = 'pending'",
            (dump_json([int(m) for m in message_ids]), alert_id, chat),
            (alert_id, chat),
        )

    def mark_failed(self, alert_id: str, chat: str, now: datetime, error: str) -> None:
        """Give up on a pending row (a row already sent stays sent)."""
        self._update_row(
            "mark failed",
            "UPDATE deliveries SET status = 'failed', attempts = attempts + 1, error = ?, "
            "next_attempt_at = ?, claimed_by = NULL, lease_until = NULL "
            "WHERE alert_id = ? AND chat = ? AND status = 'pending'",
            (error, to_db_time(now), alert_id, chat),
            (alert_id, chat),
        )

    def retry_later(self, alert_id: str, chat: str, not_before: datetime, error: str) -> None:
        """Count an attempt, release the lease, make the pending row due at ``not_before``."""
        self._update_row(
            "retry later",
            "UPDATE deliveries SET attempts = attempts + 1, error = ?, next_attempt_at = ?, "
            "claimed_by = NULL, lease_until = NULL "
            "WHERE alert_id = ? AND chat = ? AND status = 'pending'",
            (error, to_db_time(not_before), alert_id, chat),
            (alert_id, chat),
        )

    def release(self, alert_id: str, chat: str, worker: str, not_before: datetime) -> None:
        """Hand back a pending row ``worker`` holds, untried: lease cleared, attempts unchanged,
        due at ``not_before`` or later. A row ``worker`` no longer holds is left alone."""
        stamp = to_db_time(not_before)
        self._update_row(
            "release",
            "UPDATE deliveries SET claimed_by = NULL, lease_until = NULL, "
            "next_attempt_at = CASE WHEN next_attempt_at < ? THEN ? ELSE next_attempt_at END "
            "WHERE alert_id = ? AND chat = ? AND status = 'pending' AND claimed_by = ?",
            (stamp, stamp, alert_id, chat, worker),
            (alert_id, chat),
        )

    def _select_rows(self, status: str | None) -> list[Any]:
        if status is not None and status not in STATUSES:
            raise StoreError(f"unknown delivery status {status!r}; expected one of {STATUSES}")
        where = "WHERE d.status = ? " if status else ""
        with self._tx("list outbox", write=False) as tx:
            return tx.execute(
                "SELECT a.payload, d.chat, d.status, d.attempts, d.next_attempt_at, "
                "d.claimed_by, d.lease_until, d.error, d.message_ids, d.sent_at, a.created_at "
                f"FROM deliveries d JOIN alerts a ON a.id = d.alert_id {where}{self._ORDER}",
                (status,) if status else (),
            ).fetchall()

    def deliveries(self, status: str | None = None) -> list[tuple[Delivery, str]]:
        """Every outbox row with its status, oldest alert first."""
        return [
            (Delivery(Alert.from_json(json.loads(r[0])), r[1], int(r[3]), _ids(r[8])), r[2])
            for r in self._select_rows(status)
        ]

    def outbox(self, status: str | None = None) -> list[OutboxRow]:
        """Every outbox row with all its columns, oldest alert first."""
        out = []
        for r in self._select_rows(status):
            next_at = from_db_time(r[4])
            created = from_db_time(r[10])
            assert next_at is not None and created is not None  # NOT NULL columns
            out.append(
                OutboxRow(
                    alert=Alert.from_json(json.loads(r[0])),
                    chat=r[1],
                    status=r[2],
                    attempts=int(r[3]),
                    next_attempt_at=next_at,
                    claimed_by=r[5],
                    lease_until=from_db_time(r[6]),
                    error=r[7],
                    message_ids=_ids(r[8]),
                    sent_at=from_db_time(r[9]),
                    created_at=created,
                )
            )
        return out

    def stats(self) -> dict[str, int]:
        """Outbox row counts by status."""
        with self._tx("outbox stats", write=False) as tx:
            rows = tx.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetchall()
        counts = dict.fromkeys(STATUSES, 0)
        counts.update({status: int(n) for status, n in rows})
        return counts

    def prune_outbox(self, before: datetime) -> int:
        """Delete sent and failed rows that finished before ``before`` (sent: ``sent_at``;
        failed: when it was given up), then alerts left with no row. Pending rows are never
        touched. Returns how many outbox rows went."""
        stamp = to_db_time(before)
        with self._tx("prune outbox") as tx:
            cursor = tx.execute(
                "DELETE FROM deliveries WHERE (status = 'sent' AND sent_at < ?) "
                "OR (status = 'failed' AND next_attempt_at < ?)",
                (stamp, stamp),
            )
            pruned = max(cursor.rowcount, 0)
            tx.execute(
                "DELETE FROM alerts WHERE created_at < ? AND NOT EXISTS "
                "(SELECT 1 FROM deliveries d WHERE d.alert_id = alerts.id)",
                (stamp,),
            )
        return pruned

    def history_summary(self) -> dict[str, tuple[int, date | None, date | None]]:
        """Symbol → (rows, first date, last date) of the cached daily history."""
        with self._tx("history summary", write=False) as tx:
            rows = tx.execute("SELECT symbol, payload FROM history ORDER BY symbol").fetchall()
        summary: dict[str, tuple[int, date | None, date | None]] = {}
        for symbol, payload in rows:
            dates = json.loads(payload).get("dates") or []
            first = date.fromisoformat(dates[0]) if dates else None
            last = date.fromisoformat(dates[-1]) if dates else None
            summary[symbol] = (len(dates), first, last)
        return summary

    # -- key/values and history ----------------------------------------------------------------

    def get_value(self, key: str) -> Any | None:
        """The JSON value stored under ``key``, or None."""
        with self._tx("get value", write=False) as tx:
            row = tx.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_value(self, key: str, value: Any) -> None:
        """Store (replace) a JSON value."""
        with self._tx("set value") as tx:
            self._put_value(tx, key, value)

    @staticmethod
    def _put_value(tx: Tx, key: str, value: Any) -> None:
        tx.execute(_PUT_VALUE, (key, dump_json(value)))

    def add_value(self, key: str, value: Any) -> bool:
        """Store ``value`` only if ``key`` is absent; True when this call stored it."""
        with self._tx("add value") as tx:
            cursor = tx.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (key, dump_json(value)),
            )
            return cursor.rowcount == 1

    # -- mutes and leases (schema version 3) ------------------------------------------------

    def set_mute(self, rule_id: str, until: datetime, by: str | None, now: datetime) -> None:
        """Mute ``rule_id`` (or ``*``: every rule) until ``until`` (replaces an earlier mute)."""
        with self._tx("set mute") as tx:
            tx.execute(
                "INSERT INTO mutes (rule_id, until, by_user, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (rule_id) DO UPDATE SET until = excluded.until, "
                "by_user = excluded.by_user, created_at = excluded.created_at",
                (rule_id, to_db_time(until), by, to_db_time(now)),
            )

    def clear_mutes(self, rule_id: str | None = None) -> int:
        """Lift the mute of ``rule_id`` (None: every mute); how many were lifted."""
        with self._tx("clear mutes") as tx:
            if rule_id is None:
                return int(tx.execute("DELETE FROM mutes").rowcount)
            return int(tx.execute("DELETE FROM mutes WHERE rule_id = ?", (rule_id,)).rowcount)

    def mutes(self, now: datetime) -> dict[str, datetime]:
        """Rule id (``*``: all rules) → until when it is muted; only mutes still running."""
        with self._tx("read mutes", write=False) as tx:
            rows = tx.execute("SELECT rule_id, until FROM mutes").fetchall()
        out: dict[str, datetime] = {}
        for rule_id, until in rows:
            moment = from_db_time(until)
            if moment is not None and moment > now:
                out[str(rule_id)] = moment
        return out

    def acquire_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take or renew the lease ``name`` for ``holder`` until ``now + ttl``; True if held.

        Atomic across processes: of two replicas asking at once, one gets it; a lease whose
        holder stopped renewing is free once it expired."""
        until = to_db_time(now + ttl)
        with self._tx("acquire lease") as tx:
            tx.execute(
                "INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING",
                (name, holder, until),
            )
            cursor = tx.execute(
                "UPDATE leases SET holder = ?, until = ? "
                "WHERE name = ? AND (holder = ? OR until < ?)",
                (holder, until, name, holder, to_db_time(now)),
            )
            return cursor.rowcount == 1

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up now if ``holder`` has it (a clean stop: no wait for the expiry)."""
        with self._tx("release lease") as tx:
            tx.execute(
                "UPDATE leases SET until = ? WHERE name = ? AND holder = ?",
                (to_db_time(datetime(1970, 1, 1, tzinfo=UTC)), name, holder),
            )

    def advance_mark(self, name: str, holder: str, mark: int) -> bool:
        """Raise the lease's mark (the last update id handled) to ``mark`` if ``holder`` has the
        lease and the mark is lower; True when it did. One True per mark across replicas: an
        update handled by one is never handled again by another."""
        with self._tx("advance mark") as tx:
            cursor = tx.execute(
                "UPDATE leases SET mark = ? WHERE name = ? AND holder = ? AND mark < ?",
                (mark, name, holder, mark),
            )
            return cursor.rowcount == 1

    def load_history(self, symbol: str) -> DailySeries | None:
        """The cached daily series of ``symbol``, or None."""
        with self._tx("load history", write=False) as tx:
            row = tx.execute("SELECT payload FROM history WHERE symbol = ?", (symbol,)).fetchone()
        return series_from_json(row[0]) if row else None

    def save_history(self, symbol: str, series: DailySeries) -> None:
        """Replace the cached daily series of ``symbol``."""
        payload = series_to_json(series)
        with self._tx("save history") as tx:
            tx.execute(
                "INSERT INTO history (symbol, payload) VALUES (?, ?) "
                "ON CONFLICT (symbol) DO UPDATE SET payload = excluded.payload",
                (symbol, payload),
            )

    def close(self) -> None:
        """Close the connection; later calls raise :class:`StoreError`. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._close_connection()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.display_url}>"
