"""The store contract, run against every backend: SQLite (a file in tmp_path) and PostgreSQL
(``TEST_DATABASE_URL``, a fresh schema per test; skipped with the reason when unset).

The clock is an input everywhere: every test passes ``now`` explicitly.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.errors import StoreError
from bot.model import Alert, DailySeries
from bot.store.base import Outcome, Snapshot, Store
from tests.conftest_store import LEASE, T0, backend_factory, make_alert

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def open_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens stores (not migrated) sharing one fresh database of the parametrized backend."""
    with backend_factory(request.param, tmp_path) as factory:
        yield factory


@pytest.fixture
def store(open_backend: Callable[[], Store]) -> Store:
    """A migrated store on a fresh database."""
    s = open_backend()
    s.migrate()
    return s


def _enqueue(store: Store, *alerts: Alert, chats: tuple[str, ...] = ("traders",)) -> list[str]:
    return store.commit({}, [(a, chats) for a in alerts], T0)


# -- schema --------------------------------------------------------------------------------------


def test_migrate_twice_is_idempotent_and_keeps_data(open_backend: Callable[[], Store]) -> None:
    s = open_backend()
    s.migrate()
    s.commit({"r": {"rule": {"armed": True}}}, [(make_alert("r:1"), ["traders"])], T0)
    s.migrate()
    assert s.current_version() == s.schema_version >= 3  # type: ignore[attr-defined]
    assert s.load_states() == {"r": {"rule": {"armed": True}}}
    assert len(s.deliveries()) == 1
    # a second store (another process at start-up) migrating the same database is a no-op too
    other = open_backend()
    other.migrate()
    assert other.load_states() == {"r": {"rule": {"armed": True}}}


def test_concurrent_migrations_both_succeed(open_backend: Callable[[], Store]) -> None:
    stores = [open_backend() for _ in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def run(s: Store) -> None:
        barrier.wait()
        try:
            s.migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(s.current_version() == s.schema_version for s in stores)  # type: ignore[attr-defined]


def test_unmigrated_store_raises_store_error(open_backend: Callable[[], Store]) -> None:
    s = open_backend()
    with pytest.raises(StoreError, match="load rule states"):
        s.load_states()


def test_migrate_refuses_a_newer_schema(store: Store) -> None:
    store.migrate()
    # simulate a database already upgraded by a newer bot version
    with store._tx("test") as tx:  # type: ignore[attr-defined]
        tx.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="schema version 99 is newer"):
        store.migrate()


# -- rule state ----------------------------------------------------------------------------------


def test_states_round_trip_and_upsert(store: Store) -> None:
    assert store.load_states() == {}
    first: dict[str, dict[str, Any]] = {
        "rut-2500": {"rule": {"armed": True, "last": 2499.5, "side": None}, "last_alert": None},
        "record": {"rule": {"record": 2466.49, "date": "2021-11-08", "note": "Ünïcødé ✓"}},
    }
    assert store.commit(first, [], T0) == []
    assert store.load_states() == first
    # an update replaces only the rules it names
    store.commit({"rut-2500": {"rule": {"armed": False, "last": 2510.0}}}, [], T0)
    assert store.load_states() == {
        "rut-2500": {"rule": {"armed": False, "last": 2510.0}},
        "record": first["record"],
    }


# -- commit --------------------------------------------------------------------------------------


def test_commit_returns_new_ids_and_one_row_per_chat(store: Store) -> None:
    a, b = make_alert("r:1"), make_alert("r:2", T0 + timedelta(minutes=1))
    new = store.commit({"r": {"rule": {"n": 2}}}, [(a, ["traders", "ops"]), (b, ["traders"])], T0)
    assert new == ["r:1", "r:2"]
    rows = [(d.alert.id, d.chat, status, d.attempts) for d, status in store.deliveries()]
    assert rows == [
        ("r:1", "ops", "pending", 0),
        ("r:1", "traders", "pending", 0),
        ("r:2", "traders", "pending", 0),
    ]
    # the payload round-trips to an equal Alert
    assert store.deliveries()[0][0].alert == a


