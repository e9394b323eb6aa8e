"""Driving a real Worker through a few cycles on a fake clock (shared by the worker tests)."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path

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


def point_at_fakes(text: str, urls: dict[str, str], state: Path) -> str:
    """The shipped config with each source's / Telegram's ``base_url`` replaced."""
    for name, url in urls.items():
        if name == "telegram":
            continue
        pattern = rf"^(\s*{name}:\s*\{{type: \w+,\s*base_url: )\S+?(\}})"
        text, count = re.subn(pattern, rf"\g<1>{url}\g<2>", text, flags=re.MULTILINE)
        assert count == 1, name
    telegram = rf"\g<1>{urls['telegram']}"
    text, count = re.subn(r"^(\s*base_url: )https://api\.telegram\.org", telegram, text, flags=re.M)
    assert count == 1
    text, count = re.subn(
        r"^(\s*url: ).*$", rf'\g<1>"sqlite:///{state}"', text, count=1, flags=re.M
    )
    assert count == 1
    return text
