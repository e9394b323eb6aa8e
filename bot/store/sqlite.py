"""SQLite state store: the default backend, one file next to the bot.

WAL mode lets a reader run while another connection writes; every write transaction starts with
``BEGIN IMMEDIATE`` so it takes SQLite's single write lock up front (a deferred transaction that
reads and then writes can fail with SQLITE_BUSY instead of waiting); ``timeout`` is how long a
connection waits for that lock. Within one process a store is one connection shared by threads
under a lock (``check_same_thread=False``); two stores on the same file (two workers, two
processes) are serialised by the database lock, which is what makes ``claim`` exclusive.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bot.errors import StoreError
from bot.store.sql import SHARED_MIGRATIONS, Cursor, Migration, SqlStore, Tx, schema_v1

MEMORY = ":memory:"

_V1 = schema_v1("seq INTEGER NOT NULL", "CREATE INDEX IF NOT EXISTS alerts_seq ON alerts (seq)")


class _SqliteTx:
    """Adapts a sqlite3 connection to :class:`bot.store.sql.Tx`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self._conn.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, [tuple(row) for row in rows])


class SqliteStore(SqlStore):
    """The store in a SQLite file (or ``:memory:``, for tests and the demo)."""

    backend = "sqlite"
    migrations = (Migration(1, _V1), *SHARED_MIGRATIONS)
    insert_alert_sql = (
        "INSERT INTO alerts (id, rule_id, symbol, time, payload, created_at, seq) "
        "VALUES (?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM alerts)) "
        "ON CONFLICT (id) DO NOTHING"
    )

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        """Open (creating if needed) the database file at ``path``; its directory must exist.

        ``timeout``: seconds to wait for another connection's write lock before failing.
        """
        self.path = str(path)
        super().__init__(f"sqlite:///{self.path}")
        try:
            # isolation_level=None: no implicit transactions; each method issues BEGIN itself.
            self._conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
        try:
            if self.path != MEMORY:
                mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"SQLite database {self.path}: cannot enable WAL ({mode})")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Tx]:
        self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield _SqliteTx(self._conn)
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            if self._conn.in_transaction:  # never leave a half-open transaction behind
                self._conn.execute("ROLLBACK")
            raise

    def _is_db_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.Error)

    def _lock_for_migration(self, tx: Tx) -> None:
        pass  # BEGIN IMMEDIATE already makes migrate() the only writer

    def _close_connection(self) -> None:
        self._conn.close()

    def journal_mode(self) -> str:
        """The journal mode in effect (``wal`` for a file database)."""
        with self._lock:
            return str(self._conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