def test_commit_of_an_alert_without_chats_records_it_without_outbox_rows(store: Store) -> None:
    assert store.commit({}, [(make_alert("r:1"), [])], T0) == ["r:1"]
    assert store.deliveries() == []
    # ...and it is still a duplicate later
    assert store.commit({}, [(make_alert("r:1"), ["traders"])], T0) == []
    assert store.deliveries() == []


def test_duplicate_alert_id_is_a_no_op(store: Store) -> None:
    original = make_alert("rut-record:2025-09-18", text="first")
    assert store.commit({}, [(original, ["traders"])], T0) == ["rut-record:2025-09-18"]
    again = make_alert("rut-record:2025-09-18", text="second, from a restart or replica")
    later = T0 + timedelta(hours=1)
    assert store.commit({"r": {"x": 1}}, [(again, ["traders", "ops"])], later) == []
    rows = store.deliveries()
    assert [(d.alert.text, d.chat) for d, _ in rows] == [("first", "traders")]
    # the states in the same commit were still written
    assert store.load_states() == {"r": {"x": 1}}


def test_duplicate_within_one_commit_and_repeated_chat(store: Store) -> None:
    a = make_alert("r:1")
    assert store.commit({}, [(a, ["traders", "traders"]), (a, ["ops"])], T0) == ["r:1"]
    assert [(d.alert.id, d.chat) for d, _ in store.deliveries()] == [("r:1", "traders")]


def test_commit_is_atomic_when_an_alert_cannot_be_serialised(store: Store) -> None:
    store.commit({"r": {"v": 1}}, [], T0)
    good = make_alert("r:1")
    bad = Alert(
        id="r:2", rule_id="r", rule_type="cross", symbol="RUT", time=T0,
        value=object(),  # type: ignore[arg-type]  # json.dumps fails on it, after the writes
        text="x",
    )  # fmt: skip
    with pytest.raises(StoreError, match="commit"):
        store.commit({"r": {"v": 2}, "s": {"v": 1}}, [(good, ["traders"]), (bad, ["traders"])], T0)
    assert store.load_states() == {"r": {"v": 1}}
    assert store.deliveries() == []
    # the store is usable afterwards and the good alert was not consumed as a duplicate
    assert store.commit({"r": {"v": 3}}, [(good, ["traders"])], T0) == ["r:1"]
    assert store.load_states() == {"r": {"v": 3}}


def test_commit_is_atomic_on_a_database_error(store: Store) -> None:
    a, b = make_alert("r:1"), make_alert("r:2")
    with pytest.raises(StoreError):
        # chat NULL violates NOT NULL after the state, alert r:1 and its outbox row were written
        store.commit({"r": {"v": 1}}, [(a, ["traders"]), (b, [None])], T0)  # type: ignore[list-item]
    assert store.load_states() == {}
    assert store.deliveries() == []
    assert store.commit({}, [(a, ["traders"])], T0) == ["r:1"]


def test_unserialisable_state_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError):
        store.commit({"r": {"when": datetime(2025, 1, 1)}}, [(make_alert("r:1"), ["t"])], T0)
    assert store.load_states() == {}
    assert store.deliveries() == []


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="naive datetime"):
        store.commit({}, [], datetime(2025, 9, 18, 14, 30))
    with pytest.raises(StoreError, match="naive datetime"):
        store.claim("w", datetime(2025, 9, 18, 14, 30), LEASE, 10)


# -- claim / lease -------------------------------------------------------------------------------


def test_claim_orders_by_alert_time_then_insertion_then_chat(store: Store) -> None:
    late = make_alert("r:late", T0 + timedelta(hours=2))
    early = make_alert("r:early", T0 - timedelta(hours=2))
    same_b = make_alert("r:b-same", T0)
    same_a = make_alert("r:a-same", T0)  # same time, inserted after b: comes after b
    store.commit({}, [(late, ["z", "a"]), (early, ["m"])], T0)
    store.commit({}, [(same_b, ["b"]), (same_a, ["a"])], T0)
    claimed = store.claim("w", T0, LEASE, 100)
    assert [(d.alert.id, d.chat) for d in claimed] == [
        ("r:early", "m"),
        ("r:b-same", "b"),
        ("r:a-same", "a"),
        ("r:late", "a"),
        ("r:late", "z"),
    ]
    assert [(d.alert.id, d.chat) for d, _ in store.deliveries()] == [
        (d.alert.id, d.chat) for d in claimed
    ]


