"""The worker's state under faults: history missing at start, a failed cycle transaction,
two replicas sharing sanity memory, a wall clock stepping back, closes fetched once.

Everything runs in-process against the fake Yahoo server (real HTTP on 127.0.0.1) and a real
SQLite file, on a fake clock; alerts go to the console (no token) unless said otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app import build_worker
from bot.clock import FakeClock
from bot.config import Config, parse_config
from bot.errors import StoreError
from bot.store.sqlite import SqliteStore
from bot.worker import Worker
from tests.fakes.yahoo import Reply, Seen, YahooFake, chart_response
from tests.worker_support import run_cycles

NY = ZoneInfo("America/New_York")
MON, TUE, WED = date(2024, 11, 25), date(2024, 11, 26), date(2024, 11, 27)

CONFIG = """\
timezone: America/New_York
state: {{url: "sqlite:///{state}"}}
sources:
  yahoo: {{type: yahoo, base_url: {yahoo}, attempts: 1}}
symbols:
  RUT: {{source: yahoo, ticker: "^RUT", name: Russell 2000, calendar: XNYS}}
poll: {{every: 5m, after_close: 20m}}
rules:
{rules}
"""
RECORD_RULE = "  - {id: rut-record, type: record_close, symbol: RUT}"

# The true all-time closing high is 2,300 (long ago); recent closes are below it. Day-to-day
# moves stay under the sanity checker's max_jump (10%): only the record logic is under test.
OLD_BARS: list[tuple[date, float]] = [
    (date(2021, 11, 5), 2250.0),
    (date(2021, 11, 8), 2300.0),
    (date(2021, 11, 9), 2280.0),
    (date(2024, 11, 22), 2050.0),
]


def make_config(tmp_path: Path, yahoo: YahooFake, rules: str = RECORD_RULE) -> Config:
    text = CONFIG.format(state=tmp_path / "state.sqlite", yahoo=yahoo.base_url, rules=rules)
    return parse_config(text, "config.yaml", {})


def after_close(day: date) -> datetime:
    """16:15 New York: the day's close is final (16:00 + 10 min settle), still polling."""
    return datetime(day.year, day.month, day.day, 16, 15, tzinfo=NY)


def serve_quote(yahoo: YahooFake, price: float, when: datetime) -> None:
    yahoo.script(
        yahoo.chart_path("^RUT"), [chart_response(price=price, time=when)], query={"range": "1d"}
    )


def serve_bars(yahoo: YahooFake, bars: list[tuple[date, float]] | Reply) -> None:
    """Daily-bar requests (history and final closes: every request without ``range=1d``)."""
    reply = bars if isinstance(bars, Reply) else chart_response(price=1.0, bars=bars)
    yahoo.chart("^RUT", reply)


def daily_requests(yahoo: YahooFake) -> list[Seen]:
    return [r for r in yahoo.chart_requests("^RUT") if r.query.get("range") != "1d"]


def alerts(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("ALERT [rut-record]")]


async def cycle_at(worker: Worker, clock: FakeClock, when: datetime) -> None:
    clock.set(when)
    await worker.poll_once()


# -- item: record seeded from nothing ----------------------------------------------------------


def test_record_rule_stays_unseeded_while_history_is_missing_then_uses_the_true_record(
    tmp_path: Path, yahoo_fake: YahooFake, capsys: pytest.CaptureFixture[str]
) -> None:
    """History answers 503 at start. Monday's live close (2,100) must not become the record:
    the rule is unseeded (said once, to the console here), the load is retried after minutes,
    and once history (record 2,300) arrives Tuesday's 2,200 is no record; Wednesday's 2,350 is,
    against 2,300."""
    clock = FakeClock(after_close(MON) - timedelta(seconds=30))
    serve_bars(yahoo_fake, Reply("", status=503))  # the source is down at start
    serve_quote(yahoo_fake, 2100.0, clock.now())
    config = make_config(tmp_path, yahoo_fake)

    async def scenario() -> None:
        worker = build_worker(config, clock=clock)
        await worker.start()
        try:
            assert worker.unseeded_rules() == ["rut-record"]
            # Monday's final close arrives live while history is still missing.
            serve_bars(yahoo_fake, [(MON, 2100.0)])
            await cycle_at(worker, clock, after_close(MON))
            # A minute-scale back-off, not a day: two minutes later the load is tried again.
            serve_bars(yahoo_fake, [*OLD_BARS, (MON, 2100.0)])
            await cycle_at(worker, clock, after_close(MON) + timedelta(minutes=2))
            await worker.history_keeper.wait()
            assert worker.unseeded_rules() == []
            serve_bars(yahoo_fake, [*OLD_BARS, (MON, 2100.0), (TUE, 2200.0)])
            serve_quote(yahoo_fake, 2200.0, after_close(TUE))
            await cycle_at(worker, clock, after_close(TUE))
            serve_bars(yahoo_fake, [*OLD_BARS, (MON, 2100.0), (TUE, 2200.0), (WED, 2350.0)])
            serve_quote(yahoo_fake, 2350.0, after_close(WED))
            await cycle_at(worker, clock, after_close(WED))
        finally:
            await worker.stop()

    asyncio.run(scenario())
    out = capsys.readouterr().out
    fired = alerts(out)
    assert len(fired) == 1, fired
    assert "record high of 2,350" in fired[0] and "previous record 2,300" in fired[0]
    notices = [line for line in out.splitlines() if "rut-record is waiting" in line]
    assert len(notices) == 1, out


