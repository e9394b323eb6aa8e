"""Two replicas: two real ``python -m bot run`` processes on one PostgreSQL schema.

They poll the same fake Yahoo, evaluate one at a time on the latest rule states (the store's
advisory-locked ``evaluate_and_commit``), and claim outbox rows under leases with
``SKIP LOCKED``, so every alert reaches every chat exactly once; when one replica is killed
the other keeps polling and delivering.

Prices are switched by the test: the fake serves one current quote (repeated to whoever asks)
and the test moves it to the next price once the previous one has been evaluated. Both replicas
therefore see every price — a shared script consumed in turn could hand a dip to one replica and
skip it for the other, which would make the expected alerts depend on timing.

One replica can also reach the database through a relay on 127.0.0.1 (tests/tcp_proxy.py) that
freezes its connection — the half-open stall a NAT or a stalled host produces — to show that
the store's timeouts keep the other replica delivering and the frozen one recovering.

Needs ``TEST_DATABASE_URL``; skipped (with that reason) without it.
"""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.notify.telegram import format_alert_html
from bot.store import open_store
from bot.store.base import OutboxRow
from tests.conftest_store import pg_schema, pg_url_or_skip
from tests.fakes.telegram import FakeTelegram
from tests.fakes.yahoo import YahooFake, chart_response
from tests.procs import BotProcess, SendGate, wait_until
from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(120)]

CHATS = {"traders": 4242, "desk": 4343}
LEVELS = ["2400", "2450", "2500", "2550"]
LEASE_S = 3.0
POLL_S = 1.0
TAKEOVER_BOUND_S = 10.0  # generous: one poll (1 s) plus delivery, on a loaded 2-core machine

CONFIG = """\
timezone: America/New_York
telegram:
  token: ${{TELEGRAM_BOT_TOKEN}}
  base_url: {telegram}
  chats: {{traders: {traders}, desk: {desk}}}
state:
  url: "{url}"
sources:
  yahoo: {{type: yahoo, base_url: {yahoo}, attempts: 1}}
symbols:
  RUT: {{source: yahoo, ticker: "^RUT", name: Russell 2000, calendar: always}}
poll: {{every: {poll}s}}
delivery: {{lease: {lease}s, backoff: 200ms, max_backoff: 1s}}
rules:
  - id: rut-ladder
    type: cross
    symbol: RUT
    levels: [{levels}]
    direction: up
"""


@dataclass
class Market:
    """The fake Yahoo's current quote for ^RUT; each new price is quoted one minute later."""

    yahoo: YahooFake
    start: datetime
    step: int = 0

    def set(self, price: float) -> None:
        self.step += 1
        reply = chart_response(price=price, time=self.start + timedelta(minutes=self.step))
        self.yahoo.script(self.yahoo.chart_path("^RUT"), [reply], query={"range": "1d"})


@dataclass
class Cluster:
    tmp_path: Path
    config: Path
    url: str  # the state URL, schema included
    market: Market
    telegram: FakeTelegram
    gate: SendGate

    def spawn(self, config: Path | None = None) -> BotProcess:
        return BotProcess(config or self.config).start()

    def variant(self, name: str, url: str, state_extra: str, lease: float) -> Path:
        """A copy of the config with another state URL, extra ``state:`` keys and a lease."""
        text = self.config.read_text().replace(f'url: "{self.url}"\n', f'url: "{url}"\n')
        text = text.replace(f"lease: {LEASE_S}s", f"lease: {lease}s")
        assert f'url: "{url}"' in text and f"lease: {lease}s" in text
        path = self.tmp_path / f"{name}.yaml"
        path.write_text(text.replace("state:\n", f"state:\n{state_extra}", 1))
        return path

    def outbox(self, status: str | None = None) -> list[OutboxRow]:
        store = open_store(self.url)
        try:
            return store.outbox(status)
        finally:
            store.close()

    def last_value(self) -> float | None:
        store = open_store(self.url)
        try:
            memory = store.get_value("sanity") or {}
        finally:
            store.close()
        # the sanity memory is written in the cycle's transaction with the rule states: the
        # value in it is the last one a replica evaluated
        entry = (memory.get("symbols") or {}).get("RUT") or {}
        return entry.get("value")

    def move_to(self, price: float, alerts_after: int) -> None:
        """Quote ``price`` and wait until some replica has evaluated it."""
        self.market.set(price)
        wait_until(
            lambda: self.last_value() == price and len(self.outbox()) == alerts_after * len(CHATS),
            20,
            f"a replica to evaluate {price}",
        )

    def all_sent(self) -> bool:
        rows = self.outbox()
        return bool(rows) and all(r.status == "sent" for r in rows)

    def received(self) -> Counter[tuple[int | str, str]]:
        """(chat id, text) → how many times the fake Telegram accepted it."""
        return Counter((m.chat_id, m.text) for m in self.telegram.messages)


