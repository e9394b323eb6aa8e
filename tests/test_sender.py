"""The sender drains the outbox (SQLite) through the real Telegram notifier and the fake server."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.config import DeliveryConfig, TelegramConfig, parse_config
from bot.logs import setup_logging
from bot.model import Alert
from bot.notify.base import NOTIFIERS, Notifier
from bot.notify.console import ConsoleNotifier
from bot.notify.sender import MIGRATIONS_KEY, DrainReport, Sender
from bot.notify.telegram import RateLimits, TelegramNotifier
from bot.store.base import Store
from bot.store.sqlite import SqliteStore
from tests.fakes.telegram import (
    FAKE_TOKEN,
    Failure,
    FakeTelegram,
    cant_parse_entities,
    rate_limited,
    server_error,
)

T0 = datetime(2025, 9, 18, 14, 30, tzinfo=UTC)
CHATS: dict[str, int | str | None] = {
    "traders": 1001,
    "desk": 1002,
    "group": -4321,
    "admin": 9999,
}


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    db = SqliteStore(tmp_path / "state.sqlite")
    db.migrate()
    yield db
    db.close()


class Sleeps:
    """An injected sleep: records each wait and moves the fake clock instead of waiting."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(timedelta(seconds=seconds))


class Bench:
    """A sender wired to the store, the fake Bot API and a fake clock."""

    def __init__(
        self,
        store: Store,
        fake: FakeTelegram,
        *,
        delivery: DeliveryConfig | None = None,
        admin_chat: str | None = "admin",
    ) -> None:
        self.store = store
        self.fake = fake
        self.clock = FakeClock(T0)
        self.sleeps = Sleeps(self.clock)
        config = TelegramConfig(
            token=FAKE_TOKEN, base_url=fake.base_url, chats=CHATS, timeout=timedelta(seconds=5)
        )
        # Rate limiting has its own tests (test_telegram.py); here it would only slow things.
        self.notifier = TelegramNotifier(config, rate_limits=None)
        self.sender = Sender(
            store=store,
            notifier=self.notifier,
            clock=self.clock,
            sleep=self.sleeps,
            worker_id="test-worker",
            chats=CHATS,
            admin_chat=admin_chat,
            delivery=delivery
            or DeliveryConfig(
                max_attempts=4,
                backoff=timedelta(seconds=2),
                max_backoff=timedelta(seconds=60),
                lease=timedelta(minutes=2),
            ),
        )
        self._n = 0

    def queue(self, text: str, *chats: str, silent: bool = False) -> Alert:
        """Write one alert for ``chats`` to the outbox (alert times increase)."""
        self._n += 1
        alert = Alert(
            id=f"rule:{self._n}",
            rule_id="rule",
            rule_type="cross",
            symbol="RUT",
            time=T0 + timedelta(seconds=self._n),
            value=2500.0 + self._n,
            text=text,
            silent=silent,
        )
        assert self.store.commit({}, [(alert, list(chats))], self.clock.now()) == [alert.id]
        return alert

    def drain(self) -> DrainReport:
        async def run() -> DrainReport:
            try:
                return await self.sender.drain()
            finally:
                await self.notifier.stop()

        return asyncio.run(run())

    def status(self) -> dict[tuple[str, str], str]:
        return {(d.alert.id, d.chat): status for d, status in self.store.deliveries()}

    def row(self, alert_id: str, chat: str) -> Any:
        [row] = [r for r in self.store.outbox() if r.alert.id == alert_id and r.chat == chat]
        return row

    def plain(self, chat_id: int | str) -> list[str]:
        return [m.plain for m in self.fake.sent_to(chat_id)]


@pytest.fixture
def bench(store: SqliteStore, fake: FakeTelegram) -> Bench:
    return Bench(store, fake)


# ---------------------------------------------------------------------------------------------
# Happy path
# ---------------------------------------------------------------------------------------------


