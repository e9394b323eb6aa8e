"""``run --demo``: the configured rules against a simulated market on a fast clock.

Every symbol keeps its id, name, calendar and rules but is served by the ``simulated``
source (sessions, holidays and closes as in the real market); the clock is a
:class:`~bot.clock.FakeClock` that advances one simulated hour per cycle; state lives in a
throw-away SQLite file; alerts go to the console. Nothing touches the network or the real state
store, and no token is needed.

SIGTERM/SIGINT, or the reader of stdout going away (``run --demo | head -3``), end the demo
after the current step: the worker stops, the scratch state is removed and the exit code is 0.
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
from bot.lifecycle import StopRequest, is_closed_pipe
from bot.model import Alert
from bot.notify.base import DeliveryFailed
from bot.notify.console import ConsoleNotifier
from bot.sources.simulated import SimulatedParams

log = logging.getLogger(__name__)

DEMO_START = datetime(2026, 1, 5, tzinfo=UTC)


def demo_config(config: Config, state_dir: Path) -> Config:
    """``config`` rewired to the simulated market, console output and a scratch store."""
    symbols = {
        symbol_id: SymbolConfig.model_validate(
            {
                # the symbol's own calendar: no closes on a holiday or a Sunday
                **spec.model_dump(exclude={"source", "poll", "tickers"}),
                "source": ["simulated"],
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


class DemoConsole(ConsoleNotifier):
    """The console notifier, except that once stdout has no reader the demo's alerts are
    dropped quietly: they live in a scratch store that is about to be deleted, so there is
    nothing to keep queued and nobody to warn. (A signal does not drop them: the alerts of the
    last step still print.)"""

    async def send(self, chat_id: int | str, alert: Alert) -> list[int]:
        try:
            return await super().send(chat_id, alert)
        except DeliveryFailed as exc:
            if exc.__cause__ is not None and is_closed_pipe(exc.__cause__):
                return []  # the write has asked the process to stop (bot.lifecycle)
            raise


async def run_demo(
    config: Config, days: int = 12, pause: float = 0.02, stop: StopRequest | None = None
) -> int:
    """Simulate ``days`` days hour by hour, printing alerts as they fire. Returns 0, also when
    ``stop`` ends it early (then after the current step, with the scratch state removed)."""
    from bot.app import build_worker

    stop = stop or StopRequest()
    _say(
        f"Demo: {len(config.rules)} rules from {config.path} against a simulated market, "
        f"{days} simulated days at one hour per step. Alerts print below."
    )
    steps = alerts = 0
    with tempfile.TemporaryDirectory(prefix="bot-demo-") as scratch:
        clock = FakeClock(DEMO_START)
        worker = build_worker(
            demo_config(config, Path(scratch)), clock=clock, notifier=DemoConsole()
        )
        # A replay on a fast clock: a slow machine must not start it with rules unseeded (the
        # live bot's 10 s start-up bound is about the wall clock, which the demo does not follow).
        worker.startup_deadline = None
        await worker.start()
        try:
            while steps < days * 24 and not stop.is_set():
                report = await worker.poll_once()
                alerts += len(report.new_alert_ids)
                steps += 1
                clock.advance(timedelta(hours=1))
                await asyncio.sleep(pause)
        finally:
            await worker.stop()
    if stop.is_set():
        log.info("demo stopped (%s); scratch state removed", stop.reason)
        _say(f"Demo stopped after {steps / 24:.1f} simulated days: {alerts} alerts.")
    else:
        _say(f"Demo finished: {alerts} alerts in {days} simulated days.")
    return 0


def _say(text: str) -> None:
    """Print a line of the demo's own; nothing if stdout has no reader any more."""
    try:
        print(text, flush=True)
    except OSError as exc:
        if not is_closed_pipe(exc):
            raise
