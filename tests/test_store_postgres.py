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
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.config import StateConfig, parse_config
from bot.errors import ConfigError, StoreError
from bot.store import open_store
from bot.store.postgres import PostgresStore, parse_postgres_url
from tests.conftest_store import LEASE, T0, make_alert, pg_schema, pg_url_or_skip
from tests.procs import wait_until
from tests.tcp_proxy import TcpProxy

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


@pytest.mark.parametrize("key", ["operation_timeout", "lock_timeout", "tcp_user_timeout"])
def test_a_zero_bound_is_refused_at_its_line(key: str) -> None:
    """PostgreSQL reads 0 as "no limit": exactly the stall these keys exist against."""
    text = f"state:\n  url: postgresql://u@db/x\n  {key}: 0s\n"
    with pytest.raises(ConfigError, match=rf"state\.{key}.*at least 1ms") as info:
        parse_config(text, "config.yaml", {})
    assert "config.yaml:3" in str(info.value)


def test_state_timeouts_default_to_seconds() -> None:
    state = parse_config("state:\n  url: postgresql://u@db/x\n", "c.yaml", {}).state
    bounds = [
        state.connect_timeout,
        state.operation_timeout,
        state.statement_timeout,
        state.lock_timeout,
        state.idle_in_transaction_timeout,
        state.tcp_user_timeout,
    ]
    assert all(timedelta(seconds=1) <= b <= timedelta(seconds=30) for b in bounds)


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
        "mutes",  # version 3: the Telegram cockpit
        "leases",
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


def _wait_for_lock_waiter(pg_url: str, statement: str, within: float = 10.0) -> None:
    """Return once a backend runs ``statement`` and waits on a lock (the server says so)."""
    deadline = time.monotonic() + within
    with _admin(pg_url) as admin:
        while time.monotonic() < deadline:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database() AND query LIKE %s",
                (f"%{statement}%",),
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.01)
    raise AssertionError(f"no backend waited on a lock running {statement!r} within {within}s")


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
        _wait_for_lock_waiter(pg_url, "INSERT INTO alerts")  # B waits for A's transaction
        assert thread.is_alive()
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
        wait_until(
            lambda: (
                not admin.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)
                ).fetchall()
            ),
            10,
            "the terminated backend to be gone",
        )
    # The call that finds the connection dead fails with a typed error naming the operation:
    # its transaction never ran, and a silent retry inside the store could run a write twice
    # (a COMMIT whose answer was lost). The caller's next cycle retries it.
    with pytest.raises(StoreError, match=r"get value: (AdminShutdown|OperationalError): "):
        store.get_value("k")
    # ...and the next call works on a new connection, in the same schema
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


# -- stalls: timeouts, a frozen connection, the evaluation lock ----------------------------------

FAST = StateConfig(
    connect_timeout=timedelta(seconds=2),  # libpq's minimum
    # above the longest legitimate wait here: B waiting for the lock until the server ends A's
    # frozen transaction (idle_in_transaction_timeout)
    operation_timeout=timedelta(seconds=3),
    lock_timeout=timedelta(seconds=2),
    idle_in_transaction_timeout=timedelta(seconds=1),
)


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    """A relay to the test server that can freeze connections (see tests/tcp_proxy.py)."""
    relay = TcpProxy.to_url(pg_url)
    yield relay
    relay.thaw()
    relay.close()


def _waiting_for_lock(pg_url: str, pid: int) -> bool:
    with _admin(pg_url) as conn:
        row = conn.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()
    return row is not None and row[0] == "Lock"


def _pid(store: object) -> int:
    assert isinstance(store, PostgresStore) and store._conn is not None
    return int(store._conn.info.backend_pid)


@pytest.mark.postgres
def test_server_side_timeouts_are_set_and_url_options_win(pg_url: str, schema: str) -> None:
    settings = StateConfig(
        statement_timeout=timedelta(seconds=7),
        lock_timeout=timedelta(milliseconds=1500),
        idle_in_transaction_timeout=timedelta(seconds=9),
        tcp_user_timeout=timedelta(seconds=4),
    )
    store = open_store(pg_url, schema=schema, settings=settings)
    assert isinstance(store, PostgresStore) and store._conn is not None
    show = {
        name: store._conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
        for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
    }
    assert show == {
        "statement_timeout": "7s",
        "lock_timeout": "1500ms",
        "idle_in_transaction_session_timeout": "9s",
    }
    info = store._conn.info.get_parameters()
    assert (info["keepalives"], info["tcp_user_timeout"]) == ("1", "4000")
    store.close()
    # an explicit libpq option in the URL beats the config
    sep = "&" if "?" in pg_url else "?"
    store = open_store(f"{pg_url}{sep}options=-cstatement_timeout%3D123", settings=settings)
    assert isinstance(store, PostgresStore) and store._conn is not None
    assert store._conn.execute("SHOW statement_timeout").fetchone() == ("123ms",)
    store.close()