def test_delivers_every_row_in_order_and_marks_it_sent(bench: Bench) -> None:
    a1 = bench.queue("RUT < 2,500 & falling", "traders", "desk")
    a2 = bench.queue("second", "traders")
    a3 = bench.queue("third", "traders", "desk", silent=True)

    report = bench.drain()

    assert (report.claimed, report.sent, report.failed, report.pending) == (5, 5, 0, 0)
    assert bench.plain(1001) == ["RUT < 2,500 & falling", "second", "third"]
    assert bench.plain(1002) == ["RUT < 2,500 & falling", "third"]
    assert bench.fake.sent_to(1001)[0].text == "<b>RUT &lt; 2,500 &amp; falling</b>"
    assert [m.disable_notification for m in bench.fake.sent_to(1002)] == [False, True]
    assert set(bench.status().values()) == {"sent"}
    row = bench.row(a1.id, "traders")
    assert row.message_ids == (bench.fake.sent_to(1001)[0].message_id,)
    assert row.sent_at == T0 and row.attempts == 1
    assert a2.id and a3.id
    # nothing left: a second drain sends nothing more
    assert bench.drain().claimed == 0
    assert len(bench.fake.messages) == 5


def test_long_alert_goes_out_as_several_messages_one_row(bench: Bench) -> None:
    text = "Digest\n" + "\n".join(f"line {n} <ok> " + "-" * 90 for n in range(100))
    alert = bench.queue(text, "traders")
    report = bench.drain()
    assert (report.sent, report.messages) == (1, 3)
    assert len(bench.row(alert.id, "traders").message_ids) == 3
    assert "\n".join(bench.plain(1001)) == text


def test_console_mode_prints_alerts(store: SqliteStore) -> None:
    out = io.StringIO()
    sender = Sender(store=store, notifier=ConsoleNotifier(out), clock=FakeClock(T0))
    alert = Alert("r:1", "r", "cross", "RUT", T0, 2501.0, "RUT crossed 2,500 <up>")
    store.commit({}, [(alert, ["console"])], T0)

    report = asyncio.run(sender.drain())

    assert report.sent == 1
    assert out.getvalue() == "ALERT [r] RUT crossed 2,500 <up>\n"
    assert [s for _, s in store.deliveries()] == ["sent"]


def test_sender_reads_chats_admin_and_delivery_from_config(
    store: SqliteStore, fake: FakeTelegram
) -> None:
    text = f"""
telegram:
  token: {FAKE_TOKEN}
  base_url: {fake.base_url}
  chats: {{traders: 1001, ops: -100200}}
  admin_chat: ops
delivery: {{max_attempts: 5, backoff: 3s}}
"""
    config = parse_config(text, "config.yaml", {})
    notifier = NOTIFIERS.get("telegram")(config.telegram)
    sender = Sender(config=config, store=store, notifier=notifier, clock=FakeClock(T0))
    assert sender.chats == {"traders": 1001, "ops": -100200}
    assert sender.admin_chat == "ops"
    assert (sender.delivery.max_attempts, sender.delivery.backoff) == (5, timedelta(seconds=3))
    assert not sender.console_only

    alert = Alert("r:1", "r", "cross", "RUT", T0, 2501.0, "hello")
    store.commit({}, [(alert, ["traders", "ops"])], T0)

    async def run() -> DrainReport:
        try:
            return await sender.drain()
        finally:
            await notifier.stop()

    assert asyncio.run(run()).sent == 2
    assert [m.plain for m in fake.messages] == ["hello", "hello"]


def test_marked_sent_only_after_telegram_answered_ok(bench: Bench) -> None:
    alert = bench.queue("hello", "traders")
    seen: list[str] = []
    # While the request is at the server, the row is still pending (leased, not sent).
    bench.fake.before_answer = lambda params: seen.append(bench.status()[(alert.id, "traders")])
    bench.fake.fail(server_error(500))  # the first answer is an error

    first = bench.drain()
    assert seen == ["pending"]
    assert bench.status()[(alert.id, "traders")] == "pending"
    assert (first.sent, first.retried) == (0, 1)

    bench.clock.advance(timedelta(seconds=2))
    second = bench.drain()
    assert seen == ["pending", "pending"]
    assert second.sent == 1
    assert bench.status()[(alert.id, "traders")] == "sent"


# ---------------------------------------------------------------------------------------------
# 429
# ---------------------------------------------------------------------------------------------


