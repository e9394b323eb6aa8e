"""Driving a real Worker through a few cycles on a fake clock (shared by the worker tests)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.app import build_worker
from bot.clock import FakeClock
from bot.config import Config
from bot.worker import CycleReport


def run_cycles(config: Config, clock: FakeClock, cycles: int, step: timedelta) -> list[CycleReport]:
    """Start a worker, run ``cycles`` polls ``step`` apart on ``clock``, stop it; the reports."""

    async def scenario() -> list[CycleReport]:
        worker = build_worker(config, clock=clock)
        await worker.start()
        reports: list[CycleReport] = []
        try:
            for _ in range(cycles):
                reports.append(await worker.poll_once())
                clock.advance(step)
        finally:
            await worker.stop()
        return reports

    return asyncio.run(scenario())
