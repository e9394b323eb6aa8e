"""Self-monitoring (issue 11): feed down / recovered, history down, the heartbeat."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_worker
from bot.clock import FakeClock
from bot.config import parse_config
from bot.notify.sender import ADMIN_RULE_ID
from bot.worker import Worker
from tests.fakes.yahoo import Reply, ScriptedServer, YahooFake, chart_response
from tests.worker_support import run_cycles

T0 = datetime(2024, 11, 25, 15, 0, tzinfo=UTC)
TOKEN = "123456:AAE-fake-token-for-the-monitor-test"

CONFIG = """\
timezone: America/New_York
state: {{url: "sqlite:///{state}"}}
sources:
  yahoo: {{type: yahoo, base_url: {yahoo}, attempts: 1}}
symbols:
  RUT: {{source: yahoo, ticker: "^RUT", calendar: always}}
poll: {{every: 5m}}
monitor: {{feed_down_after: 3, history_down_after: 3}}
{extra}
rules:
{rules}
"""
CROSS = "  - {id: rut-2500, type: cross, symbol: RUT, level: 2500}"
RECORD = "  - {id: rut-record, type: record_close, symbol: RUT}"


def config_for(tmp_path: Path, yahoo: YahooFake, *, rules: str = CROSS, extra: str = "") -> Any:
    text = CONFIG.format(
        state=tmp_path / "s.sqlite", yahoo=yahoo.base_url, rules=rules, extra=extra
    )
    return parse_config(text, "config.yaml", {})


def notices(worker: Worker) -> list[tuple[str, str]]:
    """(kind, text) of the admin notices queued, in order."""
    return [
        (row.alert.id.split(":")[1], row.alert.text)
        for row in worker.store.outbox()
        if row.alert.rule_id == ADMIN_RULE_ID
    ]


def quote(i: int, price: float = 2490.0) -> dict[str, Any]:
    return chart_response(price=price, time=T0 + timedelta(minutes=5 * i))


def test_feed_down_and_recovered_over_a_simulated_outage(
    tmp_path: Path, yahoo_fake: YahooFake, caplog: pytest.LogCaptureFixture
) -> None:
    """Yahoo serves, fails 6 polls in a row, serves again: with ``feed_down_after: 3`` the
    admin hears "down" once (at the 3rd failure, with the last error) and "recovered" once."""
    replies: list[Any] = [quote(0), *([Reply("upstream boom", status=500)] * 6), quote(7), quote(8)]
    yahoo_fake.script(yahoo_fake.chart_path("^RUT"), replies, query={"range": "1d"})
    yahoo_fake.chart("^RUT", chart_response(price=1.0))  # daily bars: none
    clock = FakeClock(T0)
    config = config_for(tmp_path, yahoo_fake)
    after_cycle: list[int] = []

    async def scenario() -> list[tuple[str, str]]:
        worker = build_worker(config, clock=clock)
        await worker.start()
        try:
            for _ in replies:
                await worker.poll_once()
                after_cycle.append(len(notices(worker)))
                clock.advance(timedelta(minutes=5))
            return notices(worker)
        finally:
            await worker.stop()

    with caplog.at_level(logging.INFO):
        queued = asyncio.run(scenario())
    assert [kind for kind, _ in queued] == ["feed-down", "feed-recovered"]
    assert after_cycle == [0, 0, 0, 1, 1, 1, 1, 2, 2]  # down at the 3rd failure; nothing between
    down = queued[0][1]
    assert "RUT" in down and "3 polls in a row" in down and "500" in down
    assert "recovered" in queued[1][1]


def test_feed_errors_in_notices_carry_no_token(tmp_path: Path, yahoo_fake: YahooFake) -> None:
    """A token registered as a secret that somehow reaches an error is redacted in the notice."""
    from bot.errors import register_secret

    register_secret(TOKEN)
    yahoo_fake.script(
        yahoo_fake.chart_path("^RUT"), [Reply(f"bad {TOKEN}", status=500)], query={"range": "1d"}
    )
    clock = FakeClock(T0)

    async def scenario() -> list[tuple[str, str]]:
        worker = build_worker(config_for(tmp_path, yahoo_fake), clock=clock)
        await worker.start()
        worker.monitor.config = worker.config.monitor.model_copy(update={"feed_down_after": 1})
        try:
            await worker.poll_once()
            return notices(worker)
        finally:
            await worker.stop()

    queued = asyncio.run(scenario())
    assert len(queued) == 1 and TOKEN not in queued[0][1]


def test_history_down_and_loaded_again(tmp_path: Path, yahoo_fake: YahooFake) -> None:
    """A record rule's history fails to load 3 times in a row: one "history down" notice naming
    the waiting rule; when it loads, one notice that the rules evaluate again."""
    yahoo_fake.script(yahoo_fake.chart_path("^RUT"), [quote(0)], query={"range": "1d"})
    yahoo_fake.chart("^RUT", Reply("history boom", status=503))
    clock = FakeClock(T0)
    config = config_for(tmp_path, yahoo_fake, rules=RECORD)
    bars = [(date(2024, 11, d), 2400.0 + d) for d in (18, 19, 20, 21, 22)]

    async def scenario() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        worker = build_worker(config, clock=clock)
        await worker.start()
        try:
            for _ in range(4):
                await worker.poll_once()
                await worker.history_keeper.wait(10)  # the load started by the cycle
                clock.advance(timedelta(minutes=5))
            during = notices(worker)
            yahoo_fake.chart("^RUT", chart_response(price=2427.0, bars=bars))
            for _ in range(3):
                clock.advance(timedelta(minutes=30))  # past the back-off
                await worker.poll_once()
                await worker.history_keeper.wait(10)
            return during, notices(worker)
        finally:
            await worker.stop()

    during, after = asyncio.run(scenario())
    history = [(k, t) for k, t in during if k.startswith("history")]
    assert [k for k, _ in history] == ["history-down"]
    assert "rut-record" in history[0][1] and "503" in history[0][1]
    assert [k for k, _ in after if k.startswith("history")] == ["history-down", "history-recovered"]


@pytest.mark.timeout(30)
def test_heartbeat_pinged_after_healthy_cycles_only(
    tmp_path: Path, yahoo_fake: YahooFake, scripted_server: ScriptedServer
) -> None:
    scripted_server.script("/ping/abc", ["OK"])
    replies: list[Any] = [quote(0), Reply("boom", status=500), quote(2)]
    yahoo_fake.script(yahoo_fake.chart_path("^RUT"), replies, query={"range": "1d"})
    clock = FakeClock(T0)
    extra = f"heartbeat: {{url: {scripted_server.base_url}/ping/abc, timeout: 5s}}"
    config = config_for(tmp_path, yahoo_fake, extra=extra)

    async def scenario() -> list[int]:
        worker = build_worker(config, clock=clock)
        await worker.start()
        counts = []
        try:
            for _ in replies:
                await worker.poll_once()
                await worker.heartbeat.idle(5)
                counts.append(scripted_server.count("/ping/abc"))
                clock.advance(timedelta(minutes=5))
        finally:
            await worker.stop()
        return counts

    assert asyncio.run(scenario()) == [1, 1, 2]  # the blind cycle (every fetch failed) is silent


@pytest.mark.timeout(30)
def test_a_hanging_heartbeat_never_blocks_the_cycle(
    tmp_path: Path,
    yahoo_fake: YahooFake,
    scripted_server: ScriptedServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    scripted_server.script("/ping", [Reply("late", delay=20)])
    yahoo_fake.script(yahoo_fake.chart_path("^RUT"), [quote(0)], query={"range": "1d"})
    clock = FakeClock(T0)
    extra = f"heartbeat: {{url: {scripted_server.base_url}/ping, timeout: 0.3s}}"
    config = config_for(tmp_path, yahoo_fake, extra=extra)

    async def scenario() -> tuple[bool, int]:
        worker = build_worker(config, clock=clock)
        await worker.start()
        try:
            await worker.poll_once()
            in_flight = worker.heartbeat._task is not None and not worker.heartbeat._task.done()
            await worker.heartbeat.idle(5)  # given up after its 0.3 s total timeout
            return in_flight, worker.heartbeat.sent
        finally:
            scripted_server.release()
            await worker.stop()

    with caplog.at_level(logging.WARNING):
        in_flight, sent = asyncio.run(scenario())
    assert in_flight  # the cycle returned while the ping was still waiting for its answer
    assert sent == 0
    assert any("heartbeat to" in r.getMessage() for r in caplog.records)


def test_one_structured_log_line_per_cycle(
    tmp_path: Path, yahoo_fake: YahooFake, caplog: pytest.LogCaptureFixture
) -> None:
    yahoo_fake.script(yahoo_fake.chart_path("^RUT"), [quote(0)], query={"range": "1d"})
    yahoo_fake.chart("^RUT", chart_response(price=1.0))
    clock = FakeClock(T0)

    with caplog.at_level(logging.INFO, logger="bot.worker"):
        run_cycles(config_for(tmp_path, yahoo_fake), clock, 2, timedelta(minutes=5))
    cycles = [r for r in caplog.records if hasattr(r, "cycle")]
    assert len(cycles) == 2
    fields = cycles[0].cycle
    assert fields["polled"] == ["RUT"] and fields["rules_evaluated"] == 1 and fields["healthy"]
    assert set(fields["duration_ms"]) == {"fetch", "transact", "total"}
    assert "1 rules evaluated" in cycles[0].getMessage()


def test_the_worker_prunes_old_sent_rows_and_keeps_pending_ones(
    tmp_path: Path, yahoo_fake: YahooFake
) -> None:
    """``delivery.retention`` (here the default, 30 days): the first cycle's housekeeping
    deletes a sent row finished 40 days ago; an equally old pending row stays queued."""
    from tests.conftest_store import LEASE, make_alert

    yahoo_fake.script(yahoo_fake.chart_path("^RUT"), [quote(0)], query={"range": "1d"})
    yahoo_fake.chart("^RUT", chart_response(price=1.0))
    clock = FakeClock(T0)
    old = T0 - timedelta(days=40)

    async def scenario() -> set[str]:
        worker = build_worker(config_for(tmp_path, yahoo_fake), clock=clock)
        await worker.start()
        try:
            store = worker.store
            store.commit({}, [(make_alert("x:sent", old), ["console"])], old)
            store.commit({}, [(make_alert("x:pending", old), ["console"])], old)
            store.claim("w", old, LEASE, 10)
            store.mark_sent("x:sent", "console", old, [1])
            store.release("x:pending", "console", "w", T0 + timedelta(days=1))  # not due yet
            await worker.poll_once()
            return {row.alert.id for row in store.outbox()}
        finally:
            await worker.stop()

    assert asyncio.run(scenario()) == {"x:pending"}


def test_failures_while_the_market_is_closed_do_not_count(
    tmp_path: Path, yahoo_fake: YahooFake
) -> None:
    """Polls after the close (``poll.after_close``) that fail are not a feed outage."""
    yahoo_fake.script(
        yahoo_fake.chart_path("^RUT"), [Reply("boom", status=500)], query={"range": "1d"}
    )
    yahoo_fake.chart("^RUT", chart_response(price=1.0))
    clock = FakeClock(datetime(2024, 11, 25, 21, 2, tzinfo=UTC))  # 16:02 New York, closed
    text = CONFIG.format(
        state=tmp_path / "s.sqlite", yahoo=yahoo_fake.base_url, rules=CROSS, extra=""
    ).replace("calendar: always", "calendar: XNYS")
    config = parse_config(text.replace("feed_down_after: 3", "feed_down_after: 1"), "c.yaml", {})

    async def scenario() -> tuple[list[list[str]], list[tuple[str, str]]]:
        worker = build_worker(config, clock=clock)
        await worker.start()
        polled = []
        try:
            for _ in range(3):
                report = await worker.poll_once()
                polled.append(list(report.fetch_failed))
                clock.advance(timedelta(minutes=5))
            return polled, notices(worker)
        finally:
            await worker.stop()

    polled, queued = asyncio.run(scenario())
    assert polled == [["RUT"]] * 3  # polled after the close, and failing
    assert queued == []


def test_two_replicas_report_an_outage_once(tmp_path: Path, yahoo_fake: YahooFake) -> None:
    """Replicas on one store count failures together (the counters are stored with the
    cycle's transaction): one "down" and one "recovered" however the polls interleave; a
    restart in the middle of the outage does not report it again either."""
    replies: list[Any] = [quote(0), *([Reply("boom", status=500)] * 6), quote(7), quote(8)]
    yahoo_fake.script(yahoo_fake.chart_path("^RUT"), replies, query={"range": "1d"})
    yahoo_fake.chart("^RUT", chart_response(price=1.0))
    clock = FakeClock(T0)
    # 4: reached only by the replicas' failures together (a alone sees 3, b at most 2)
    text = CONFIG.format(
        state=tmp_path / "s.sqlite", yahoo=yahoo_fake.base_url, rules=CROSS, extra=""
    )
    config = parse_config(text.replace("feed_down_after: 3", "feed_down_after: 4"), "c.yaml", {})

    async def scenario() -> list[str]:
        a = build_worker(config, clock=clock, worker_id="a")
        b = build_worker(config, clock=clock, worker_id="b")
        await a.start()
        await b.start()
        try:
            for i in range(len(replies)):
                if i == 5:  # b restarts mid-outage: its in-memory counters are gone
                    await b.stop()
                    b = build_worker(config, clock=clock, worker_id="b2")
                    await b.start()
                worker = a if i % 2 == 0 else b
                worker._last_polled.clear()
                await worker.poll_once()
                clock.advance(timedelta(minutes=5))
            return [kind for kind, _ in notices(a)]
        finally:
            await a.stop()
            await b.stop()

    assert asyncio.run(scenario()) == ["feed-down", "feed-recovered"]


def test_monitor_and_heartbeat_keys_are_validated() -> None:
    from bot.config import ConfigError

    config = parse_config("timezone: UTC\n", "c.yaml", {})
    assert (config.monitor.feed_down_after, config.heartbeat.url) == (5, None)
    assert config.delivery.retention == timedelta(days=30)
    for bad in ("heartbeat: {url: ftp://x/}", "monitor: {feed_down_after: 0}"):
        with pytest.raises(ConfigError):
            parse_config(bad + "\n", "c.yaml", {})