@pytest.fixture
def cluster(
    tmp_path: Path, yahoo_fake: YahooFake, fake_telegram: FakeTelegram
) -> Iterator[Cluster]:
    base = pg_url_or_skip()
    with pg_schema(base) as schema:
        url = f"{base}{'&' if '?' in base else '?'}schema={schema}"
        config = tmp_path / "config.yaml"
        config.write_text(
            CONFIG.format(
                telegram=fake_telegram.base_url,
                traders=CHATS["traders"],
                desk=CHATS["desk"],
                url=url,
                yahoo=yahoo_fake.base_url,
                poll=POLL_S,
                lease=LEASE_S,
                levels=", ".join(LEVELS),
            )
        )
        yahoo_fake.script(yahoo_fake.chart_path("^RUT"), [chart_response(price=1.0)])
        market = Market(yahoo_fake, datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
        fake_telegram.delay = 0.2
        yield Cluster(tmp_path, config, url, market, fake_telegram, SendGate(fake_telegram))


def delivered_by(bot: BotProcess) -> list[tuple[str, str]]:
    """(alert id, chat name) of every delivery a replica logged."""
    return [
        (m.group(1), m.group(2))
        for m in (re.search(r"delivered alert (\S+) to chat (\S+)", line) for line in bot.lines())
        if m
    ]


def queued_by(bot: BotProcess) -> list[str]:
    """Alert ids a replica's evaluation added to the outbox."""
    return [
        m.group(1) for m in (re.search(r"alert (\S+) queued:", line) for line in bot.lines()) if m
    ]


def test_two_replicas_deliver_each_alert_once_and_survive_a_kill(cluster: Cluster) -> None:
    """Four crossings × two chats through two replicas: each alert queued by one replica, each
    message sent by one replica, every chat gets each alert exactly once. Then one replica is
    SIGKILLed and the price crosses again: the survivor delivers it within about a poll."""
    cluster.market.set(2390.0)  # below every level: the first evaluation arms the rule
    a, b = cluster.spawn(), cluster.spawn()
    processes = [a, b]
    try:
        ids = {a.worker_id(): a, b.worker_id(): b}
        assert len(ids) == 2
        wait_until(lambda: cluster.last_value() == 2390.0, 20, "the rule to be armed")

        # 1. A crossing per step, each evaluated by whichever replica polls first.
        for n, price in enumerate([2410.0, 2460.0, 2510.0, 2560.0], start=1):
            cluster.move_to(price, alerts_after=n)
        wait_until(cluster.all_sent, 30, "every alert delivered")
        rows = cluster.outbox()
        assert sorted({r.alert.id.split(":")[1] for r in rows}) == LEVELS
        expected = {(CHATS[r.chat], format_alert_html(r.alert)) for r in rows}
        received = cluster.received()
        assert set(received) == expected  # none lost
        assert set(received.values()) == {1}  # none twice
        # Each alert was queued by one replica and each delivery made by one replica.
        queued = queued_by(a) + queued_by(b)
        assert sorted(queued) == sorted({r.alert.id for r in rows})
        deliveries = delivered_by(a) + delivered_by(b)
        assert sorted(deliveries) == sorted((r.alert.id, r.chat) for r in rows)

        # 2. Kill one replica (no clean-up runs); the other keeps polling and delivering.
        a.kill()
        cluster.move_to(2390.0, alerts_after=len(LEVELS))  # back below: re-arms every level
        before = len(cluster.telegram.messages)
        started = time.monotonic()
        cluster.market.set(2410.0)
        wait_until(
            lambda: len(cluster.telegram.messages) == before + len(CHATS),
            30,
            "the survivor to deliver the new crossing",
        )
        takeover = time.monotonic() - started
        assert takeover < TAKEOVER_BOUND_S, f"survivor took {takeover:.1f} s"
        old_ids = {x.alert.id for x in rows}

        def new_rows() -> list[OutboxRow]:
            return [r for r in cluster.outbox() if r.alert.id not in old_ids]

        # Telegram has the messages; the survivor marks its rows sent a moment later.
        wait_until(
            lambda: len(new_rows()) == len(CHATS) and all(r.status == "sent" for r in new_rows()),
            10,
            "the survivor to mark the new rows sent",
        )
        new = new_rows()
        assert {i for i, _ in delivered_by(b)} >= {r.alert.id for r in new}
        assert set(cluster.received().values()) == {1}
        assert b.terminate() == 0, b.log()  # the survivor still stops cleanly
    finally:
        for p in processes:
            p.close()


def test_replica_killed_mid_send_its_rows_go_out_through_the_other(cluster: Cluster) -> None:
    """A replica is killed while Telegram holds one of its sends (and accepts it afterwards).
    The other replica takes its leased rows once the lease runs out: nothing lost, and only
    what was in flight at the kill arrives twice."""
    cluster.market.set(2390.0)
    a, b = cluster.spawn(), cluster.spawn()
    processes = [a, b]
    try:
        by_id = {a.worker_id(): a, b.worker_id(): b}
        wait_until(lambda: cluster.last_value() == 2390.0, 20, "the rule to be armed")
        cluster.gate.hold_calls = {cluster.gate.received + 1}
        cluster.market.set(2460.0)  # crosses 2,400 and 2,450: two alerts for each chat
        held = cluster.gate.wait_held()
        held_chat = int(cluster.gate.held_chat or 0)
        holder = next(
            r.claimed_by
            for r in cluster.outbox()
            if format_alert_html(r.alert) == held and CHATS[r.chat] == held_chat
        )
        assert holder in by_id, (holder, by_id)
        victim = by_id[holder]
        survivor = b if victim is a else a
        victim.kill()
        killed_at = time.monotonic()
        cluster.gate.release()
        cluster.gate.wait_idle()
        sent = {(CHATS[r.chat], format_alert_html(r.alert)) for r in cluster.outbox("sent")}
        in_flight = [k for k in cluster.received() if k not in sent]  # accepted, not recorded
        assert (held_chat, held) in in_flight
        wait_until(cluster.all_sent, 30, "the survivor to deliver the dead replica's rows")
        recovered = time.monotonic() - killed_at
        assert recovered < LEASE_S + TAKEOVER_BOUND_S, f"took {recovered:.1f} s"
        rows = cluster.outbox()
        assert len(rows) == 2 * len(CHATS)
        received = cluster.received()
        assert set(received) == {(CHATS[r.chat], format_alert_html(r.alert)) for r in rows}
        duplicates = Counter({k: n - 1 for k, n in received.items() if n > 1})
        assert duplicates == Counter(in_flight)
        assert len(in_flight) <= len(CHATS)  # at most one in flight per chat
        assert survivor.terminate() == 0, survivor.log()
    finally:
        cluster.gate.release()
        for p in processes:
            p.close()


# Small bounds so the test is quick; the defaults are seconds too (README, state:).
OPERATION_S, CONNECT_S, IDLE_TX_S = 3.0, 2.0, 1.0  # operation: above B's wait for the lock
FROZEN_LEASE_S = 6.0  # one poll + the idle-transaction timeout + sending, with room for CI
FAST_STATE = f"""\
  operation_timeout: {OPERATION_S}s
  connect_timeout: {CONNECT_S}s
  idle_in_transaction_timeout: {IDLE_TX_S}s
  lock_timeout: 4s
"""


def _advisory_lock_holder(url: str, client_ports: list[int]) -> bool:
    """Whether a backend serving one of ``client_ports`` holds an advisory lock."""
    import psycopg

    from bot.store.postgres import parse_postgres_url

    with psycopg.connect(parse_postgres_url(url)[0], autocommit=True) as conn:
        rows = conn.execute(
            "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.client_port = ANY(%s)",
            (client_ports,),
        ).fetchall()
    return bool(rows)


def test_a_replica_frozen_inside_its_evaluation_stops_neither_replica(cluster: Cluster) -> None:
    """Replica A reaches PostgreSQL through a relay that freezes A's connection (no reset, every
    byte acknowledged) right after the server granted A the evaluation lock. The server ends
    A's idle transaction, so B takes the lock and delivers the next crossing within one lease;
    A's call fails after operation_timeout and A carries on over a new connection. Frozen
    again, new connections included, A still stops promptly on SIGTERM."""
    proxy = TcpProxy.to_url(cluster.url)
    config_a = cluster.variant("a", proxy.via(cluster.url), FAST_STATE, FROZEN_LEASE_S)
    config_b = cluster.variant("b", cluster.url, FAST_STATE, FROZEN_LEASE_S)
    cluster.market.set(2390.0)
    a, b = cluster.spawn(config_a), cluster.spawn(config_b)
    try:
        a.worker_id(), b.worker_id()
        wait_until(lambda: cluster.last_value() == 2390.0, 20, "the rule to be armed")

        # 1. Freeze A inside its next evaluation (every cycle evaluates, even without news).
        proxy.freeze_on(b"index-alert-bot:evaluate")
        assert proxy.frozen.wait(10), "A never evaluated"
        wait_until(
            lambda: _advisory_lock_holder(cluster.url, proxy.frozen_ports()),
            10,
            "the frozen connection's backend to hold the evaluation lock",
        )
        failures_before = len([x for x in a.lines() if "operation_timeout" in x])

        # 2. B delivers the next crossing within one lease.
        before = len(cluster.telegram.messages)
        started = time.monotonic()
        cluster.market.set(2410.0)
        wait_until(
            lambda: len(cluster.telegram.messages) == before + len(CHATS),
            30,
            "B to deliver while A is frozen",
        )
        took = time.monotonic() - started
        assert took < FROZEN_LEASE_S, f"B delivered after {took:.1f} s"

        # 3. A's stalled call failed (bounded by operation_timeout); A recovers on a new
        # connection (only the frozen one is frozen) and evaluates again.
        wait_until(
            lambda: len([x for x in a.lines() if "operation_timeout" in x]) > failures_before,
            OPERATION_S + 10,
            "A's stalled call to time out",
        )
        mark = len(a.lines())
        wait_until(
            lambda: any("cycle: polled RUT" in x for x in a.lines()[mark:]),
            20,
            "A to complete a cycle again",
        )
        assert set(cluster.received().values()) == {1}

        # 4. Everything through the relay frozen, new connections too: SIGTERM is honoured
        # within the configured bounds (the call in flight, then one connect attempt).
        proxy.freeze_all()
        mark = len(a.lines())
        wait_until(
            lambda: any("operation_timeout" in x for x in a.lines()[mark:]),
            OPERATION_S + CONNECT_S + 10,
            "A to notice the freeze",
        )
        stopping = time.monotonic()
        a.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        a.process.wait(timeout=30)  # type: ignore[union-attr]  # its exit code: the worker's
        took = time.monotonic() - stopping
        assert took < OPERATION_S + CONNECT_S + 3, f"SIGTERM took {took:.1f} s:\n{a.log()}"
        proxy.thaw()
        assert b.terminate() == 0, b.log()
    finally:
        for p in (a, b):
            p.close()
        proxy.thaw()
        proxy.close()