def test_alert_times_in_other_zones_order_by_instant(store: Store) -> None:
    ny = ZoneInfo("America/New_York")
    # 10:00 New York (14:00 UTC) is earlier than 14:30 UTC although "10" < "14" either way,
    # and 15:00 New York (19:00 UTC) is later than 16:00 UTC although 15 < 16
    a = make_alert("r:ny-10", datetime(2025, 9, 18, 10, 0, tzinfo=ny))
    b = make_alert("r:utc-1430", T0)
    c = make_alert("r:ny-15", datetime(2025, 9, 18, 15, 0, tzinfo=ny))
    d = make_alert("r:utc-16", datetime(2025, 9, 18, 16, 0, tzinfo=T0.tzinfo))
    _enqueue(store, c, d, b, a)
    assert [x.alert.id for x in store.claim("w", T0, LEASE, 10)] == [
        "r:ny-10",
        "r:utc-1430",
        "r:utc-16",
        "r:ny-15",
    ]


def test_claim_honours_limit_and_due_time(store: Store) -> None:
    _enqueue(store, *(make_alert(f"r:{i}", T0 + timedelta(seconds=i)) for i in range(5)))
    hour = timedelta(hours=1)
    assert store.claim("w", T0, hour, 0) == []
    assert [d.alert.id for d in store.claim("w", T0, hour, 2)] == ["r:0", "r:1"]
    # rows enqueued at T0 are not due a second before
    store.commit({}, [(make_alert("r:9"), ["x"])], T0 + timedelta(minutes=1))
    got = store.claim("w", T0 + timedelta(seconds=59), hour, 10)
    assert [d.alert.id for d in got] == ["r:2", "r:3", "r:4"]
    assert [d.alert.id for d in store.claim("w", T0 + timedelta(minutes=1), LEASE, 10)] == ["r:9"]


def test_two_workers_never_get_the_same_row(store: Store) -> None:
    _enqueue(store, *(make_alert(f"r:{i}", T0 + timedelta(seconds=i)) for i in range(3)))
    a = store.claim("worker-a", T0, LEASE, 2)
    b = store.claim("worker-b", T0, LEASE, 10)
    assert [d.alert.id for d in a] == ["r:0", "r:1"]
    assert [d.alert.id for d in b] == ["r:2"]
    # nobody, not even the holder, gets a row under a live lease
    assert store.claim("worker-a", T0 + timedelta(seconds=1), LEASE, 10) == []
    assert store.claim("worker-c", T0 + LEASE - timedelta(microseconds=1), LEASE, 10) == []
    leased = {(r.alert.id, r.claimed_by, r.lease_until) for r in store.outbox()}  # type: ignore[attr-defined]
    assert leased == {
        ("r:0", "worker-a", T0 + LEASE),
        ("r:1", "worker-a", T0 + LEASE),
        ("r:2", "worker-b", T0 + LEASE),
    }


def test_an_expired_lease_can_be_reclaimed(store: Store) -> None:
    _enqueue(store, make_alert("r:1"))
    assert len(store.claim("dead-worker", T0, LEASE, 10)) == 1
    assert store.claim("survivor", T0 + timedelta(seconds=29), LEASE, 10) == []
    later = T0 + LEASE  # the lease ends exactly now: the row is free
    again = store.claim("survivor", later, LEASE, 10)
    assert [(d.alert.id, d.chat, d.attempts) for d in again] == [("r:1", "traders", 0)]
    (row,) = store.outbox()  # type: ignore[attr-defined]
    assert (row.claimed_by, row.lease_until) == ("survivor", later + LEASE)


# -- transitions ---------------------------------------------------------------------------------


