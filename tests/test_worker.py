"""The live driver: which symbols a cycle polls, and cycles never overlapping."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app import build_worker
from bot.clock import FakeClock
from bot.config import Config, parse_config
from bot.worker import Worker
from tests.fakes.yahoo import Reply, YahooFake, chart_response

NY = ZoneInfo("America/New_York")

CONFIG = """\
timezone: America/New_York
state: {{url: "sqlite:///{state}"}}
sources:
  yahoo: {{type: yahoo, base_url: {yahoo}, attempts: 1}}
symbols:
  RUT: {{source: yahoo, ticker: "^RUT", name: Russell 2000, calendar: XNYS}}
  RTY: {{source: yahoo, ticker: "RTY=F", name: E-mini Russell 2000 futures, calendar: CME}}
  BTC: {{source: yahoo, ticker: "BTC-USD", calendar: always, poll: 1h}}
poll: {{every: 5m, after_close: 20m}}
rules:
  - {{id: rut-2500, type: cross, symbol: RUT, level: 2500}}
"""


def make_config(tmp_path: Path, yahoo_url: str) -> Config:
    text = CONFIG.format(state=tmp_path / "state.sqlite", yahoo=yahoo_url)
    return parse_config(text, "config.yaml", {})


def make_worker(tmp_path: Path, yahoo: YahooFake, clock: FakeClock) -> Worker:
    return build_worker(make_config(tmp_path, yahoo.base_url), clock=clock)


def test_polls_happen_only_inside_sessions_over_a_simulated_week(
    tmp_path: Path, yahoo_fake: YahooFake
) -> None:
    """Step a fake clock through Thanksgiving week 2024 in 5-minute steps (no sleeping)."""
    clock = FakeClock(datetime(2024, 11, 24, 12, 0, tzinfo=NY))  # Sunday noon
    worker = make_worker(tmp_path, yahoo_fake, clock)
    polls: dict[str, Counter[date]] = {s: Counter() for s in ("RUT", "RTY", "BTC")}
    first_last: dict[tuple[str, date], list[datetime]] = {}
    end = datetime(2024, 12, 2, 0, 0, tzinfo=NY)
    while clock.now() < end:
        now = clock.now()
        for symbol in worker.due_symbols(now):
            worker.mark_polled(symbol)  # what a cycle records
            day = now.astimezone(NY).date()
            polls[symbol][day] += 1
            first_last.setdefault((symbol, day), []).append(now.astimezone(NY))
        clock.advance(timedelta(minutes=5))

    rut = polls["RUT"]
    # NYSE: Mon-Wed full days, closed Thursday (Thanksgiving), half day Friday, closed weekend.
    assert set(rut) == {date(2024, 11, d) for d in (25, 26, 27, 29)}
    # every 5 minutes from 09:30 to 16:00 and for 20 minutes after the close: 09:30 .. 16:15
    assert rut[date(2024, 11, 25)] == 82
    times = first_last[("RUT", date(2024, 11, 25))]
    assert (times[0].hour, times[0].minute) == (9, 30)
    assert (times[-1].hour, times[-1].minute) == (16, 15)
    friday = first_last[("RUT", date(2024, 11, 29))]
    assert (friday[-1].hour, friday[-1].minute) == (13, 15)  # early close at 13:00
    assert date(2024, 11, 28) not in rut

    rty = polls["RTY"]
    # CME equity futures: open Sunday 18:00 New York, trade Thanksgiving until the early halt.
    assert rty[date(2024, 11, 24)] > 0
    assert first_last[("RTY", date(2024, 11, 24))][0].hour == 18
    assert rty[date(2024, 11, 28)] > 0
    assert date(2024, 11, 30) not in rty  # Saturday
    # the daily 17:00-18:00 break: only the after-close window is polled, up to 17:15
    monday = [t for t in first_last[("RTY", date(2024, 11, 25))] if t.hour == 17]
    assert [t.minute for t in monday] == [0, 5, 10, 15]

    btc = polls["BTC"]
    # an `always` market with its own 1h interval: 24 polls a day, weekends included
    assert btc[date(2024, 11, 30)] == 24


def test_next_wake_sleeps_through_the_weekend(tmp_path: Path, yahoo_fake: YahooFake) -> None:
    text = CONFIG.replace(
        '  BTC: {{source: yahoo, ticker: "BTC-USD", calendar: always, poll: 1h}}\n', ""
    )
    config = parse_config(
        text.format(state=tmp_path / "s.sqlite", yahoo=yahoo_fake.base_url), "c.yaml", {}
    )
    clock = FakeClock(datetime(2024, 11, 30, 12, 0, tzinfo=NY))  # Saturday
    worker = build_worker(config, clock=clock)
    assert worker.due_symbols(clock.now()) == []
    assert worker.next_wake(clock.now()) == datetime(2024, 12, 1, 18, 0, tzinfo=NY)  # CME Sunday


@pytest.mark.timeout(60)
def test_cycles_never_overlap(tmp_path: Path, yahoo_fake: YahooFake) -> None:
    """Two cycles started together run one after the other: a slow poll never stacks."""
    yahoo_fake.chart("^RUT", Reply(chart_response(price=2490.0, time=datetime.now(UTC)), delay=0.3))
    clock = FakeClock(datetime(2024, 11, 25, 10, 0, tzinfo=NY))
    config = make_config(tmp_path, yahoo_fake.base_url)

    async def scenario() -> None:
        worker = build_worker(config, clock=clock)
        await worker.start()
        try:
            worker._last_polled.clear()
            first = asyncio.create_task(worker.poll_once())
            second = asyncio.create_task(worker.poll_once())
            reports = await asyncio.gather(first, second)
        finally:
            await worker.stop()
        assert reports[0].polled  # the first cycle polled...
        assert reports[1].polled == []  # ...the second ran after it and found nothing due yet

    asyncio.run(scenario())
    # overlapping cycles would both have asked for ^RUT before either recorded its poll
    quotes = [r for r in yahoo_fake.chart_requests("^RUT") if "range" in r.query]
    assert len(quotes) == 1


def test_rejected_observations_neither_fire_nor_rearm(
    tmp_path: Path, yahoo_fake: YahooFake, capsys: pytest.CaptureFixture[str]
) -> None:
    """Above 2,500, a one-poll spike to 2,000 (rejected as a jump) must not re-arm the rule,
    so the return to 2,510 sends nothing; a real, confirmed move down and up again does."""
    clock = FakeClock(datetime(2024, 11, 25, 15, 0, tzinfo=UTC))
    quotes = [2510.0, 2000.0, 2510.0, 2480.0, 2470.0, 2505.0]
    yahoo_fake.script(
        yahoo_fake.chart_path("^RUT"),
        [
            chart_response(price=p, time=clock.now() + timedelta(minutes=5 * i))
            for i, p in enumerate(quotes)
        ],
        query={"range": "1d"},
    )
    yahoo_fake.chart("^RUT", chart_response(price=1.0))  # daily bars: none
    text = CONFIG.replace("calendar: XNYS", "calendar: always")
    config = parse_config(
        text.format(state=tmp_path / "s.sqlite", yahoo=yahoo_fake.base_url), "c.yaml", {}
    )

    async def scenario() -> list[list[str]]:
        worker = build_worker(config, clock=clock)
        await worker.start()
        errors = []
        try:
            for _ in quotes:
                report = await worker.poll_once()
                errors.append(list(report.errors))
                clock.advance(timedelta(minutes=5))
        finally:
            await worker.stop()
        return errors

    errors = asyncio.run(scenario())
    assert "RUT" in errors[1]  # the spike was rejected
    out = capsys.readouterr().out
    # (RTY is not scripted: its feed-down notice to the admin is not what this is about)
    alerts = [line for line in out.splitlines() if line.startswith("ALERT [rut-")]
    assert len(alerts) == 1, alerts
    assert "crossed above 2,500" in alerts[0] and "2,505" in alerts[0]
