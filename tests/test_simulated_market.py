"""The demo's simulated market follows the real calendars, and futures move around their index
with a basis and noise of their own."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.clock import FakeClock
from bot.config import SymbolConfig
from bot.sources.simulated import SimulatedParams, SimulatedSource

START = datetime(2026, 1, 5, tzinfo=UTC)


def source(now: datetime) -> SimulatedSource:
    return SimulatedSource(
        "simulated", SimulatedParams(type="simulated", start=START), FakeClock(now)
    )


def spec(ticker: str, calendar: str) -> SymbolConfig:
    return SymbolConfig.model_validate(
        {"source": ["simulated"], "ticker": ticker, "calendar": calendar}
    )


def test_daily_closes_follow_the_real_calendars() -> None:
    now = datetime(2026, 1, 9, 23, 0, tzinfo=UTC)  # a Friday evening
    market = source(now)
    for ticker, calendar in (("^RUT", "XNYS"), ("RTY=F", "CME")):
        rows = market.fetch_daily(ticker, spec(ticker, calendar), date(2025, 12, 20), None)
        assert date(2026, 1, 1) not in rows.dates  # New Year's Day
        assert date(2025, 12, 25) not in rows.dates
        assert all(d.weekday() < 5 for d in rows.dates)  # no Saturday or Sunday close
        assert rows.dates[-1] == date(2026, 1, 9)
    # A session that has not closed yet has no row (no look-ahead): Friday 15:00 New York.
    early = source(datetime(2026, 1, 9, 20, 0, tzinfo=UTC))
    rows = early.fetch_daily("^RUT", spec("^RUT", "XNYS"), date(2026, 1, 5), None)
    assert rows.dates[-1] == date(2026, 1, 8)


def test_a_close_is_the_print_at_the_session_close() -> None:
    market = source(datetime(2026, 1, 9, 23, 0, tzinfo=UTC))
    rows = market.fetch_daily("^RUT", spec("^RUT", "XNYS"), date(2026, 1, 8), None)
    close_time = datetime(2026, 1, 8, 21, 0, tzinfo=UTC)  # 16:00 New York
    assert rows.values[0] == market._price_at("^RUT", close_time)


def test_futures_have_their_own_basis_and_noise() -> None:
    market = source(START + timedelta(days=12))
    ratios = []
    for hour in range(24 * 12):
        moment = START + timedelta(hours=hour)
        ratios.append(market._price_at("RTY=F", moment) / market._price_at("^RUT", moment))
    assert statistics.mean(ratios) == pytest.approx(1.003, abs=0.003)
    assert statistics.pstdev(ratios) > 0.0003  # not a copy of the index times a constant
    assert max(abs(r - 1.003) for r in ratios) < 0.01  # but never far from it
    # deterministic: the same seed gives the same market
    assert source(START)._price_at("RTY=F", START + timedelta(hours=5)) == market._price_at(
        "RTY=F", START + timedelta(hours=5)
    )


def test_demo_digests_are_dated_like_their_closes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No digest on the weekend; every close in a digest is of its date (or says it is not)."""
    import asyncio
    import re
    from pathlib import Path

    from bot.config import load_config
    from bot.demo import run_demo

    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = load_config(Path(__file__).resolve().parents[1] / "config.yaml", environ={})
    assert asyncio.run(run_demo(config, days=8, pause=0)) == 0
    out = capsys.readouterr().out
    digests = re.findall(r"Daily digest (\d{4}-\d\d-\d\d) .*?(?=\nALERT|\nDemo|\Z)", out, re.S)
    days = [date.fromisoformat(d) for d in digests]
    assert days == [date(2026, 1, d) for d in (5, 6, 7, 8, 9, 12)]
    for block in re.findall(r"Daily digest .*?(?=\nALERT|\nDemo|\Z)", out, re.S):
        day = block.split()[2]
        for on in re.findall(r" on (\d{4}-\d\d-\d\d)(.{0,20})", block):
            assert on[0] == day or on[1].startswith(" ("), block
