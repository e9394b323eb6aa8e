"""Crash safety: ``kill -9`` the real bot process at each kind of moment, restart it, and no alert
is lost; at most the single message in flight at each kill arrives twice (at-least-once delivery).

Every process here is ``python -m bot run`` on one SQLite state file, against the fake Yahoo
and the fake Telegram Bot API (which live in the test process and outlast the bot processes).
A restarted process gets a new worker id, so rows the killed one had leased wait until their
lease (``delivery.lease: 2s`` here) runs out and are then claimed again.

What "in flight at a kill" means is measured, not assumed: after each kill (and once the fake
server has finished answering the dead process's last request), the messages Telegram accepted
whose outbox rows are not marked sent are exactly the ones that may — and, since the row is
still pending, must — arrive a second time.

A clean stop (SIGTERM) is not a crash: the send in flight finishes and is recorded, so nothing
is repeated at all.

Real time is the point here, within bounds: the bot processes run on the system clock (quotes
are stamped minutes before now, the lease and the one-second poll are real seconds). The tests
themselves never sleep: each kill lands at an event they wait for — a request held at a fake
server, a log line, a state in the store — with a timeout that only bounds a hang.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.notify.telegram import format_alert_html
from bot.store.base import OutboxRow
from bot.store.sqlite import SqliteStore
from tests.fakes.telegram import FakeTelegram, server_error
from tests.fakes.yahoo import Reply, YahooFake, chart_response
from tests.procs import BotProcess, SendGate, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

CHAT = 4242
LEVELS = ["2400", "2450", "2500", "2550", "2600"]
ARM_PRICE = 2390.0  # below every level: the first poll arms the rule
# One level crossed per poll (a lost poll makes the next one cross two levels: same alerts).
LADDER = [2410.0, 2460.0, 2510.0, 2560.0, 2610.0]

CONFIG = """\
timezone: America/New_York
telegram:
  token: ${{TELEGRAM_BOT_TOKEN}}
  base_url: {telegram}
  chats: {{traders: {chat}}}
state:
  url: sqlite:///{state}
sources:
  yahoo: {{type: yahoo, base_url: {yahoo}, attempts: 1}}
symbols:
  RUT: {{source: yahoo, ticker: "^RUT", name: Russell 2000, calendar: always}}
poll: {{every: 1s}}
delivery: {{lease: 2s, backoff: 200ms, max_backoff: 1s, max_attempts: 50}}
rules:
  - id: rut-ladder
    type: cross
    symbol: RUT
    levels: [{levels}]
    direction: up