def test_retry_later_counts_releases_and_delays(store: Store) -> None:
    _enqueue(store, make_alert("r:1"))
    store.claim("w", T0, LEASE, 10)
    not_before = T0 + timedelta(seconds=8)
    store.retry_later("r:1", "traders", not_before, "HTTP 502 Bad Gateway")
    (row,) = store.outbox()  # type: ignore[attr-defined]
    assert (row.status, row.attempts, row.error, row.claimed_by, row.lease_until) == (
        "pending",
        1,
        "HTTP 502 Bad Gateway",
        None,
        None,
    )
    assert row.next_attempt_at == not_before
    # not due before not_before, even for the worker that held it (the lease was released)
    assert store.claim("w", not_before - timedelta(seconds=1), LEASE, 10) == []
    (d,) = store.claim("other", not_before, LEASE, 10)
    assert d.attempts == 1
    store.retry_later("r:1", "traders", not_before + timedelta(seconds=16), "timeout")
    assert store.deliveries()[0][0].attempts == 2


def test_mark_sent(store: Store) -> None:
    _enqueue(store, make_alert("r:1"), chats=("traders", "ops"))
    store.claim("w", T0, LEASE, 10)
    sent_at = T0 + timedelta(seconds=1)
    store.mark_sent("r:1", "traders", sent_at, [101, 102])
    rows = {r.chat: r for r in store.outbox()}  # type: ignore[attr-defined]
    sent = rows["traders"]
    assert (sent.status, sent.message_ids, sent.sent_at, sent.attempts) == (
        "sent",
        (101, 102),
        sent_at,
        1,
    )
    assert (sent.claimed_by, sent.lease_until) == (None, None)
    assert rows["ops"].status == "pending"
    # a sent row is never claimed again, even after any lease would have expired
    assert [d.chat for d in store.claim("w2", T0 + timedelta(days=1), LEASE, 10)] == ["ops"]
    # late reports from a slower worker never turn "sent" back into pending or failed
    store.retry_later("r:1", "traders", T0, "late timeout")
    store.mark_failed("r:1", "traders", T0, "late error")
    store.mark_sent("r:1", "traders", T0 + timedelta(seconds=9), [999])
    after = next(r for r in store.outbox() if r.chat == "traders")  # type: ignore[attr-defined]
    assert (after.status, after.message_ids, after.sent_at) == ("sent", (101, 102), sent_at)


def test_mark_failed(store: Store) -> None:
    _enqueue(store, make_alert("r:1"))
    store.claim("w", T0, LEASE, 10)
    store.mark_failed("r:1", "traders", T0, "Forbidden: bot was blocked by the user")
    (row,) = store.outbox()  # type: ignore[attr-defined]
    assert (row.status, row.error, row.attempts, row.claimed_by) == (
        "failed",
        "Forbidden: bot was blocked by the user",
        1,
        None,
    )
    assert store.claim("w", T0 + timedelta(days=1), LEASE, 10) == []
    store.retry_later("r:1", "traders", T0, "x")  # a failed row stays failed
    assert store.deliveries("failed")[0][1] == "failed"


def test_release_hands_back_an_untried_row(store: Store) -> None:
    _enqueue(store, make_alert("r:1"), make_alert("r:2"))
    store.claim("w", T0, LEASE, 10)
    store.retry_later("r:2", "traders", T0 + timedelta(minutes=5), "429")
    store.claim("w", T0 + timedelta(minutes=5), LEASE, 10)  # r:2 again, attempts 1
    later = T0 + timedelta(minutes=5)
    store.release("r:1", "traders", "w", later)  # type: ignore[attr-defined]
    # releasing to an earlier time never makes a row due sooner than it was
    store.release("r:2", "traders", "w", T0)  # type: ignore[attr-defined]
    rows = {r.alert.id: r for r in store.outbox()}  # type: ignore[attr-defined]
    for alert_id, attempts in (("r:1", 0), ("r:2", 1)):
        row = rows[alert_id]
        assert (row.status, row.attempts, row.claimed_by, row.lease_until) == (
            "pending",
            attempts,
            None,
            None,
        )
        assert row.next_attempt_at == later
    assert store.claim("x", later - timedelta(seconds=1), LEASE, 10) == []
    assert [d.alert.id for d in store.claim("x", later, LEASE, 10)] == ["r:1", "r:2"]
    # a worker whose lease was taken over cannot release the new holder's row
    store.release("r:1", "traders", "w", later)  # type: ignore[attr-defined]
    assert {r.claimed_by for r in store.outbox()} == {"x"}  # type: ignore[attr-defined]
    with pytest.raises(StoreError, match="no outbox row"):
        store.release("nope:1", "traders", "w", later)  # type: ignore[attr-defined]