@pytest.mark.postgres
@pytest.mark.timeout(30)
def test_evaluation_lock_is_the_same_whatever_names_the_schema(pg_url: str, schema: str) -> None:
    """One replica names the schema with ?schema=, the other through libpq's search_path
    option: same tables, so the same lock — the second waits for the first's evaluation."""
    a = open_store(f"{pg_url}?schema={schema}")
    a.migrate()
    b = open_store(f"{pg_url}?options=-csearch_path%3D{schema}")
    inside_a, release_a, inside_b = threading.Event(), threading.Event(), threading.Event()

    def evaluate_a(states: dict) -> tuple[dict, list]:
        inside_a.set()
        release_a.wait(10)
        return {"r": {"by": "a"}}, []

    def evaluate_b(states: dict) -> tuple[dict, list]:
        inside_b.set()
        return {"r": {"by": "b", "saw": states.get("r")}}, []

    ta = threading.Thread(target=a.evaluate_and_commit, args=(evaluate_a, T0))
    ta.start()
    assert inside_a.wait(10)
    tb = threading.Thread(target=b.evaluate_and_commit, args=(evaluate_b, T0))
    tb.start()
    pid_b = _pid(b)
    wait_until(
        lambda: inside_b.is_set() or _waiting_for_lock(pg_url, pid_b), 10, "b to block or run"
    )
    assert not inside_b.is_set(), "b evaluated while a held the evaluation lock"
    release_a.set()
    ta.join(10)
    tb.join(10)
    assert b.load_states()["r"] == {"by": "b", "saw": {"by": "a"}}
    a.close()
    b.close()


class _PausingMigration(PostgresStore):
    """Stops inside ``migrate`` right after taking the migration lock, until released."""

    def __init__(self, url: str) -> None:
        self.inside, self.release = threading.Event(), threading.Event()
        super().__init__(url)

    def _lock_for_migration(self, tx: Any) -> None:
        super()._lock_for_migration(tx)
        self.inside.set()
        self.release.wait(10)


@pytest.mark.postgres
@pytest.mark.timeout(30)
def test_migration_lock_is_the_same_whatever_names_the_schema(pg_url: str, schema: str) -> None:
    with _admin(pg_url) as conn:  # a search_path option needs the schema to exist already
        conn.execute(f'CREATE SCHEMA "{schema}"')
    a = _PausingMigration(f"{pg_url}?schema={schema}")
    b = open_store(f"{pg_url}?options=-csearch_path%3D{schema}")
    done_b = threading.Event()
    ta = threading.Thread(target=a.migrate)
    ta.start()
    assert a.inside.wait(10)
    tb = threading.Thread(target=lambda: (b.migrate(), done_b.set()))
    tb.start()
    pid_b = _pid(b)
    wait_until(lambda: done_b.is_set() or _waiting_for_lock(pg_url, pid_b), 10, "b to block")
    assert not done_b.is_set(), "b migrated while a held the migration lock"
    a.release.set()
    ta.join(10)
    tb.join(10)
    assert done_b.is_set() and b.current_version() == b.schema_version
    a.close()
    b.close()


@pytest.mark.postgres
@pytest.mark.timeout(30)
def test_a_frozen_connection_fails_in_bounded_time_and_is_replaced(
    pg_url: str, schema: str, proxy: TcpProxy
) -> None:
    """The path stops forwarding (no reset, every byte still acknowledged): the call fails
    after operation_timeout instead of hanging, reconnecting fails within connect_timeout,
    calls right after that fail at once, and once the path is back the store works again."""
    settings = FAST.model_copy(update={"operation_timeout": timedelta(seconds=1)})
    store = open_store(proxy.via(pg_url), schema=schema, settings=settings)
    store.migrate()
    store.set_value("k", 1)
    proxy.freeze_all()
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"get value: .*within 1 s \(state.operation_timeout\)"):
        store.get_value("k")
    assert time.monotonic() - started < 1 + 2  # the timeout, plus slack for a loaded machine
    started = time.monotonic()
    with pytest.raises(StoreError, match="cannot connect"):  # new connections are frozen too
        store.get_value("k")
    assert time.monotonic() - started < 2 + 2
    started = time.monotonic()
    with pytest.raises(StoreError, match="unreachable"):
        store.set_value("k", 2)
    assert time.monotonic() - started < 0.5
    proxy.thaw()

    def works() -> bool:
        try:
            return store.get_value("k") == 1
        except StoreError:
            return False

    wait_until(works, 15, "the store to reconnect")
    store.close()


@pytest.mark.postgres
@pytest.mark.timeout(30)
def test_a_replica_frozen_inside_its_evaluation_does_not_block_the_other(
    pg_url: str, schema: str, proxy: TcpProxy
) -> None:
    """Replica A's connection freezes right after the server granted it the evaluation lock.
    The server ends A's idle transaction (idle_in_transaction_timeout), which frees the lock:
    replica B evaluates; A's call fails within operation_timeout, and A's next call works."""
    a = open_store(proxy.via(pg_url), schema=schema, settings=FAST)
    a.migrate()
    b = open_store(pg_url, schema=schema, settings=FAST)
    proxy.freeze_on(b"index-alert-bot:evaluate")
    failures: list[BaseException] = []

    def run_a() -> None:
        try:
            a.evaluate_and_commit(lambda states: ({"r": {"by": "a"}}, []), T0)
        except StoreError as exc:
            failures.append(exc)

    ta = threading.Thread(target=run_a)
    ta.start()
    assert proxy.frozen.wait(10)
    pid_a = _pid(a)
    with _admin(pg_url) as admin:  # the server granted A the lock before the freeze
        held = admin.execute(
            "SELECT 1 FROM pg_locks WHERE pid = %s AND locktype = 'advisory' AND granted",
            (pid_a,),
        ).fetchall()
    assert held
    started = time.monotonic()
    states, _ = b.evaluate_and_commit(lambda states: ({"r": {"by": "b"}}, []), T0)
    assert time.monotonic() - started < 1 + 2  # the idle-in-transaction timeout, plus slack
    assert states["r"] == {"by": "b"}
    ta.join(10)
    assert not ta.is_alive()
    assert len(failures) == 1 and "operation_timeout" in str(failures[0])
    proxy.thaw()
    assert a.load_states()["r"] == {"by": "b"}  # A's transaction never committed
    a.close()
    b.close()