def test_429_waits_retry_after_for_that_chat_while_others_go_on(bench: Bench) -> None:
    for n in range(3):
        bench.queue(f"alert {n}", "traders", "desk")
    bench.fake.fail(rate_limited(5), chat_id=1001)
    desk_done_while_traders_waited: list[int] = []

    async def sleep(seconds: float) -> None:
        # Traders' chat is waiting here. Desk must not be: let the loop run until desk got
        # everything (or give up after a while — then desk was blocked behind traders).
        for _ in range(500):
            if len(bench.fake.sent_to(1002)) == 3:
                break
            await asyncio.sleep(0.01)
        desk_done_while_traders_waited.append(len(bench.fake.sent_to(1002)))
        await bench.sleeps(seconds)

    bench.sender.sleep = sleep
    report = bench.drain()

    assert bench.sleeps.waits == [5.0]
    assert desk_done_while_traders_waited == [3]
    assert report.rate_limited == 1 and report.sent == 6 and report.retried == 0
    assert bench.plain(1001) == ["alert 0", "alert 1", "alert 2"]
    assert [c.status for c in bench.fake.calls_to(1001)] == [429, 200, 200, 200]


def test_long_retry_after_reschedules_that_chat_and_keeps_its_order(bench: Bench) -> None:
    first = bench.queue("first", "traders", "desk")
    second = bench.queue("second", "traders", "desk")
    bench.fake.fail(rate_limited(120), chat_id=1001)  # longer than the sender waits in place

    report = bench.drain()

    assert bench.sleeps.waits == []
    assert bench.plain(1002) == ["first", "second"]  # desk unaffected
    assert bench.plain(1001) == []  # traders' second alert did not overtake the first
    assert (report.rate_limited, report.retried, report.sent) == (1, 1, 2)
    row = bench.row(first.id, "traders")
    assert row.status == "pending" and row.next_attempt_at == T0 + timedelta(seconds=120)
    assert bench.row(second.id, "traders").status == "pending"

    bench.clock.advance(timedelta(seconds=60))
    assert bench.drain().sent == 0  # not yet due
    bench.clock.advance(timedelta(seconds=60))
    bench.drain()
    bench.clock.advance(timedelta(minutes=2))  # a store without release(): the lease runs out
    bench.drain()
    assert bench.plain(1001) == ["first", "second"]
    assert bench.row(first.id, "traders").status == "sent"


def test_repeated_429_never_fails_a_row(store: SqliteStore, fake: FakeTelegram) -> None:
    bench = Bench(
        store, fake, delivery=DeliveryConfig(max_attempts=2, backoff=timedelta(seconds=1))
    )
    alert = bench.queue("x", "traders")
    fake.fail(rate_limited(100), chat_id=1001, times=3)
    for _ in range(3):
        bench.drain()
        assert bench.row(alert.id, "traders").status == "pending"
        bench.clock.advance(timedelta(seconds=100))
    bench.drain()
    assert bench.row(alert.id, "traders").status == "sent"


# ---------------------------------------------------------------------------------------------
# Permanent failures
# ---------------------------------------------------------------------------------------------


def test_blocked_chat_fails_and_admin_is_told_once(bench: Bench) -> None:
    bench.fake.block(1001)
    a1 = bench.queue("one", "traders", "desk")
    a2 = bench.queue("two", "traders")

    report = bench.drain()

    assert bench.status()[(a1.id, "traders")] == "failed"
    assert bench.status()[(a2.id, "traders")] == "failed"
    assert bench.status()[(a1.id, "desk")] == "sent"
    assert report.failed == 2
    assert "bot was blocked by the user" in bench.row(a1.id, "traders").error
    [notice] = bench.plain(9999)
    assert notice.startswith("Alerts to chat 'traders' cannot be delivered\n")
    assert "blocked by the user" in notice

    bench.queue("three", "traders")
    bench.drain()
    assert len(bench.plain(9999)) == 1  # told once, not once per alert
    assert bench.store.get_value("admin_notified:traders") is not None


def test_chat_not_found_fails_without_retry(bench: Bench) -> None:
    bench.fake.forget_chat(1002)
    alert = bench.queue("hello", "desk")
    report = bench.drain()
    row = bench.row(alert.id, "desk")
    assert row.status == "failed" and "chat not found" in row.error.lower()
    assert (report.failed, report.retried) == (1, 0)
    assert len(bench.fake.calls_to(1002)) == 1
    assert len(bench.plain(9999)) == 1


