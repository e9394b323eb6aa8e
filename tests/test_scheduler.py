"""The long-running loop: APScheduler settings, sleeping through closed markets, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.job import Job

from bot.app import build_worker
from bot.clock import FakeClock
from bot.config import parse_config
from bot.scheduler import POLL_JOB, _sleep_until_next_session, build_scheduler, check_cadence
from tests.fakes.yahoo import YahooFake, chart_response

ROOT = Path(__file__).resolve().parents[1]
NY = ZoneInfo("America/New_York")

CONFIG = """\
state: {{url: "sqlite:///{state}"}}
sources:
  yahoo: {{type: yahoo, base_url: {yahoo}, attempts: 1}}
symbols:
  RUT: {{source: yahoo, ticker: "^RUT", calendar: {calendar}}}
poll: {{every: {every}}}
rules:
  - {{id: rut-2500, type: cross, symbol: RUT, level: 2500}}
"""


def config_text(
    tmp_path: Path, yahoo: YahooFake, calendar: str = "XNYS", every: str = "60s"
) -> str:
    return CONFIG.format(
        state=tmp_path / "state.sqlite", yahoo=yahoo.base_url, calendar=calendar, every=every
    )


def test_poll_job_coalesces_and_never_stacks(tmp_path: Path, yahoo_fake: YahooFake) -> None:
    config = parse_config(config_text(tmp_path, yahoo_fake), "c.yaml", {})
    worker = build_worker(config, clock=FakeClock(datetime(2024, 11, 25, 15, 0, tzinfo=UTC)))

    async def started_job() -> Job:
        scheduler = build_scheduler(worker)
        scheduler.start(paused=True)  # job defaults are applied when the scheduler starts
        try:
            return scheduler.get_job(POLL_JOB)
        finally:
            scheduler.shutdown(wait=False)

    job = asyncio.run(started_job())
    assert job.coalesce is True
    assert job.max_instances == 1
    assert job.misfire_grace_time == 30
    assert job.trigger.interval == timedelta(seconds=60)


def test_scheduler_sleeps_until_the_next_session(tmp_path: Path, yahoo_fake: YahooFake) -> None:
    """After a poll on Thanksgiving evening the next run is Friday's open, not in a minute."""
    config = parse_config(config_text(tmp_path, yahoo_fake), "c.yaml", {})
    clock = FakeClock(datetime(2024, 11, 28, 20, 0, tzinfo=NY))
    worker = build_worker(config, clock=clock)

    async def scenario() -> datetime:
        scheduler = build_scheduler(worker)
        scheduler.start(paused=True)
        try:
            _sleep_until_next_session(scheduler, worker)
            return scheduler.get_job(POLL_JOB).next_run_time
        finally:
            scheduler.shutdown(wait=False)

    assert asyncio.run(scenario()) == datetime(2024, 11, 29, 9, 30, tzinfo=NY)


@pytest.mark.timeout(90)
def test_sigterm_stops_cleanly_with_exit_code_0(tmp_path: Path, yahoo_fake: YahooFake) -> None:
    yahoo_fake.chart("^RUT", chart_response(price=2490.0, time=datetime.now(UTC)))
    path = tmp_path / "config.yaml"
    path.write_text(config_text(tmp_path, yahoo_fake, calendar="always", every="1s"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--config", str(path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stderr], daemon=True).start()
    seen: list[str] = []
    try:
        while not any("cycle: polled RUT" in line for line in seen):
            seen.append(lines.get(timeout=30))  # wait for the first completed cycle
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    while not lines.empty():
        seen.append(lines.get())
    log = "".join(seen)
    assert "received SIGTERM" in log
    assert "stopped" in log
    assert "Traceback" not in log


def test_the_poll_job_itself_sleeps_through_closed_markets(
    tmp_path: Path, yahoo_fake: YahooFake
) -> None:
    """Run the scheduled job (not the helper): after its poll on Thanksgiving evening, its next
    run is Friday's open."""
    config = parse_config(config_text(tmp_path, yahoo_fake), "c.yaml", {})
    clock = FakeClock(datetime(2024, 11, 28, 20, 0, tzinfo=NY))
    worker = build_worker(config, clock=clock)

    async def scenario() -> datetime:
        await worker.start()
        scheduler = build_scheduler(worker)
        scheduler.start(paused=True)
        try:
            job = scheduler.get_job(POLL_JOB)
            await job.func()
            return scheduler.get_job(POLL_JOB).next_run_time
        finally:
            scheduler.shutdown(wait=False)
            await worker.stop()

    assert asyncio.run(scenario()) == datetime(2024, 11, 29, 9, 30, tzinfo=NY)
    assert yahoo_fake.count() == 0  # nothing was open: nothing polled


def test_a_wall_clock_step_back_brings_the_overdue_poll_forward(
    tmp_path: Path, yahoo_fake: YahooFake
) -> None:
    """The job ran at 11:00 and is planned for 11:01 (wall clock). The wall clock steps back an
    hour while it waits: once a minute has passed on the monotonic clock the watchdog check
    moves the run to now, instead of APScheduler waiting until 11:01 comes round again."""
    yahoo_fake.chart("^RUT", chart_response(price=2490.0))
    config = parse_config(config_text(tmp_path, yahoo_fake), "c.yaml", {})
    clock = FakeClock(datetime(2024, 11, 25, 11, 0, tzinfo=NY))
    worker = build_worker(config, clock=clock)

    async def scenario() -> None:
        await worker.start()
        scheduler = build_scheduler(worker)
        scheduler.start(paused=True)
        try:
            job = scheduler.get_job(POLL_JOB)
            await job.func()
            job.modify(next_run_time=clock.now() + timedelta(minutes=1))  # as APScheduler plans
            clock.step(timedelta(hours=-1))
            assert not check_cadence(scheduler, worker)  # no time has passed yet
            clock.advance(timedelta(seconds=62))
            assert check_cadence(scheduler, worker)
            assert scheduler.get_job(POLL_JOB).next_run_time == clock.now()
        finally:
            scheduler.shutdown(wait=False)
            await worker.stop()

    asyncio.run(scenario())
