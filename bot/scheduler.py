"""The long-running loop: APScheduler's AsyncIOScheduler driving :class:`bot.worker.Worker`.

One asyncio loop is shared by the scheduler, python-telegram-bot and the sender. The poll job
coalesces missed runs, never runs twice at once (``max_instances=1``) and tolerates a late start
up to ``poll.misfire_grace``. After each poll the job's next run is pushed to the next moment
any market needs polling, so the bot sleeps through nights, weekends and holidays.
SIGTERM/SIGINT stop the loop cleanly: the current cycle finishes, in-flight deliveries finish
or stay queued, state is flushed, exit code 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.lifecycle import unless_stopped
from bot.logs import log_failure
from bot.worker import Worker

log = logging.getLogger(__name__)

POLL_JOB = "poll"  # history is refreshed by the cycle itself, once a day
# a source asking "poll now" again and again (a bug) must not spin the loop
_MIN_HINT_DELAY = timedelta(milliseconds=500)


def build_scheduler(worker: Worker) -> AsyncIOScheduler:
    """An AsyncIOScheduler with the poll job (not started)."""
    poll = worker.config.poll
    scheduler = AsyncIOScheduler(
        timezone=UTC,
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": max(1, int(poll.misfire_grace.total_seconds())),
        },
    )

    async def poll_job() -> None:
        try:
            report = await worker.poll_once()
            log.info("cycle: %s", report.summary())
        except Exception as exc:  # a full disk or a bug in one cycle must not kill the worker
            log_failure(log, "poll cycle failed", exc, "retrying next cycle")
        _sleep_until_next_session(scheduler, worker)

    scheduler.add_job(
        poll_job,
        IntervalTrigger(seconds=poll.every.total_seconds(), timezone=UTC),
        id=POLL_JOB,
        next_run_time=datetime.now(UTC),
    )
    return scheduler


def _sleep_until_next_session(scheduler: AsyncIOScheduler, worker: Worker) -> None:
    """Skip the interval runs that would find every market closed; run sooner when a source
    asked for it (``Source.next_poll``: fast FOMC polling)."""
    now = worker.clock.now()
    wake = worker.next_wake(now)
    hint = worker.next_hint(now)
    job = scheduler.get_job(POLL_JOB)
    if job is None:
        return
    if hint is not None and hint < now + worker.config.poll.every:
        # the worker's clock may be offset from the wall clock: schedule by the difference
        job.modify(next_run_time=datetime.now(UTC) + max(hint - now, _MIN_HINT_DELAY))
    elif wake - now > worker.config.poll.every + timedelta(seconds=1):
        if hint is not None:
            wake = min(wake, hint)
        job.modify(next_run_time=wake)
        log.info("all markets closed; next poll at %s", wake.isoformat())


async def run_forever(worker: Worker, stop: asyncio.Event | None = None) -> int:
    """Start the worker and scheduler; return 0 after SIGTERM/SIGINT (or ``stop`` being set)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        # add_signal_handler fails outside the main thread (tests drive ``stop`` instead)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, _on_signal, stop, signum)
    started, _ = await unless_stopped(stop, worker.start())  # SIGTERM must not wait for it
    if not started:
        log.info("stopped during start-up")
        return 0
    scheduler = build_scheduler(worker)
    scheduler.start()
    try:
        await stop.wait()
    finally:
        log.info("stopping: finishing the current cycle and in-flight deliveries")
        # Pause first, shut down only once the running cycle is over: AsyncIOScheduler's
        # shutdown cancels a running job, and a send cancelled after Telegram got it is
        # never recorded as sent (the restart would send that message again).
        scheduler.pause()
        await worker.idle()  # the running cycle finishes its transaction and its sends
        scheduler.shutdown(wait=False)
        await worker.stop()
    return 0


def _on_signal(stop: asyncio.Event, signum: int) -> None:
    log.info("received %s", signal.Signals(signum).name)
    stop.set()