def test_no_admin_chat_configured_just_logs(
    store: SqliteStore, fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    bench = Bench(store, fake, admin_chat=None)
    fake.block(1001)
    bench.queue("one", "traders")
    with caplog.at_level(logging.ERROR, logger="bot.notify.sender"):
        bench.drain()
    assert "failed for good" in caplog.text and "blocked" in caplog.text
    assert fake.messages == []


def test_unknown_chat_name_fails(bench: Bench) -> None:
    alert = bench.queue("x", "nobody")
    bench.drain()
    row = bench.row(alert.id, "nobody")
    assert row.status == "failed" and "unknown chat name" in row.error


# ---------------------------------------------------------------------------------------------
# Migration
# ---------------------------------------------------------------------------------------------


def test_migrated_group_is_resent_to_the_new_id_and_remembered(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    bench.fake.migrate(-4321, -1004321)
    a1 = bench.queue("first", "group")

    with caplog.at_level(logging.WARNING, logger="bot.notify.sender"):
        report = bench.drain()

    assert bench.plain(-1004321) == ["first"]
    assert bench.status()[(a1.id, "group")] == "sent"
    assert report.migrated == 1 and report.sent == 1
    assert bench.store.get_value(MIGRATIONS_KEY) == {"-4321": -1004321}
    assert "update config: chat group is now -1004321" in caplog.text

    bench.queue("second", "group")
    bench.drain()
    assert bench.plain(-1004321) == ["first", "second"]
    assert len(bench.fake.calls_to(-4321)) == 1  # the old id is not tried again


# ---------------------------------------------------------------------------------------------
# Retries
# ---------------------------------------------------------------------------------------------


def test_5xx_is_retried_with_exponential_backoff_then_delivered(bench: Bench) -> None:
    alert = bench.queue("hello", "traders")
    bench.fake.fail(server_error(500), chat_id=1001, times=2)

    bench.drain()
    row = bench.row(alert.id, "traders")
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at == T0 + timedelta(seconds=2)
    assert "Internal Server Error" in row.error

    bench.clock.advance(timedelta(seconds=1))
    assert bench.drain().claimed == 0  # not due yet
    bench.clock.advance(timedelta(seconds=1))
    bench.drain()
    row = bench.row(alert.id, "traders")
    assert (row.status, row.attempts) == ("pending", 2)
    assert row.next_attempt_at == T0 + timedelta(seconds=2 + 4)  # doubled

    bench.clock.advance(timedelta(seconds=4))
    report = bench.drain()
    assert report.sent == 1
    assert bench.row(alert.id, "traders").status == "sent"
    assert bench.plain(1001) == ["hello"]
    assert bench.sleeps.waits == []  # back-off goes through the store, not a sleep


def test_backoff_is_capped(store: SqliteStore, fake: FakeTelegram) -> None:
    delivery = DeliveryConfig(
        max_attempts=10, backoff=timedelta(seconds=10), max_backoff=timedelta(seconds=25)
    )
    bench = Bench(store, fake, delivery=delivery)
    alert = bench.queue("x", "traders")
    fake.fail(server_error(503), chat_id=1001, times=None)
    gaps = []
    for _ in range(4):
        before = bench.clock.now()
        bench.drain()
        due = bench.row(alert.id, "traders").next_attempt_at
        gaps.append((due - before).total_seconds())
        bench.clock.set(due)
    assert gaps == [10, 20, 25, 25]


def test_gives_up_after_max_attempts(store: SqliteStore, fake: FakeTelegram) -> None:
    bench = Bench(
        store, fake, delivery=DeliveryConfig(max_attempts=3, backoff=timedelta(seconds=1))
    )
    alert = bench.queue("x", "traders")
    fake.fail(server_error(500), chat_id=1001, times=None)
    for _ in range(5):
        bench.drain()
        bench.clock.advance(timedelta(minutes=1))
    row = bench.row(alert.id, "traders")
    assert row.status == "failed" and row.attempts == 3
    assert row.error.startswith("gave up after 3 attempts: ")
    assert len(fake.calls_to(1001)) == 3
    assert bench.plain(9999) == []  # a transient failure is not an unreachable chat


def test_a_waiting_row_holds_back_later_rows_of_its_chat(bench: Bench) -> None:
    a1 = bench.queue("one", "traders", "desk")
    bench.queue("two", "traders", "desk")
    bench.queue("three", "traders")
    bench.fake.fail(server_error(502), chat_id=1001)

    report = bench.drain()

    assert bench.plain(1001) == []
    assert bench.plain(1002) == ["one", "two"]
    assert report.held == 2
    # each later row has its lease handed back or kept; either way it waits for "one"
    for _ in range(3):
        bench.clock.advance(timedelta(minutes=2))
        bench.drain()
    assert bench.plain(1001) == ["one", "two", "three"]
    assert bench.row(a1.id, "traders").attempts == 2


def test_network_error_is_retried(store: SqliteStore, fake: FakeTelegram) -> None:
    bench = Bench(store, fake)
    alert = bench.queue("x", "traders")
    fake.stop()  # Telegram unreachable
    bench.drain()
    row = bench.row(alert.id, "traders")
    assert row.status == "pending" and "unavailable" in row.error


# ---------------------------------------------------------------------------------------------
# Shutdown
# ---------------------------------------------------------------------------------------------


def test_drain_until_empty_delivers_everything_due(bench: Bench) -> None:
    for n in range(4):
        bench.queue(f"a{n}", "traders", "desk")

    async def run() -> DrainReport:
        try:
            return await bench.sender.drain_until_empty(bench.clock.now() + timedelta(seconds=10))
        finally:
            await bench.notifier.stop()

    report = asyncio.run(run())
    assert report.sent == 8 and report.pending == 0


def test_drain_until_empty_starts_nothing_after_the_deadline(bench: Bench) -> None:
    alert = bench.queue("late", "traders")

    async def run() -> DrainReport:
        try:
            return await bench.sender.drain_until_empty(bench.clock.now())
        finally:
            await bench.notifier.stop()

    report = asyncio.run(run())
    assert report.sent == 0 and report.pending == 1
    assert bench.fake.messages == []
    assert bench.row(alert.id, "traders").status == "pending"


def test_token_never_in_stored_errors_or_logs(bench: Bench) -> None:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), logging.getLogRecordFactory())
    levels = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "telegram")}
    stream = io.StringIO()
    try:
        setup_logging("DEBUG", stream=stream)
        for name in levels:  # as chatty as it gets: request URLs with the token are logged
            logging.getLogger(name).setLevel(logging.DEBUG)
        bench.fake.block(1001)
        bench.fake.fail(server_error(500), chat_id=1002)
        bench.queue("x", "traders", "desk")
        report = bench.drain()
    finally:
        for handler in root.handlers[:]:
            if handler not in saved[1]:
                root.removeHandler(handler)
        root.setLevel(saved[0])
        logging.setLogRecordFactory(saved[2])
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    assert "bot<redacted>/sendMessage" in stream.getvalue()
    texts = [r.error or "" for r in bench.store.outbox()] + report.errors + [stream.getvalue()]
    texts += [m.text for m in bench.fake.messages]
    for text in texts:
        assert FAKE_TOKEN.split(":")[1] not in text


