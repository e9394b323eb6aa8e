"""The cockpit's part of the store contract (schema version 3), on SQLite and PostgreSQL:
mutes (``/mute``) and the lease replicas take turns on to poll Telegram's ``getUpdates``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.store.base import Store
from tests.conftest_store import T0, backend_factory

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
TTL = timedelta(seconds=30)


@pytest.fixture(params=BACKENDS)
def open_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    with backend_factory(request.param, tmp_path) as factory:
        yield factory


@pytest.fixture
def store(open_backend: Callable[[], Store]) -> Store:
    s = open_backend()
    s.migrate()
    return s


def test_mutes_persist_across_store_instances_and_expire(
    open_backend: Callable[[], Store],
) -> None:
    first = open_backend()
    first.migrate()
    first.set_mute("spx_record", T0 + timedelta(hours=1), "42", T0)
    first.set_mute("*", T0 + timedelta(minutes=5), None, T0)
    first.close()
    second = open_backend()  # a restart: a new connection to the same database
    second.migrate()
    assert second.mutes(T0) == {
        "spx_record": T0 + timedelta(hours=1),
        "*": T0 + timedelta(minutes=5),
    }
    assert second.mutes(T0 + timedelta(minutes=10)) == {"spx_record": T0 + timedelta(hours=1)}
    second.set_mute("spx_record", T0 + timedelta(hours=2), "42", T0)  # replaces
    assert second.mutes(T0)["spx_record"] == T0 + timedelta(hours=2)
    assert second.clear_mutes("spx_record") == 1
    assert second.clear_mutes("spx_record") == 0
    assert second.clear_mutes() == 1
    assert second.mutes(T0) == {}


def test_one_lease_holder_at_a_time_and_takeover_after_expiry(store: Store) -> None:
    assert store.acquire_lease("poll", "a", T0, TTL)
    assert not store.acquire_lease("poll", "b", T0 + timedelta(seconds=1), TTL)
    assert store.acquire_lease("poll", "a", T0 + timedelta(seconds=20), TTL)  # renewed
    assert not store.acquire_lease("poll", "b", T0 + timedelta(seconds=40), TTL)
    # a stops renewing (dies): free once the renewed lease ran out
    assert store.acquire_lease("poll", "b", T0 + timedelta(seconds=51), TTL)
    assert not store.acquire_lease("poll", "a", T0 + timedelta(seconds=52), TTL)
    store.release_lease("poll", "b")
    assert store.acquire_lease("poll", "a", T0 + timedelta(seconds=53), TTL)


def test_marks_advance_once_and_only_for_the_holder(store: Store) -> None:
    assert store.acquire_lease("poll", "a", T0, TTL)
    assert store.advance_mark("poll", "a", 10)
    assert not store.advance_mark("poll", "a", 10)  # handled already
    assert not store.advance_mark("poll", "a", 9)
    assert not store.advance_mark("poll", "b", 11)  # not the holder
    assert store.acquire_lease("poll", "b", T0 + timedelta(minutes=1), TTL)
    assert not store.advance_mark("poll", "b", 10)  # the mark survives a takeover
    assert store.advance_mark("poll", "b", 11)
