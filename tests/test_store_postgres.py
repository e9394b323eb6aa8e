"""PostgreSQL specifics: URL schemes, schemas, SKIP LOCKED, two processes, reconnects, secrets.

Tests that need the server read ``TEST_DATABASE_URL`` and skip with that reason when it is unset;
URL parsing and password redaction need no server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from bot.errors import StoreError
from bot.store import open_store
from bot.store.postgres import PostgresStore, parse_postgres_url
from tests.conftest_store import LEASE, T0, make_alert, pg_schema, pg_url_or_skip

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def pg_url() -> str:
    return pg_url_or_skip()


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    """A fresh schema name (created by ``migrate``, dropped afterwards)."""
    with pg_schema(pg_url) as name:
        yield name


def _admin(pg_url: str) -> psycopg.Connection:
    return psycopg.connect(parse_postgres_url(pg_url)[0], autocommit=True)


def _tables(pg_url: str, schema: str) -> set[str]:
    with _admin(pg_url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    return {r[0] for r in rows}


def _with_scheme(url: str, scheme: str) -> str:
    return scheme + url[url.index("://") :]


# -- URL parsing (no server) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "conninfo", "schema"),
    [
        ("postgres://u@h:5432/db", "postgresql://u@h:5432/db", None),
        ("postgresql+psycopg://u:p@h/db", "postgresql://u:p@h/db", None),
        ("postgresql://u@h/db?schema=bot", "postgresql://u@h/db", "bot"),
        (
            "postgres://u@h/db?sslmode=require&schema=s1&connect_timeout=3",
            "postgresql://u@h/db?sslmode=require&connect_timeout=3",
            "s1",
        ),
        (
            "postgresql://u@h/db?options=-csearch_path%3Dbot",
            "postgresql://u@h/db?options=-csearch_path%3Dbot",
            None,
        ),
    ],
)
def test_parse_postgres_url(url: str, conninfo: str, schema: str | None) -> None:
    assert parse_postgres_url(url) == (conninfo, schema)


def test_connection_errors_never_show_the_password() -> None:
    url = "postgresql://bot:S3cr3t-Pa55w0rd@127.0.0.1:1/db"  # port 1: refused at once
    with pytest.raises(StoreError) as info:
        open_store(url)
    message = str(info.value)
    assert "S3cr3t-Pa55w0rd" not in message
    assert "cannot connect to PostgreSQL postgresql://bot:<redacted>@127.0.0.1:1/db" in message
    # the password is registered, so anything passed through redact() hides it too
    from bot.errors import redact

    assert redact("dsn=postgresql://bot:S3cr3t-Pa55w0rd@x") == "dsn=postgresql://bot:<redacted>@x"


def test_bad_schema_names_are_refused() -> None:
    with pytest.raises(StoreError, match="bad schema name"):
        PostgresStore("postgresql://u@127.0.0.1:1/db", schema='x"; DROP TABLE kv; --')


# -- against the server --------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_every_scheme_opens_a_postgres_store(pg_url: str, schema: str, scheme: str) -> None:
    store = open_store(f"{_with_scheme(pg_url, scheme)}?schema={schema}")
    try:
        assert isinstance(store, PostgresStore)
        store.migrate()
        store.set_value("k", scheme)
        assert store.get_value("k") == scheme
    finally:
        store.close()
    assert "kv" in _tables(pg_url, schema)


@pytest.mark.postgres
def test_url_schema_is_created_by_migrate_and_holds_every_table(pg_url: str, schema: str) -> None:
    store = open_store(f"{pg_url}?schema={schema}")
    try:
        store.migrate()
    finally:
        store.close()
    assert _tables(pg_url, schema) == {
        "schema_version",
        "rule_state",
        "alerts",
        "deliveries",
        "kv",
        "history",
    }


@pytest.mark.postgres
def test_schema_argument_overrides_the_url(pg_url: str, schema: str) -> None:
    with pg_schema(pg_url) as other:
        store = open_store(f"{pg_url}?schema={other}", schema=schema)
        try:
            store.migrate()
        finally:
            store.close()
        assert "alerts" in _tables(pg_url, schema)
        assert _tables(pg_url, other) == set()


@pytest.mark.postgres
def test_libpq_options_search_path_works(pg_url: str, schema: str) -> None:
    with _admin(pg_url) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    store = open_store(f"{pg_url}?options=-csearch_path%3D{schema}")
    try:
        store.migrate()
        store.set_value("k", 1)
    finally:
        store.close()
    assert "kv" in _tables(pg_url, schema)


@pytest.mark.postgres
@pytest.mark.timeout(30)
def test_claim_skips_rows_another_replica_has_locked(pg_url: str, schema: str) -> None:
    """A replica in the middle of its claim transaction holds row locks: we skip, not wait."""
    store = open_store(pg_url, schema=schema)
    store.migrate()
    store.commit(
        {}, [(make_alert(f"r:{i}", T0 + timedelta(seconds=i)), ["t"]) for i in range(4)], T0
    )
    with _admin(pg_url) as other:
        other.autocommit = False
        other.execute(f'SET search_path TO "{schema}"')
        locked = other.execute(
            "SELECT alert_id FROM deliveries ORDER BY alert_id LIMIT 2 FOR UPDATE"
        ).fetchall()
        assert [r[0] for r in locked] == ["r:0", "r:1"]
        got = store.claim("me", T0, LEASE, 10)  # would hang here without SKIP LOCKED
        assert [d.alert.id for d in got] == ["r:2", "r:3"]
        other.rollback()
    assert [d.alert.id for d in store.claim("me", T0, LEASE, 10)] == ["r:0", "r:1"]
    store.close()


@pytest.mark.postgres
@pytest.mark.timeout(30)
def test_same_alert_committed_by_two_replicas_at_once_is_new_only_once(
    pg_url: str, schema: str
) -> None:
    """Replica B commits the alert while replica A's commit of it is still open: B waits on the
    unique id, then finds it taken — one alert, one set of outbox rows."""
    a, b = open_store(pg_url, schema=schema), open_store(pg_url, schema=schema)
    a.migrate()
    alert = make_alert("rut-2500:2025-09-18T14:30")
    with _admin(pg_url) as replica_a:
        replica_a.autocommit = False
        replica_a.execute(f'SET search_path TO "{schema}"')
        replica_a.execute(
            "INSERT INTO alerts (id, rule_id, symbol, time, payload, created_at) "
            "VALUES (%s, 'rut-2500', 'RUT', %s, %s, %s)",
            (alert.id, T0.isoformat(), json.dumps(alert.to_json()), T0.isoformat()),
        )
        replica_a.execute(
            "INSERT INTO deliveries (alert_id, chat, next_attempt_at) VALUES (%s, 'traders', %s)",
            (alert.id, "2025-09-18T14:30:00.000000+00:00"),
        )
        result: list[list[str]] = []
        thread = threading.Thread(
            target=lambda: result.append(b.commit({}, [(alert, ["traders", "ops"])], T0))
        )
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive()  # B waits for A's transaction to decide
        replica_a.commit()
        thread.join(timeout=20)
    assert result == [[]]
    assert [(d.alert.id, d.chat) for d, _ in b.deliveries()] == [(alert.id, "traders")]
    a.close()
    b.close()


@pytest.mark.postgres
def test_reconnects_after_the_server_drops_the_connection(pg_url: str, schema: str) -> None:
    store = open_store(pg_url, schema=schema)
    assert isinstance(store, PostgresStore)
    store.migrate()
    store.set_value("k", 1)
    assert store._conn is not None
    pid = store._conn.info.backend_pid
    with _admin(pg_url) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    # the call that finds the connection dead fails with a typed error (or already reconnects)...
    try:
        store.get_value("k")
    except StoreError as exc:
        assert "get value" in str(exc)
    # ...and the next one works on a new connection, in the same schema
    assert store.get_value("k") == 1
    assert store._conn is not None and store._conn.info.backend_pid != pid
    store.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_two_processes_drain_the_outbox_exactly_once(pg_url: str, schema: str) -> None:
    """Two real processes (as two replicas) claim from one 200-row outbox until it is empty."""
    store = open_store(pg_url, schema=schema)
    store.migrate()
    alerts = [make_alert(f"r:{i:03d}", T0 + timedelta(seconds=i)) for i in range(100)]
    store.commit({}, [(a, ["traders", "ops"]) for a in alerts], T0)
    script = textwrap.dedent(
        """
        import json, sys
        from datetime import timedelta
        from bot.store import open_store
        from tests.conftest_store import T0
        url, schema, worker = sys.argv[1:4]
        s = open_store(url, schema=schema)
        got = []
        while batch := s.claim(worker, T0, timedelta(hours=1), 2):
            for d in batch:
                got.append([d.alert.id, d.chat])
                s.mark_sent(d.alert.id, d.chat, T0, [1])
        s.close()
        print(json.dumps(got))
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, pg_url, schema, f"replica-{n}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (1, 2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.append([tuple(x) for x in json.loads(out)])
    every = results[0] + results[1]
    assert Counter(every).most_common(1)[0][1] == 1
    assert set(every) == {(a.id, c) for a in alerts for c in ("traders", "ops")}
    assert len(every) == 200
    assert store.stats() == {"pending": 0, "sent": 200, "failed": 0}
    store.close()