# ---------------------------------------------------------------------------------------------
# Long alerts: parts Telegram accepted are never sent again
# ---------------------------------------------------------------------------------------------

LONG_TEXT = "Digest\n" + "\n".join(f"line {n} <ok> " + "-" * 90 for n in range(100))


@pytest.mark.parametrize(
    "failure",
    [rate_limited(120), rate_limited(1), server_error(502)],
    ids=["429-later", "429-inline", "5xx"],
)
def test_failure_on_part_two_resends_only_the_parts_not_accepted(
    bench: Bench, failure: Failure
) -> None:
    alert = bench.queue(LONG_TEXT, "traders")
    bench.fake.fail(failure, chat_id=1001, skip=1)  # part 1 accepted, part 2 refused once

    first = bench.drain()
    if first.sent == 0:  # rescheduled: part 1's id is already on the row
        row = bench.row(alert.id, "traders")
        assert row.status == "pending" and len(row.message_ids) == 1
        bench.clock.advance(timedelta(minutes=3))
        assert bench.drain().sent == 1

    # 3 parts arrive as 3 messages, in order; the row holds the 3 message ids
    assert len(bench.fake.sent_to(1001)) == 3
    assert "\n".join(bench.plain(1001)) == LONG_TEXT
    row = bench.row(alert.id, "traders")
    assert row.status == "sent"
    assert row.message_ids == tuple(m.message_id for m in bench.fake.sent_to(1001))


