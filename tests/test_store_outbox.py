"""Outbox details the sender relies on, on every backend: parts of a long alert recorded as
Telegram accepts them; and the Store contract's required methods are abstract."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.store.base import Store
from tests.conftest_store import LEASE, T0, backend_factory, make_alert

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with backend_factory(request.param, tmp_path) as factory:
        s = factory()
        s.migrate()
        yield s


def test_parts_accepted_are_kept_on_the_pending_row_and_claimed_with_it(store: Store) -> None:
    store.commit({}, [(make_alert("r:1"), ["traders", "desk"])], T0)
    [first, _] = store.claim("w", T0, LEASE, 10)
    assert first.message_ids == ()

    store.record_parts("r:1", "traders", [101, 102])
    store.retry_later("r:1", "traders", T0, "502 on part 3")

    claimed = {d.chat: d for d in store.claim("w", T0 + LEASE, LEASE, 10)}
    assert claimed["traders"].message_ids == (101, 102)
    assert claimed["desk"].message_ids == ()
    rows = {r.chat: r for r in store.outbox()}
    assert rows["traders"].status == "pending" and rows["traders"].message_ids == (101, 102)

    store.mark_sent("r:1", "traders", T0, [101, 102, 103])
    store.record_parts("r:1", "traders", [1])  # a late write never touches a sent row
    assert {r.chat: r for r in store.outbox()}["traders"].message_ids == (101, 102, 103)


def test_deliveries_listing_carries_the_parts_too(store: Store) -> None:
    store.commit({}, [(make_alert("r:1"), ["traders"])], T0)
    store.record_parts("r:1", "traders", [7])
    [(delivery, status)] = store.deliveries()
    assert status == "pending" and delivery.message_ids == (7,)


def _store_without(method: str) -> type[Store]:
    """A Store subclass implementing every abstract method except ``method``."""
    names = set(Store.__abstractmethods__) - {method}
    body: dict[str, Callable[..., None]] = {name: lambda self, *a, **k: None for name in names}
    return type("Partial", (Store,), body)


def test_evaluate_and_commit_is_required_of_every_store() -> None:
    assert "evaluate_and_commit" in Store.__abstractmethods__
    with pytest.raises(TypeError, match="evaluate_and_commit"):
        _store_without("evaluate_and_commit")()


def test_a_store_with_every_required_method_instantiates() -> None:
    assert isinstance(_store_without("")(), Store)
