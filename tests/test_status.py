"""``python -m bot status`` (issue 11): the operator's view, read from the store."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import build_worker
from bot.cli import main
from bot.clock import FakeClock
from bot.config import load_config
from bot.model import DailySeries
from tests.conftest_store import LEASE, make_alert
from tests.fakes.yahoo import Reply, YahooFake, chart_response

T0 = datetime(2024, 11, 25, 15, 0, tzinfo=UTC)

CONFIG = """\
timezone: America/New_York
state: {{url: "sqlite:///{state}"}}
sources:
  yahoo: {{type: yahoo, base_url: {yahoo}, attempts: 1}}
symbols:
  RUT: {{source: yahoo, ticker: "^RUT", calendar: always}}
  RTY: {{source: yahoo, ticker: "RTY=F", calendar: always}}
rules:
  - {{id: rut-2500, type: cross, symbol: RUT, level: 2500}}
  - {{id: rty-2500, type: cross, symbol: RTY, level: 2500, enabled: false}}
"""


def test_status_shows_rules_outbox_polls_and_history(
    tmp_path: Path, yahoo_fake: YahooFake, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "s.sqlite", yahoo=yahoo_fake.base_url))
    quote = chart_response(price=2490.0, time=T0)
    yahoo_fake.script(yahoo_fake.chart_path("^RUT"), [quote], query={"range": "1d"})
    yahoo_fake.chart("^RUT", chart_response(price=1.0))
    yahoo_fake.chart("RTY=F", Reply("gateway down", status=502))
    clock = FakeClock(T0)

    async def scenario() -> None:
        worker = build_worker(load_config(path), clock=clock)
        await worker.start()
        try:
            await worker.poll_once()
        finally:
            await worker.stop()

    asyncio.run(scenario())
    store = build_worker(load_config(path), clock=clock).store
    store.commit({}, [(make_alert("old-rule:1"), ["traders"])], T0)
    store.commit({}, [(make_alert("old-rule:2"), ["traders"])], T0)
    store.claim("w", T0, LEASE, 10)
    store.mark_failed("old-rule:1", "traders", T0, "Forbidden: bot was blocked by the user")
    store.retry_later("old-rule:2", "traders", T0 + timedelta(minutes=1), "TimedOut")
    store.save_history("RUT", DailySeries([date(2024, 11, 21), date(2024, 11, 22)], [1.0, 2.0]))
    store.close()

    assert main(["status", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "rut-2500: cross, last alert -, state" in out
    assert "rty-2500: cross [disabled], no state yet" in out
    assert "outbox: 1 pending, 0 sent, 1 failed" in out
    assert "failed old-rule:1 -> traders: 1 attempts, error: Forbidden: bot was blocked" in out
    assert "pending old-rule:2 -> traders: 1 attempts, next try 2024-11-25 15:01:00Z" in out
    assert "RUT: 2024-11-25 15:00:00Z ok, 2490" in out
    assert "RTY: 2024-11-25 15:00:00Z FAILED:" in out and "502" in out
    assert "RUT: 2 rows, 2024-11-21 .. 2024-11-22" in out


def test_status_before_the_first_run_says_so_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "s.sqlite", yahoo="http://127.0.0.1:9"))
    assert main(["status", "--config", str(path)]) == 1
    assert "has not run" in capsys.readouterr().out
    assert not (tmp_path / "s.sqlite").exists()