def test_transitions_of_an_unknown_row_raise(store: Store) -> None:
    for call in (
        lambda: store.mark_sent("nope:1", "traders", T0, [1]),
        lambda: store.mark_failed("nope:1", "traders", T0, "e"),
        lambda: store.retry_later("nope:1", "traders", T0, "e"),
    ):
        with pytest.raises(StoreError, match="no outbox row for alert 'nope:1' chat 'traders'"):
            call()


def test_deliveries_by_status_and_stats(store: Store) -> None:
    _enqueue(store, make_alert("r:1"), make_alert("r:2"), make_alert("r:3"))
    store.mark_sent("r:1", "traders", T0, [1])
    store.mark_failed("r:2", "traders", T0, "chat not found")
    assert [d.alert.id for d, _ in store.deliveries("sent")] == ["r:1"]
    assert [d.alert.id for d, _ in store.deliveries("failed")] == ["r:2"]
    assert [d.alert.id for d, _ in store.deliveries("pending")] == ["r:3"]
    assert [s for _, s in store.deliveries()] == ["sent", "failed", "pending"]
    assert store.stats() == {"pending": 1, "sent": 1, "failed": 1}
    with pytest.raises(StoreError, match="unknown delivery status 'delivered'"):
        store.deliveries("delivered")


def test_returned_datetimes_are_timezone_aware_utc(store: Store) -> None:
    ny = ZoneInfo("America/New_York")
    now = datetime(2025, 9, 18, 10, 30, tzinfo=ny)  # == T0
    store.commit({}, [(make_alert("r:1"), ["traders"])], now)
    store.mark_sent("r:1", "traders", now, [1])
    (row,) = store.outbox()  # type: ignore[attr-defined]
    for value in (row.next_attempt_at, row.sent_at, row.created_at):
        assert value == T0
        assert value.utcoffset() == timedelta(0)
        assert value.tzinfo is not None
    assert row.alert.time == T0


# -- key/values and history ----------------------------------------------------------------------


def test_key_values(store: Store) -> None:
    assert store.get_value("missing") is None
    store.set_value("chat-migration:traders", {"from": -100, "to": -1001234567890})
    assert store.get_value("chat-migration:traders") == {"from": -100, "to": -1001234567890}
    store.set_value("chat-migration:traders", [1, "two", None, 3.5])
    assert store.get_value("chat-migration:traders") == [1, "two", None, 3.5]
    store.set_value("n", 0)
    assert store.get_value("n") == 0


def test_add_value_stores_once(store: Store) -> None:
    assert store.add_value("admin-notice:traders", "T0") is True  # type: ignore[attr-defined]
    assert store.add_value("admin-notice:traders", "T1") is False  # type: ignore[attr-defined]
    assert store.get_value("admin-notice:traders") == "T0"


def test_history_round_trip(store: Store) -> None:
    assert store.load_history("RUT") is None
    series = DailySeries(
        [date(2021, 11, 5), date(2021, 11, 8), date(2021, 11, 9)],
        [2437.14, 2442.74, 2406.03],
        {"high": [2458.0, 2466.49, 2440.1], "volume": [1.0, float("nan"), 3.0]},
    )
    store.save_history("RUT", series)
    got = store.load_history("RUT")
    assert got is not None
    assert got.dates == series.dates
    assert got.values == series.values
    assert got.columns["high"] == series.columns["high"]
    assert math.isnan(got.columns["volume"][1])
    assert got.value_on_or_before(date(2021, 11, 7)) == (date(2021, 11, 5), 2437.14)
    # replace, and an empty series stays distinct from "none cached"
    store.save_history("RUT", DailySeries())
    empty = store.load_history("RUT")
    assert empty is not None and len(empty) == 0
    assert store.load_history("RTY") is None


def test_closed_store_raises(open_backend: Callable[[], Store]) -> None:
    s = open_backend()
    s.migrate()
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.load_states()


# -- concurrency ---------------------------------------------------------------------------------


