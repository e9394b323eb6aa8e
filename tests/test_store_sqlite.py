"""SQLite specifics: URL forms, WAL, a file shared by two processes, errors naming the path."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.errors import StoreError
from bot.store import open_store, sqlite_path
from bot.store.sqlite import SqliteStore
from tests.conftest_store import LEASE, T0, make_alert


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///bot-state.sqlite", "bot-state.sqlite"),
        ("sqlite:///data/state.sqlite", "data/state.sqlite"),
        ("sqlite:////var/lib/bot/state.sqlite", "/var/lib/bot/state.sqlite"),
        ("sqlite:///:memory:", ":memory:"),
        ("sqlite://", ":memory:"),
    ],
)
def test_sqlite_url_paths(url: str, path: str) -> None:
    assert sqlite_path(url) == path


@pytest.mark.parametrize(
    "url",
    ["sqlite:///", "sqlite:/x.sqlite", "sqlite://host/x.sqlite", "sqlite:///x.sqlite?mode=ro"],
)
def test_bad_sqlite_urls(url: str) -> None:
    with pytest.raises(StoreError, match="bad SQLite URL"):
        sqlite_path(url)


def test_relative_url_is_relative_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///data/state.sqlite")
    try:
        assert isinstance(store, SqliteStore)
        store.migrate()
        store.set_value("k", 1)
    finally:
        store.close()
    assert (tmp_path / "data" / "state.sqlite").is_file()


def test_absolute_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path / "..")  # somewhere else: the path must not depend on the cwd
    target = tmp_path / "abs.sqlite"
    store = open_store(f"sqlite:///{target}")  # target starts with "/": four slashes in all
    assert f"sqlite:///{target}".startswith("sqlite:////")
    try:
        store.migrate()
        store.set_value("k", 2)
    finally:
        store.close()
    with sqlite3.connect(target) as conn:
        assert json.loads(conn.execute("SELECT value FROM kv").fetchone()[0]) == 2


def test_memory_database_works() -> None:
    store = open_store("sqlite:///:memory:")
    store.migrate()
    store.commit({"r": {"x": 1}}, [(make_alert("r:1"), ["t"])], T0)
    assert [d.alert.id for d in store.claim("w", T0, LEASE, 5)] == ["r:1"]
    store.close()


def test_wal_mode_and_busy_timeout(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite", timeout=7.5)
    try:
        assert store.journal_mode() == "wal"
        assert store._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 7500
        assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        store.close()


def test_missing_directory_is_a_store_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "state.sqlite"
    with pytest.raises(StoreError, match=re.escape(f"cannot open SQLite database {missing}")):
        open_store(f"sqlite:///{missing}")


def test_schema_option_is_refused_for_sqlite(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="PostgreSQL only"):
        open_store(f"sqlite:///{tmp_path}/x.sqlite", schema="s")


@pytest.mark.parametrize(
    "url", ["mysql://u:hunter2pw@h/db", "state.sqlite", "", "redis://localhost/0"]
)
def test_unsupported_urls_are_refused_without_the_password(url: str) -> None:
    with pytest.raises(StoreError, match=r"unsupported state\.url") as info:
        open_store(url)
    assert "hunter2pw" not in str(info.value)


def test_a_busy_writer_makes_others_wait_not_fail(tmp_path: Path) -> None:
    """Another connection holding the write lock briefly: the store waits (busy_timeout)."""
    path = tmp_path / "s.sqlite"
    store = SqliteStore(path)
    store.migrate()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    # while the lock is held a store with a tiny timeout fails with a typed error...
    impatient = SqliteStore(path, timeout=0.05)
    with pytest.raises(StoreError, match="database is locked"):
        impatient.set_value("k", 1)
    # ...readers are not blocked by a writer (WAL)...
    assert impatient.get_value("k") is None
    blocker.execute("COMMIT")
    blocker.close()
    # ...and after the failed attempt the connection is clean and usable
    impatient.set_value("k", 1)
    assert store.get_value("k") == 1
    impatient.close()
    store.close()


def test_second_process_sees_committed_alerts_and_duplicates_are_no_ops(tmp_path: Path) -> None:
    """A restart is another process on the same file: the same alert id is not new again."""
    path = tmp_path / "s.sqlite"
    store = SqliteStore(path)
    store.migrate()
    assert store.commit({"r": {"armed": True}}, [(make_alert("r:1"), ["traders"])], T0) == ["r:1"]
    store.close()
    script = textwrap.dedent(
        f"""
        import json
        from bot.store import open_store
        from tests.conftest_store import T0, make_alert
        s = open_store("sqlite:///{path}")
        s.migrate()
        new = s.commit({{}}, [(make_alert("r:1"), ["traders"]), (make_alert("r:2"), ["t"])], T0)
        print(json.dumps([new, s.load_states(), s.stats()]))
        s.close()
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
    )
    new, states, stats = json.loads(out.stdout)
    assert new == ["r:2"]
    assert states == {"r": {"armed": True}}
    assert stats == {"pending": 2, "sent": 0, "failed": 0}
