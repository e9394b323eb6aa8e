"""Helpers shared by the store tests (a plain module: pytest only auto-loads ``conftest.py``).

PostgreSQL tests read ``TEST_DATABASE_URL`` (e.g. ``postgresql://postgres@127.0.0.1:5432/test``)
and are skipped with that reason when it is unset. Each test gets a schema of its own
(``t_<random>``), dropped afterwards, so runs never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.model import Alert
from bot.store.base import Store

PG_ENV = "TEST_DATABASE_URL"
T0 = datetime(2025, 9, 18, 14, 30, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def pg_url_or_skip() -> str:
    """The test database URL, or skip the test saying why."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} not set")
    return url


@contextmanager
def pg_schema(url: str) -> Iterator[str]:
    """A fresh schema name ``t_<random>`` that is dropped (with its tables) afterwards.

    The schema is *not* created here: ``migrate`` must create it, which the tests rely on.
    """
    import psycopg
    from psycopg import sql

    from bot.store.postgres import parse_postgres_url

    conninfo, _ = parse_postgres_url(url)
    name = f"t_{secrets.token_hex(6)}"
    try:
        yield name
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@contextmanager
def backend_factory(kind: str, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """A function opening (unmigrated) stores that all share one fresh database; all closed after.

    ``kind`` is ``sqlite`` (a file in ``tmp_path``) or ``postgres`` (a fresh schema).
    """
    opened: list[Store] = []
    if kind == "sqlite":
        from bot.store.sqlite import SqliteStore

        path = tmp_path / "state.sqlite"

        def open_sqlite() -> Store:
            store = SqliteStore(path)
            opened.append(store)
            return store

        try:
            yield open_sqlite
        finally:
            for store in opened:
                store.close()
        return

    url = pg_url_or_skip()
    from bot.store import open_store

    with pg_schema(url) as schema:

        def open_pg() -> Store:
            store = open_store(url, schema=schema)
            opened.append(store)
            return store

        try:
            yield open_pg
        finally:
            for store in opened:
                store.close()


def make_alert(
    alert_id: str,
    time: datetime = T0,
    *,
    symbol: str = "RUT",
    value: float = 2500.0,
    text: str | None = None,
) -> Alert:
    """An alert with a deterministic id ``rule:key``."""
    rule_id = alert_id.split(":", 1)[0]
    return Alert(
        id=alert_id,
        rule_id=rule_id,
        rule_type="cross",
        symbol=symbol,
        time=time,
        value=value,
        text=text if text is not None else f"{symbol} crossed <b>2,500</b> ({alert_id})",
    )