def test_two_stores_draining_one_outbox_claim_every_row_exactly_once(
    open_backend: Callable[[], Store],
) -> None:
    """Two workers, each with its own connection (as two replicas), drain 200 rows in a loop."""
    first = open_backend()
    first.migrate()
    alerts = [make_alert(f"r:{i:03d}", T0 + timedelta(seconds=i)) for i in range(100)]
    first.commit({}, [(a, ["traders", "ops"]) for a in alerts], T0)
    assert first.stats()["pending"] == 200
    workers = {"a": first, "b": open_backend()}
    claimed: dict[str, list[tuple[str, str]]] = {name: [] for name in workers}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def drain(name: str, s: Store) -> None:
        try:
            barrier.wait()
            while batch := s.claim(name, T0, timedelta(hours=1), 3):
                for d in batch:
                    claimed[name].append((d.alert.id, d.chat))
                    s.mark_sent(d.alert.id, d.chat, T0, [1])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=item) for item in workers.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    every = claimed["a"] + claimed["b"]
    assert len(every) == 200
    assert Counter(every).most_common(1)[0][1] == 1  # nobody got a row twice
    assert set(every) == {(a.id, c) for a in alerts for c in ("traders", "ops")}
    assert first.stats() == {"pending": 0, "sent": 200, "failed": 0}


def test_one_store_shared_by_a_writer_and_a_reader_thread(store: Store) -> None:
    """The poll loop commits while the sender thread claims and marks on the same store."""
    errors: list[BaseException] = []
    sent: list[str] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for i in range(60):
                store.commit({"r": {"n": i}}, [(make_alert(f"r:{i}"), ["traders"])], T0)
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def reader() -> None:
        try:
            while True:
                finished = done.is_set()
                for d in store.claim("sender", T0, LEASE, 5):
                    store.mark_sent(d.alert.id, d.chat, T0, [1])
                    sent.append(d.alert.id)
                store.load_states()
                if finished and not store.deliveries("pending"):
                    return
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(sent) == sorted(f"r:{i}" for i in range(60))
    assert store.load_states() == {"r": {"n": 59}}


def test_replicas_evaluate_one_at_a_time_on_the_latest_states(
    open_backend: Callable[[], Store],
) -> None:
    """Two stores (two replicas) each run 25 read-modify-write evaluations of one counter at
    once: none is lost, so no replica ever evaluated a stale copy of the states."""
    first = open_backend()
    first.migrate()
    stores = [first, open_backend()]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def bump(states: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], list[Any]]:
        count = states.get("counter", {}).get("n", 0)
        return {"counter": {"n": count + 1}}, []

    def run(s: Store) -> None:
        try:
            barrier.wait()
            for _ in range(25):
                s.evaluate_and_commit(bump, T0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert first.load_states()["counter"] == {"n": 50}


def test_evaluate_and_commit_writes_states_and_new_alerts_once(store: Store) -> None:
    alert = make_alert("rut-2500:x", T0)

    def fire(states: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], list[Any]]:
        return {"rut-2500": {"armed": False, "seen": len(states)}}, [(alert, ["traders"])]

    states, new_ids = store.evaluate_and_commit(fire, T0)
    assert new_ids == ["rut-2500:x"]
    assert states == {"rut-2500": {"armed": False, "seen": 0}}
    states, new_ids = store.evaluate_and_commit(fire, T0)
    assert new_ids == []  # the same alert again is a no-op
    assert states == {"rut-2500": {"armed": False, "seen": 1}}
    assert store.stats()["pending"] == 1


def test_transact_reads_and_writes_key_values_with_the_states(store: Store) -> None:
    """Values asked for are read in the transaction and the outcome's values are written with
    the states and alerts; a key never written is absent from the snapshot."""
    store.set_value("closes_seen", {"RUT": "2025-09-17"})
    seen: list[Snapshot] = []

    def cycle(snapshot: Snapshot) -> Outcome:
        seen.append(snapshot)
        marks = dict(snapshot.values["closes_seen"])
        marks["RUT"] = "2025-09-18"
        return Outcome(
            states={"rut-record": {"record": 1}},
            deliveries=[(make_alert("rut-record:2025-09-18", T0), ["traders"])],
            values={"closes_seen": marks, "sanity": {"v": 1}},
        )

    states, new_ids = store.transact(cycle, T0, ("closes_seen", "sanity"))
    assert seen[0].values == {"closes_seen": {"RUT": "2025-09-17"}}
    assert new_ids == ["rut-record:2025-09-18"] and states == {"rut-record": {"record": 1}}
    assert store.get_value("closes_seen") == {"RUT": "2025-09-18"}
    assert store.get_value("sanity") == {"v": 1}


