"""Driving a real Worker through a few cycles on a fake clock (shared by the worker tests)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from bot.app import build_worker
from bot.clock import FakeClock
from bot.config import Config
from bot.worker import CycleReport
from tests.fakes.yahoo import ScriptedServer

ROOT = Path(__file__).resolve().parents[1]


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


@dataclass
class ShippedWorker:
    """A ``python -m bot run`` of the shipped config on loopback fakes (:func:`shipped_worker`)."""

    proc: subprocess.Popen[str]
    #: the source fakes by the config's source name (yahoo, stooq, fred, fed)
    fakes: dict[str, ScriptedServer]
    #: ``time.monotonic()`` just before the process was spawned
    spawned: float


@contextmanager
def shipped_worker(
    scratch: Path,
    script: Callable[[dict[str, ScriptedServer]], None] | None = None,
    stderr: int | IO[Any] | None = subprocess.DEVNULL,
) -> Iterator[ShippedWorker]:
    """Run the shipped ``config.yaml`` as a deploy would, with every ``base_url`` (the sources'
    and Telegram's) pointed at fresh loopback fakes and its state in ``scratch``.

    ``script`` may script the source fakes before the process starts (unscripted paths answer
    404). On exit the process is stopped (SIGTERM, then SIGKILL after 15 s) and the fakes too.
    """
    from tests.fakes.fed import FedFake
    from tests.fakes.fred import FredFake
    from tests.fakes.stooq import StooqFake
    from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram
    from tests.fakes.yahoo import YahooFake

    fakes: dict[str, ScriptedServer] = {
        "yahoo": YahooFake().start(),
        "stooq": StooqFake().start(),
        "fred": FredFake().start(),
        "fed": FedFake().start(),
    }
    telegram = FakeTelegram().start()
    try:
        if script is not None:
            script(fakes)
        urls = {name: fake.base_url for name, fake in fakes.items()}
        urls["telegram"] = telegram.base_url
        config = scratch / "config.yaml"
        shipped = (ROOT / "config.yaml").read_text(encoding="utf-8")
        config.write_text(point_at_fakes(shipped, urls, scratch / "state.sqlite"), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DATABASE_"))}
        env.update(TELEGRAM_BOT_TOKEN=FAKE_TOKEN, TELEGRAM_CHAT_ID="7001")
        spawned = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(config)],
            cwd=scratch,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
        try:
            yield ShippedWorker(proc, fakes, spawned)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        for fake in fakes.values():
            fake.stop()
        telegram.stop()