def test_a_record_stored_while_history_was_missing_is_corrected_when_history_arrives(
    tmp_path: Path, yahoo_fake: YahooFake, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state seeded from a live close (record 2,100, by a bot without history) is folded
    together with the history on the next start: Tuesday's 2,200 is no record under 2,300."""
    config = make_config(tmp_path, yahoo_fake)
    store = SqliteStore(tmp_path / "state.sqlite")
    store.migrate()
    poisoned = {"record": 2100.0, "date": MON.isoformat(), "last_session": MON.isoformat()}
    store.commit({"rut-record": {"rule": poisoned, "last_alert": None, "seen": {}}}, [], clock_t())
    store.set_value("closes_seen", {"RUT": MON.isoformat()})
    store.close()
    clock = FakeClock(after_close(TUE))
    serve_bars(yahoo_fake, [*OLD_BARS, (MON, 2100.0), (TUE, 2200.0)])
    serve_quote(yahoo_fake, 2200.0, clock.now())

    async def scenario() -> None:
        worker = build_worker(config, clock=clock)
        await worker.start()
        try:
            await worker.poll_once()
        finally:
            await worker.stop()

    asyncio.run(scenario())
    assert alerts(capsys.readouterr().out) == []
    state = SqliteStore(tmp_path / "state.sqlite").load_states()["rut-record"]["rule"]
    assert state["record"] == 2300.0 and state["date"] == "2021-11-08"


def clock_t() -> datetime:
    return after_close(MON)


def test_history_loads_run_concurrently_within_a_start_up_deadline(
    tmp_path: Path, yahoo_fake: YahooFake
) -> None:
    """Three symbols whose history source hangs: start-up waits for the deadline once (not
    once per symbol, one after another), and all three loads are in flight together."""
    rules = "\n".join(
        f"  - {{id: r-{t}, type: record_close, symbol: {t}}}" for t in ("RUT", "A", "B")
    )
    text = CONFIG.format(
        state=tmp_path / "s.sqlite", yahoo=yahoo_fake.base_url, rules=rules
    ).replace(
        "symbols:\n",
        "symbols:\n  A: {source: yahoo, ticker: A, calendar: XNYS}\n"
        "  B: {source: yahoo, ticker: B, calendar: XNYS}\n",
    )
    config = parse_config(text, "c.yaml", {})
    for ticker in ("^RUT", "A", "B"):
        yahoo_fake.chart(ticker, Reply(chart_response(bars=OLD_BARS), delay=2.0))
    clock = FakeClock(after_close(MON))

    async def scenario() -> list[str]:
        worker = build_worker(config, clock=clock)
        worker.startup_deadline = timedelta(milliseconds=300)
        await worker.start()
        try:
            unseeded = worker.unseeded_rules()
            assert sorted(worker.history_keeper.loading()) == ["A", "B", "RUT"]
            await worker.history_keeper.wait()
            await worker.poll_once()
            return unseeded
        finally:
            await worker.stop()

    assert asyncio.run(scenario()) == ["r-RUT", "r-A", "r-B"]
    assert yahoo_fake.max_in_flight >= 3  # the three history requests were served at once


# -- item: a failed transaction loses a close -------------------------------------------------


def test_a_close_taken_by_a_failed_transaction_is_taken_again(
    tmp_path: Path, yahoo_fake: YahooFake, capsys: pytest.CaptureFixture[str]
) -> None:
    """Monday's record close (2,350) arrives in a cycle whose transaction fails ("database is
    locked"); the next cycle must evaluate it, so the record alert still comes, once."""
    serve_bars(yahoo_fake, [*OLD_BARS, (MON, 2350.0)])
    clock = FakeClock(after_close(MON) - timedelta(minutes=10))
    serve_quote(yahoo_fake, 2350.0, clock.now())
    config = make_config(tmp_path, yahoo_fake)

    async def scenario() -> None:
        worker = build_worker(config, clock=clock)
        await worker.start()
        store = worker.store
        assert isinstance(store, SqliteStore)
        store._conn.execute("PRAGMA busy_timeout=50")  # fail fast instead of waiting 30 s
        other = sqlite3.connect(tmp_path / "state.sqlite", isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            with pytest.raises(StoreError, match="locked"):
                await cycle_at(worker, clock, after_close(MON) - timedelta(minutes=5))
            other.execute("ROLLBACK")
            await cycle_at(worker, clock, after_close(MON))
        finally:
            other.close()
            await worker.stop()

    asyncio.run(scenario())
    out = capsys.readouterr().out
    fired = alerts(out)
    assert len(fired) == 1 and "record high of 2,350" in fired[0], out


def test_a_final_close_is_downloaded_once_not_on_every_poll(
    tmp_path: Path, yahoo_fake: YahooFake
) -> None:
    """After Monday's close is taken, the remaining after-close polls fetch no daily bars."""
    serve_bars(yahoo_fake, [*OLD_BARS, (MON, 2100.0)])
    clock = FakeClock(after_close(MON) - timedelta(minutes=5))
    serve_quote(yahoo_fake, 2100.0, clock.now())
    config = make_config(tmp_path, yahoo_fake)

    async def scenario() -> int:
        worker = build_worker(config, clock=clock)
        await worker.start()
        try:
            at_start = len(daily_requests(yahoo_fake))  # the history load
            for minutes in (0, 5, 10, 15):
                await cycle_at(worker, clock, after_close(MON) - timedelta(minutes=5 - minutes))
            return len(daily_requests(yahoo_fake)) - at_start
        finally:
            await worker.stop()

    # 16:10 (close final: fetched), 16:15, 16:20 (taken: not fetched again); 16:25 is past
    # the after-close window (no poll at all).
    assert asyncio.run(scenario()) == 1


# -- item: state written outside the transaction ------------------------------------------------


def test_replicas_share_sanity_memory_through_the_store(
    tmp_path: Path, yahoo_fake: YahooFake
) -> None:
    """Replica A accepts 2,500; replica B (started before A's poll) then sees 2,000. B must
    judge it against the stored memory (a jump: rejected), not against its own empty copy."""
    rules = "  - {id: rut-2400, type: cross, symbol: RUT, level: 2400}"
    config = make_config(tmp_path, yahoo_fake, rules)
    clock = FakeClock(datetime(2024, 11, 25, 11, 0, tzinfo=NY))
    serve_bars(yahoo_fake, [])

    async def scenario() -> dict[str, str]:
        first = build_worker(config, clock=clock)
        second = build_worker(config, clock=clock)
        await first.start()
        await second.start()
        try:
            serve_quote(yahoo_fake, 2500.0, clock.now())
            report = await first.poll_once()
            assert not report.errors
            clock.advance(timedelta(minutes=5))
            serve_quote(yahoo_fake, 2000.0, clock.now())
            return (await second.poll_once()).errors
        finally:
            await first.stop()
            await second.stop()

    errors = asyncio.run(scenario())
    assert "RUT" in errors and "jump" in errors["RUT"]


# -- item: clock steps back ------------------------------------------------------------------


def test_a_wall_clock_step_back_does_not_stop_polling(
    tmp_path: Path, yahoo_fake: YahooFake
) -> None:
    """Polled at 11:00; five minutes pass and the wall clock is stepped back an hour: the
    symbol is due again (its interval passed), not in 55 minutes."""
    config = make_config(tmp_path, yahoo_fake, "  - {id: c, type: cross, symbol: RUT, level: 1}")
    clock = FakeClock(datetime(2024, 11, 25, 11, 0, tzinfo=NY))
    worker = build_worker(config, clock=clock)
    assert worker.due_symbols(clock.now()) == ["RUT"]
    worker.mark_polled("RUT")
    clock.advance(timedelta(minutes=4))
    assert worker.due_symbols(clock.now()) == []  # not yet: 4 of 5 minutes
    clock.advance(timedelta(minutes=1))
    clock.set(clock.now() - timedelta(hours=1))  # NTP steps the wall clock back
    assert clock.now().astimezone(NY).hour == 10  # still inside the session
    assert worker.due_symbols(clock.now()) == ["RUT"]


def test_unseeded_rule_is_logged_once(
    tmp_path: Path, yahoo_fake: YahooFake, caplog: pytest.LogCaptureFixture
) -> None:
    serve_bars(yahoo_fake, Reply("", status=503))
    clock = FakeClock(datetime(2024, 11, 25, 11, 0, tzinfo=NY))
    serve_quote(yahoo_fake, 2100.0, clock.now())
    config = make_config(tmp_path, yahoo_fake)

    with caplog.at_level(logging.INFO, logger="bot"):
        run_cycles(config, clock, 3, timedelta(minutes=5))
    lines = [r.getMessage() for r in caplog.records if "is unseeded" in r.getMessage()]
    assert len(lines) == 1, lines