def test_a_failed_transact_writes_no_value_no_state_no_alert(store: Store) -> None:
    """What a cycle marks as done commits with it or not at all."""
    store.set_value("closes_seen", {"RUT": "2025-09-17"})

    def cycle(snapshot: Snapshot) -> Outcome:
        return Outcome(
            states={"rut-record": {"record": 1}},
            deliveries=[(make_alert("rut-record:2025-09-18", T0), ["traders"])],
            values={"closes_seen": {"RUT": "2025-09-18"}, "bad": {"x": object()}},
        )

    with pytest.raises(StoreError):
        store.transact(cycle, T0, ("closes_seen",))
    assert store.get_value("closes_seen") == {"RUT": "2025-09-17"}
    assert store.load_states() == {}
    assert store.stats()["pending"] == 0


# -- retention and the operator's view (issue 11) ------------------------------------------------


def test_prune_deletes_only_old_sent_and_failed_rows(store: Store) -> None:
    """Rows finished before the cut-off go (and their alerts); recent ones and every pending
    row stay, however old. A pruned alert's id can be queued again (its dedup row is gone)."""
    old, recent = T0 - timedelta(days=40), T0 - timedelta(days=1)
    store.commit({}, [(make_alert("r:old-sent"), ["traders"])], old)
    store.commit({}, [(make_alert("r:old-failed"), ["traders"])], old)
    store.commit({}, [(make_alert("r:old-pending"), ["traders"])], old)
    store.commit({}, [(make_alert("r:new-sent"), ["traders", "ops"])], recent)
    store.claim("w", T0, LEASE, 10)
    store.mark_sent("r:old-sent", "traders", old + timedelta(seconds=1), [1])
    store.mark_failed("r:old-failed", "traders", old + timedelta(seconds=1), "Forbidden")
    store.mark_sent("r:new-sent", "traders", recent, [2])
    store.mark_failed("r:new-sent", "ops", recent, "chat not found")
    store.release("r:old-pending", "traders", "w", T0)

    assert store.prune_outbox(T0 - timedelta(days=30)) == 2
    left = {(r.alert.id, r.chat, r.status) for r in store.outbox()}  # type: ignore[attr-defined]
    assert left == {
        ("r:old-pending", "traders", "pending"),
        ("r:new-sent", "traders", "sent"),
        ("r:new-sent", "ops", "failed"),
    }
    assert store.prune_outbox(T0 - timedelta(days=30)) == 0  # idempotent
    assert store.commit({}, [(make_alert("r:old-sent"), ["traders"])], T0) == ["r:old-sent"]


def test_the_pending_scan_has_its_own_index(store: Store) -> None:
    """The claim's scan of pending rows stays on an index of pending rows only, so a long
    outage's pile of sent/failed rows does not slow it (schema v2)."""
    from bot.store.sql import SHARED_MIGRATIONS

    statements = " ".join(s for m in SHARED_MIGRATIONS for s in m.statements)
    assert "deliveries_pending" in statements and "WHERE status = 'pending'" in statements
    with store._tx("inspect", write=False) as tx:  # type: ignore[attr-defined]
        if store.backend == "sqlite":  # type: ignore[attr-defined]
            sql = "SELECT name FROM sqlite_master WHERE type = 'index'"
        else:
            sql = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        names = {row[0] for row in tx.execute(sql).fetchall()}
    assert "deliveries_pending" in names


def test_history_summary(store: Store) -> None:
    store.save_history("RUT", DailySeries([date(2024, 1, 2), date(2024, 1, 3)], [1.0, 2.0]))
    store.save_history("FED", DailySeries([], []))
    assert store.history_summary() == {
        "FED": (0, None, None),
        "RUT": (2, date(2024, 1, 2), date(2024, 1, 3)),
    }