def test_parts_accepted_before_a_crash_survive_a_restart(bench: Bench) -> None:
    alert = bench.queue(LONG_TEXT, "traders")
    bench.fake.fail(server_error(500), chat_id=1001, skip=2)  # parts 1 and 2 go out
    bench.drain()
    assert len(bench.fake.sent_to(1001)) == 2
    # a new process (new sender, new notifier) on the same outbox
    restarted = Bench(bench.store, bench.fake)
    restarted.clock.set(bench.clock.now() + timedelta(minutes=3))
    assert restarted.drain().sent == 1
    assert len(bench.fake.sent_to(1001)) == 3
    assert "\n".join(bench.plain(1001)) == LONG_TEXT
    assert len(bench.row(alert.id, "traders").message_ids) == 3


# ---------------------------------------------------------------------------------------------
# Back-off arithmetic
# ---------------------------------------------------------------------------------------------


def _set_attempts(store: SqliteStore, attempts: int) -> None:
    store._conn.execute("UPDATE deliveries SET attempts = ?", (attempts,))


def test_backoff_past_attempt_100_is_the_cap_and_max_attempts_is_reached(
    store: SqliteStore, fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    delivery = DeliveryConfig(
        max_attempts=103, backoff=timedelta(seconds=2), max_backoff=timedelta(minutes=5)
    )
    bench = Bench(store, fake, delivery=delivery)
    alert = bench.queue("x", "traders")
    fake.fail(server_error(503), chat_id=1001, times=None)
    _set_attempts(store, 100)

    with caplog.at_level(logging.WARNING):
        bench.drain()
    row = bench.row(alert.id, "traders")
    assert (row.status, row.attempts) == ("pending", 101)
    assert row.next_attempt_at == bench.clock.now() + timedelta(minutes=5)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    bench.clock.advance(timedelta(minutes=1))
    assert bench.drain().claimed == 0  # the back-off is honoured, not re-sent at once
    for _ in range(3):
        bench.clock.advance(timedelta(minutes=5))
        bench.drain()
    row = bench.row(alert.id, "traders")
    assert (row.status, row.attempts) == ("failed", 103)
    assert len(fake.calls_to(1001)) == 3


def test_backoff_is_monotonic_and_capped_for_any_attempt() -> None:
    sender = Sender(
        store=SqliteStore(":memory:"),
        notifier=ConsoleNotifier(io.StringIO()),
        delivery=DeliveryConfig(backoff=timedelta(seconds=2), max_backoff=timedelta(minutes=5)),
    )
    delays = [sender.backoff(n) for n in (1, 2, 3, 8, 9, 47, 100, 1100, 10**6)]
    assert delays[:3] == [timedelta(seconds=2), timedelta(seconds=4), timedelta(seconds=8)]
    assert delays[3] == timedelta(seconds=256)
    assert all(d == timedelta(minutes=5) for d in delays[4:])


# ---------------------------------------------------------------------------------------------
# HTML Telegram cannot parse; the admin chat itself failing
# ---------------------------------------------------------------------------------------------


def test_html_telegram_cannot_parse_is_resent_as_plain_text(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    bench.fake.fail(cant_parse_entities(), chat_id=1001, times=None, html_only=True)
    alert = bench.queue("RUT < 2,500 & falling\nsecond line", "traders")

    with caplog.at_level(logging.WARNING):
        report = bench.drain()

    assert report.sent == 1 and report.failed == 0
    [message] = bench.fake.sent_to(1001)
    assert message.parse_mode is None
    assert message.text == "RUT < 2,500 & falling\nsecond line"
    assert bench.row(alert.id, "traders").status == "sent"
    assert "plain text" in caplog.text and "can't parse entities" in caplog.text.lower()


def test_long_alert_falls_back_to_plain_text_part_by_part(bench: Bench) -> None:
    bench.fake.fail(cant_parse_entities(), chat_id=1001, skip=1, html_only=True)
    bench.queue(LONG_TEXT, "traders")
    assert bench.drain().sent == 1
    modes = [m.parse_mode for m in bench.fake.sent_to(1001)]
    assert modes == ["HTML", None, "HTML"]
    assert "\n".join(bench.plain(1001)) == LONG_TEXT


def test_admin_chat_failing_for_good_is_an_error_in_the_log(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    bench.fake.block(9999)
    bench.fake.block(1001)
    bench.queue("one", "traders")

    with caplog.at_level(logging.WARNING, logger="bot.notify.sender"):
        for _ in range(2):  # the notice to the admin chat goes out on the next round
            bench.drain()

    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    admin = [m for m in errors if "admin chat" in m]
    assert admin, errors
    assert "nobody" in admin[0] and "blocked" in admin[0]


# ---------------------------------------------------------------------------------------------
# A bug is not an outage
# ---------------------------------------------------------------------------------------------


class BuggyNotifier(Notifier):
    """A notifier with a bug in it: every send raises a TypeError."""

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, chat_id: int | str, alert: Alert) -> list[int]:
        self.calls += 1
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")


def test_unexpected_exception_fails_the_row_once_with_a_traceback(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(T0)
    notifier = BuggyNotifier()
    sender = Sender(store=store, notifier=notifier, clock=clock, chats=CHATS)
    alert = Alert("r:1", "r", "cross", "RUT", T0, 2501.0, "hello")
    store.commit({}, [(alert, ["traders"])], T0)

    with caplog.at_level(logging.ERROR, logger="bot.notify.sender"):
        report = asyncio.run(sender.drain())
    clock.advance(timedelta(hours=1))
    asyncio.run(sender.drain())

    assert notifier.calls == 1  # not retried as if Telegram were down
    [row] = store.outbox()
    assert row.status == "failed" and "TypeError" in (row.error or "")
    assert report.failed == 1
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.exc_info is not None and record.exc_info[0] is TypeError


# ---------------------------------------------------------------------------------------------
# One chat's order, deterministically
# ---------------------------------------------------------------------------------------------


def test_a_row_waiting_for_its_retry_holds_back_a_newer_row_of_its_chat(bench: Bench) -> None:
    first = bench.queue("first", "traders")
    bench.fake.fail(server_error(502), chat_id=1001)
    bench.drain()  # "first" now waits for its back-off (due in 2 s)
    bench.queue("second", "traders", "desk")  # due now

    report = bench.drain()  # the clock has not moved: only "second" is due

    assert bench.plain(1001) == []  # "second" must not overtake "first"
    assert bench.plain(1002) == ["second"]  # other chats are not held
    assert report.held == 1
    bench.clock.advance(timedelta(seconds=2))
    bench.drain()
    assert bench.plain(1001) == ["first", "second"]
    assert bench.row(first.id, "traders").status == "sent"


def test_a_row_leased_by_another_replica_holds_back_a_newer_row_of_its_chat(
    bench: Bench,
) -> None:
    bench.queue("first", "traders")
    bench.queue("second", "traders")
    [taken] = bench.store.claim("other-replica", bench.clock.now(), timedelta(minutes=2), 1)
    assert taken.alert.text == "first"

    report = bench.drain()

    assert bench.plain(1001) == []
    assert (report.sent, report.held) == (0, 1)


def test_a_429_is_one_warning_line(
    store: SqliteStore, fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    bench = Bench(store, fake)
    # with python-telegram-bot's rate limiter in the path, as in production
    bench.notifier = TelegramNotifier(
        bench.notifier.config, rate_limits=RateLimits(time_factor=0.01)
    )
    bench.sender.notifier = bench.notifier
    bench.queue("x", "traders")
    fake.fail(rate_limited(1), chat_id=1001)

    with caplog.at_level(logging.INFO):
        assert bench.drain().sent == 1

    loud = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert [(r.levelname, "429" in r.getMessage()) for r in loud] == [("WARNING", True)]
