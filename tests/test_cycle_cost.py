"""What a live cycle costs, in counts (never in time): transactions, rows written, requests.

A quiet cycle (fresh quotes, nothing crosses, nothing pending) must write in ONE transaction
only what changed: no rule state (their own state did not change) and the O(symbols) values
(sanity memory, newest-seen map) — not one row per rule. Runs the real worker against the fake
Yahoo on 127.0.0.1, on SQLite and (with TEST_DATABASE_URL) PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import build_worker
from bot.clock import FakeClock
from bot.config import parse_config
from bot.store.sql import SqlStore, to_db_time
from bot.worker import Worker
from tests.conftest_store import pg_schema, pg_url_or_skip
from tests.fakes.yahoo import YahooFake, chart_response

SYMBOLS = ("AAA", "BBB", "CCC")
RULES_PER_SYMBOL = 10
START = datetime(2026, 1, 5, 15, tzinfo=UTC)

CONFIG = """\
state: {{url: "{state}"}}
sources:
  yahoo: {{type: yahoo, base_url: {yahoo}, attempts: 1}}
symbols:
{symbols}
poll: {{every: 60s}}
sanity: {{max_jump: 50%}}
rules:
{rules}
"""


@contextmanager
def state_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.sqlite'}"
        return
    url = pg_url_or_skip()
    with pg_schema(url) as schema:
        yield f"{url}?schema={schema}"


def make_worker(url: str, yahoo: YahooFake, clock: FakeClock) -> Worker:
    rules = [
        f"  - {{id: {s}-{i}, type: cross, symbol: {s}, level: {102 + i}, direction: both}}"
        for s in SYMBOLS
        for i in range(RULES_PER_SYMBOL)
    ]
    text = CONFIG.format(
        state=url,
        yahoo=yahoo.base_url,
        symbols="\n".join(f"  {s}: {{source: yahoo, calendar: always}}" for s in SYMBOLS),
        rules="\n".join(rules),
    )
    return build_worker(parse_config(text, "config.yaml", {}), clock=clock)


def quote(yahoo: YahooFake, clock: FakeClock, prices: dict[str, float]) -> None:
    for symbol, price in prices.items():
        yahoo.chart(symbol, chart_response(price=price, time=clock.now(), symbol=symbol))


def rule_rows_written_at(store: SqlStore, moment: datetime) -> int:
    """Rule-state rows the database holds as written by the cycle at ``moment``."""
    with store._tx("count", write=False) as tx:
        row = tx.execute(
            "SELECT COUNT(*) FROM rule_state WHERE updated_at = ?", (to_db_time(moment),)
        ).fetchone()
    return int(row[0])


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_quiet_cycle_is_one_transaction_writing_only_what_changed(
    backend: str, tmp_path: Path
) -> None:
    yahoo = YahooFake().start()
    clock = FakeClock(START)
    try:
        with state_url(backend, tmp_path) as url:
            asyncio.run(_quiet_cycles(url, yahoo, clock))
    finally:
        yahoo.stop()


async def _quiet_cycles(url: str, yahoo: YahooFake, clock: FakeClock) -> None:
    worker = make_worker(url, yahoo, clock)
    store = worker.store
    assert isinstance(store, SqlStore)
    await worker.start()
    try:
        quote(yahoo, clock, dict.fromkeys(SYMBOLS, 100.0))
        first = await worker.poll_once()  # arms every rule: all 30 states are new
        assert first.errors == {} and rule_rows_written_at(store, clock.now()) == 30
        for cycle in range(2):
            clock.advance(timedelta(minutes=1))
            quote(yahoo, clock, dict.fromkeys(SYMBOLS, 100.5 + cycle * 0.5))  # below every level
            requests = len(yahoo.requests())
            before = dict(store.io)
            report = await worker.poll_once()
            after = dict(store.io)
            assert report.errors == {} and report.alerts == []
            assert len(yahoo.requests()) - requests == len(SYMBOLS)  # one quote per symbol
            assert after["write_tx"] - before["write_tx"] == 1
            # the sanity memory, the newest-seen map and the last poll per symbol (`status`):
            # one row each, whatever the rules
            assert after["rows"] - before["rows"] == 3
            assert rule_rows_written_at(store, clock.now()) == 0
        # a crossing on one symbol rewrites exactly the rules whose armed flags moved
        clock.advance(timedelta(minutes=1))
        quote(yahoo, clock, {"AAA": 105.5, "BBB": 101.0, "CCC": 101.0})
        report = await worker.poll_once()
        assert len(report.new_alert_ids) == 4  # AAA crossed 102..105 up
        assert rule_rows_written_at(store, clock.now()) == 4
    finally:
        await worker.stop()


def test_final_closes_of_the_due_symbols_are_fetched_concurrently(tmp_path: Path) -> None:
    """At a market's close every symbol's daily bar is asked for at once: each answer is held
    at the fake until all three requests are in flight (one after another never gets there)."""
    from zoneinfo import ZoneInfo

    from tests.fakes.yahoo import Reply

    ny = ZoneInfo("America/New_York")
    tuesday_close = datetime(2024, 11, 26, 16, 0, tzinfo=ny)
    clock = FakeClock(tuesday_close + timedelta(minutes=15))  # final (settle 10 min)
    rules = "\n".join(
        f"  - {{id: {s}-close, type: cross, symbol: {s}, level: 150, on: close}}" for s in SYMBOLS
    )
    with YahooFake() as yahoo:
        text = CONFIG.format(
            state=f"sqlite:///{tmp_path / 'state.sqlite'}",
            yahoo=yahoo.base_url,
            symbols="\n".join(f"  {s}: {{source: yahoo, calendar: XNYS}}" for s in SYMBOLS),
            rules=rules,
        ).replace("poll: {every: 60s}", "poll: {every: 60s, after_close: 20m}")
        worker = build_worker(parse_config(text, "config.yaml", {}), clock=clock)
        bars = [(date(2024, 11, 25), 100.0), (date(2024, 11, 26), 101.0)]
        for s in SYMBOLS:
            yahoo.script(
                yahoo.chart_path(s),
                [chart_response(price=101.0, time=tuesday_close, symbol=s)],
                query={"range": "1d"},
            )
            yahoo.chart(s, Reply(chart_response(price=1.0, bars=bars, symbol=s), delay=30))

        async def cycle() -> tuple[int, list[str]]:
            await worker.start()
            try:
                task = asyncio.create_task(worker.poll_once())
                for _ in range(1000):  # until all are in flight, or the cycle ends
                    if yahoo.in_flight >= len(SYMBOLS) or task.done():
                        break
                    await asyncio.sleep(0.01)
                at_once = yahoo.in_flight
                yahoo.release()
                report = await task
                return at_once, [o.symbol for o in report.observations if o.kind == "close"]
            finally:
                await worker.stop()

        at_once, closes = asyncio.run(cycle())
    assert at_once == len(SYMBOLS)
    assert sorted(closes) == sorted(SYMBOLS)
