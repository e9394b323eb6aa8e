"""``run --demo``: the configured rules against a simulated market on a fast clock.

Every symbol keeps its id, name and rules but is served by the ``simulated`` source; calendars
become ``always``; the clock is a :class:`~bot.clock.FakeClock` that advances one simulated hour
per cycle; state lives in a throw-away SQLite file; alerts go to the console. Nothing touches the
network or the real state store, and no token is needed.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.clock import FakeClock
from bot.config import Config, SymbolConfig, TelegramConfig
from bot.sources.simulated import SimulatedParams

log = logging.getLogger(__name__)

DEMO_START = datetime(2026, 1, 5, tzinfo=UTC)


def demo_config(config: Config, state_dir: Path) -> Config:
    """``config`` rewired to the simulated market, console output and a scratch store."""
    symbols = {
        symbol_id: SymbolConfig.model_validate(
            {
                **spec.model_dump(exclude={"source", "calendar", "poll", "tickers"}),
                "source": ["simulated"],
                "calendar": "always",
            }
        )
        for symbol_id, spec in config.symbols.items()
    }
    return replace(
        config,
        telegram=TelegramConfig(),
        state=config.state.model_copy(update={"url": f"sqlite:///{state_dir / 'demo.sqlite'}"}),
        sources={"simulated": SimulatedParams(type="simulated", start=DEMO_START)},
        symbols=symbols,
        poll=config.poll.model_copy(
            update={"every": timedelta(hours=1), "settle": timedelta(minutes=0)}
        ),
    )


async def run_demo(config: Config, days: int = 12, pause: float = 0.02) -> int:
    """Simulate ``days`` days hour by hour, printing alerts as they fire. Returns 0."""
    from bot.app import build_worker

    print(
        f"Demo: {len(config.rules)} rules from {config.path} against a simulated market, "
        f"{days} simulated days at one hour per step. Alerts print below.",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bot-demo-") as scratch:
        clock = FakeClock(DEMO_START)
        worker = build_worker(demo_config(config, Path(scratch)), clock=clock)
        await worker.start()
        alerts = 0
        try:
            for _ in range(days * 24):
                report = await worker.poll_once()
                alerts += len(report.new_alert_ids)
                clock.advance(timedelta(hours=1))
                await asyncio.sleep(pause)
        finally:
            await worker.stop()
    print(f"Demo finished: {alerts} alerts in {days} simulated days.", flush=True)
    return 0