"""


@pytest.fixture
def setup(
    tmp_path: Path, yahoo_fake: YahooFake, fake_telegram: FakeTelegram
) -> Iterator[tuple[Path, Path]]:
    """(config path, state path); the rule armed by one ``run --once`` at 2,390."""
    state = tmp_path / "state.sqlite"
    config = tmp_path / "config.yaml"
    config.write_text(
        CONFIG.format(
            telegram=fake_telegram.base_url,
            chat=CHAT,
            state=state,
            yahoo=yahoo_fake.base_url,
            levels=", ".join(LEVELS),
        )
    )
    # Daily-bar requests (final closes) get an answer without bars: no close to report.
    yahoo_fake.script(yahoo_fake.chart_path("^RUT"), [chart_response(price=1.0)])
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    serve(yahoo_fake, [ARM_PRICE], start)
    armed = BotProcess(config, "--once").start()
    armed.wait_for("cycle: polled RUT, 0 alerts")  # the worker's line per cycle
    assert armed.process is not None and armed.process.wait(timeout=30) == 0, armed.log()
    # Quote requests from now on walk up the ladder, one step per poll (the last one repeats).
    serve(yahoo_fake, LADDER, start + timedelta(minutes=1))
    yield config, state


def serve(yahoo: YahooFake, prices: list[float], start: datetime) -> None:
    """Quote requests get these prices in order, quoted one minute apart from ``start``."""
    replies = [
        chart_response(price=p, time=start + timedelta(minutes=i)) for i, p in enumerate(prices)
    ]
    yahoo.script(yahoo.chart_path("^RUT"), replies, query={"range": "1d"})


def outbox(state: Path) -> list[OutboxRow]:
    """The outbox as the bot left it (read from the test process: SQLite WAL allows it)."""
    with SqliteStore(state) as store:
        return store.outbox()


def all_sent(state: Path, count: int) -> bool:
    rows = outbox(state)
    return len(rows) == count and all(r.status == "sent" for r in rows)


def unrecorded(fake: FakeTelegram, gate: SendGate, state: Path, since: int) -> list[str]:
    """Messages Telegram accepted from the process just killed (``fake.messages[since:]``) whose
    outbox row is not marked sent: the ones in flight when it died. Call only while no bot
    process runs."""
    gate.wait_idle()
    accepted = set(fake.texts(CHAT)[since:])
    return [
        format_alert_html(r.alert)
        for r in outbox(state)
        if r.status != "sent" and format_alert_html(r.alert) in accepted
    ]


def check_delivery(
    fake: FakeTelegram, state: Path, in_flight_at_kills: list[str], kills: int, refused: int = 0
) -> Counter[str]:
    """Every alert delivered, in order, at least once; the only repeats are messages that were
    in flight at a kill, once per such kill. Returns the per-text counts."""
    rows = outbox(state)
    # One alert per level, none lost at evaluation (a kill mid-cycle loses at most a poll).
    assert sorted(r.alert.id.split(":")[1] for r in rows) == LEVELS, [r.alert.id for r in rows]
    assert all(r.status == "sent" and r.chat == "traders" for r in rows)
    expected = [format_alert_html(r.alert) for r in rows]  # alert order
    texts = fake.texts(CHAT)
    counts = Counter(texts)
    assert set(counts) == set(expected), "lost or unexpected messages"
    first_seen = list(dict.fromkeys(texts))
    assert first_seen == expected, "a chat's alerts arrived out of order"
    duplicates = Counter({text: n - 1 for text, n in counts.items() if n > 1})
    assert duplicates == Counter(in_flight_at_kills), (duplicates, in_flight_at_kills)
    assert sum(duplicates.values()) <= kills
    # and the fake refused no request but the ones the test scripted
    assert sum(call.status != 200 for call in fake.calls) == refused
    return counts


def test_kill_while_telegram_holds_a_send_repeats_only_that_message(
    setup: tuple[Path, Path], fake_telegram: FakeTelegram
) -> None:
    """SIGKILL while a sendMessage is held at the server, twice; Telegram then accepts the held
    message (the dead process never learns it). After restarts all five alerts arrive, in order,
    and only the two held messages arrive twice."""
    config, state = setup
    # Request 1 is the first alert; request 4 is after the resend of 1 and the next two.
    gate = SendGate(fake_telegram, hold_calls={1, 4})
    in_flight: list[str] = []
    processes: list[BotProcess] = []
    try:
        for _ in range(2):
            since = len(fake_telegram.texts(CHAT))
            bot = BotProcess(config).start()
            processes.append(bot)
            held = gate.wait_held()
            bot.kill()
            gate.release()
            lost_answer = unrecorded(fake_telegram, gate, state, since)
            assert lost_answer == [held]  # exactly the held message: accepted, not recorded
            in_flight.extend(lost_answer)
        bot = BotProcess(config).start()
        processes.append(bot)
        wait_until(lambda: all_sent(state, len(LEVELS)), 40, "all alerts delivered")
        assert bot.terminate() == 0, bot.log()
    finally:
        gate.release()
        for p in processes:
            p.close()
    counts = check_delivery(fake_telegram, state, in_flight, kills=2)
    assert sum(counts.values()) == len(LEVELS) + 2
    ids = [p.worker_id() for p in processes]
    assert len(set(ids)) == 3, ids  # each restart is a new worker (its own leases)


class Ladder:
    """The quote script, re-scripted by the test before each bot process: which ladder steps
    the next process may see, and whether its first quote request is held at the server.

    Each reply served is a step used up, even when the process asking was killed before it
    evaluated it (a lost poll: the next step crosses two levels, the same alerts). Steps are
    quoted one minute apart from ``start`` (the setup's arming quote is one minute before).
    """

    def __init__(self, yahoo: YahooFake, start: datetime) -> None:
        self.yahoo = yahoo
        self.start = start
        self.next = 0  # the first step not served yet
        self._upto = 0
        self._requests_at_script = 0

    def requests(self) -> int:
        """Quote requests (``range=1d``) received so far, by any process."""
        return sum(r.query.get("range") == "1d" for r in self.yahoo.chart_requests("^RUT"))

    def serve(self, upto: int, hold: bool = False) -> None:
        """From now on quote requests get the steps not served yet, up to ``LADDER[upto - 1]``,
        which then repeats (so a process's later polls cross nothing new); ``hold``: the first
        one is held at the server (answered after :data:`HOLD_S`, or when the fake stops).
        Call only while no bot process runs."""
        self.next = min(self.next + self.requests() - self._requests_at_script, self._upto)
        self._requests_at_script = self.requests()
        self._upto = upto
        steps = range(min(self.next, upto - 1), upto)
        replies = [
            Reply(
                chart_response(price=LADDER[i], time=self.start + timedelta(minutes=i)),
                delay=HOLD_S if hold and i == steps[0] else 0.0,
            )
            for i in steps
        ]
        self.yahoo.script(self.yahoo.chart_path("^RUT"), replies, query={"range": "1d"})


HOLD_S = 60.0  # a held quote request waits at most this long: longer than any test here


def test_kills_at_each_kind_of_moment_lose_nothing(
    setup: tuple[Path, Path], fake_telegram: FakeTelegram, yahoo_fake: YahooFake
) -> None:
    """SIGKILL at five points of a process's life, each reached by an event the test waits for
    (never a sleep), restarting after each; then let the last process finish. Nothing lost,
    order kept, and only the message Telegram accepted from a dead process arrives twice.

    1. start-up: the store is open and migrated, the notifier's ``getMe`` is held: nothing
       polled, nothing sent;
    2. mid-poll: the quote request is held at Yahoo (that poll is lost);
    3. committed, not delivered: the cycle queued two alerts and their first send is held and,
       after the kill, refused (500): the dead process's rows wait for its lease;
    4. mid-send: the next process's first send — the oldest row, once the dead one's lease ran
       out — is held and, after the kill, accepted: delivered, not recorded;
    5. between cycles: right after a cycle that delivered everything queued so far.

    Each process sees only the ladder steps the test serves it, so what it queues before its
    kill point is fixed, not a race with its one-second polls."""
    config, state = setup
    ladder = Ladder(yahoo_fake, datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=9))
    gate = SendGate(fake_telegram)
    in_flight: list[str] = []
    processes: list[BotProcess] = []

    def spawn() -> BotProcess:
        bot = BotProcess(config).start()
        processes.append(bot)
        return bot

    def kill(bot: BotProcess, since: int, refuse_held: bool = False) -> list[str]:
        """Kill ``bot``, let a held request be answered (refused if asked), and return what
        Telegram accepted from it (texts after the first ``since``) without its outbox row
        being marked sent."""
        bot.kill()
        if refuse_held:
            fake_telegram.fail(server_error(500), times=1)
        gate.release()
        return unrecorded(fake_telegram, gate, state, since)

    def text_of(level: str) -> str:
        [row] = [r for r in outbox(state) if r.alert.id.split(":")[1] == level]
        return format_alert_html(row.alert)

    try:
        # 1. Start-up.
        ladder.serve(upto=1)
        gate.hold_get_me = True
        polls, since = ladder.requests(), len(fake_telegram.texts(CHAT))
        bot = spawn()
        assert gate.wait_held() == "getMe"
        assert kill(bot, since) == []
        assert ladder.requests() == polls and outbox(state) == []  # it had not polled yet

        # 2. Mid-poll.
        ladder.serve(upto=1, hold=True)
        since = len(fake_telegram.texts(CHAT))
        bot = spawn()
        wait_until(lambda: ladder.requests() == polls + 1, 30, "the poll to reach Yahoo")
        assert kill(bot, since) == []
        assert outbox(state) == []  # the poll never got its answer: nothing evaluated

        # 3. Committed, not delivered.
        ladder.serve(upto=2)
        gate.hold_calls = {gate.received + 1}
        since = len(fake_telegram.texts(CHAT))
        bot = spawn()
        held = gate.wait_held()
        rows = outbox(state)
        assert [r.alert.id.split(":")[1] for r in rows] == ["2400", "2450"]  # both committed
        assert all(r.status == "pending" for r in rows)
        assert held == text_of("2400")
        assert kill(bot, since, refuse_held=True) == []
        assert fake_telegram.texts(CHAT) == []  # refused: not delivered

        # 4. Mid-send.
        ladder.serve(upto=3)
        gate.hold_calls = {gate.received + 1}
        since = len(fake_telegram.texts(CHAT))
        bot = spawn()
        held = gate.wait_held()
        assert held == text_of("2400")  # the oldest first, once the dead process's lease ran out
        assert len(outbox(state)) == 3  # its own cycle queued 2,500 (before any send)
        lost_answer = kill(bot, since)
        assert lost_answer == [held]  # accepted by Telegram, not recorded
        in_flight.extend(lost_answer)

        # 5. Between cycles.
        ladder.serve(upto=4)
        since = len(fake_telegram.texts(CHAT))
        bot = spawn()
        wait_until(lambda: all_sent(state, 4), 40, "the four queued alerts delivered")
        bot.wait_for(r"cycle: ", since=len(bot.lines()))
        assert kill(bot, since) == []

        # The last process: the final step, then a clean stop.
        ladder.serve(upto=5)
        bot = spawn()
        wait_until(lambda: all_sent(state, len(LEVELS)), 40, "all alerts delivered")
        assert bot.terminate() == 0, bot.log()
    finally:
        gate.release()
        for p in processes:
            p.close()
    counts = check_delivery(fake_telegram, state, in_flight, kills=5, refused=1)
    assert sum(counts.values()) == len(LEVELS) + 1
    started = processes[1:]  # the first was killed before its worker had started
    assert len({p.worker_id() for p in started}) == len(started)  # each restart a new worker


def test_kill_between_evaluation_and_delivery_then_delivered_once(
    setup: tuple[Path, Path], fake_telegram: FakeTelegram
) -> None:
    """The alert is committed to the outbox, its send fails (Telegram 500) and is held at the
    server while the process is killed: it was never delivered. A restart with Telegram healthy
    claims it once the dead process's lease runs out and delivers it exactly once."""
    config, state = setup
    fake_telegram.fail(server_error(500), times=None)
    gate = SendGate(fake_telegram, hold_calls={1})
    processes: list[BotProcess] = []
    try:
        bot = BotProcess(config).start()
        processes.append(bot)
        held = gate.wait_held()
        rows = outbox(state)
        assert len(rows) == 1 and rows[0].status == "pending" and rows[0].lease_until is not None
        bot.kill()
        gate.release()
        gate.wait_idle()
        assert fake_telegram.texts(CHAT) == []  # answered 500: not delivered
        assert unrecorded(fake_telegram, gate, state, 0) == []
        fake_telegram.clear_failures()
        bot = BotProcess(config).start()
        processes.append(bot)
        wait_until(lambda: all_sent(state, len(LEVELS)), 40, "all alerts delivered")
        assert bot.terminate() == 0, bot.log()
    finally:
        gate.release()
        for p in processes:
            p.close()
    counts = check_delivery(fake_telegram, state, [], kills=1, refused=1)
    assert counts[held] == 1  # the one that was pending at the kill: exactly once
    assert set(counts.values()) == {1}


def test_sigterm_mid_send_lets_the_send_finish_and_records_it(
    setup: tuple[Path, Path], fake_telegram: FakeTelegram
) -> None:
    """A clean stop is not a crash: SIGTERM while Telegram holds a send waits for its answer,
    records it, exits 0 without a traceback; the next process repeats nothing.

    (Regression: the scheduler's shutdown used to cancel the running cycle, so the message
    Telegram accepted stayed pending and was sent again after the restart.)"""
    config, state = setup
    gate = SendGate(fake_telegram, hold_calls={2})
    processes: list[BotProcess] = []
    try:
        bot = BotProcess(config).start()
        processes.append(bot)
        held = gate.wait_held()
        assert bot.process is not None
        bot.process.send_signal(signal.SIGTERM)
        bot.wait_for("received SIGTERM")
        assert bot.alive()  # still waiting for Telegram's answer
        gate.release()
        assert bot.process.wait(timeout=30) == 0, bot.log()
        assert "Traceback" not in bot.log(), bot.log()
        assert held in {format_alert_html(r.alert) for r in outbox(state) if r.status == "sent"}
        bot = BotProcess(config).start()
        processes.append(bot)
        wait_until(lambda: all_sent(state, len(LEVELS)), 40, "all alerts delivered")
        assert bot.terminate() == 0, bot.log()
    finally:
        gate.release()
        for p in processes:
            p.close()
    counts = check_delivery(fake_telegram, state, [], kills=0)
    assert set(counts.values()) == {1}
