"""The long-running loop: APScheduler's AsyncIOScheduler driving :class:`bot.worker.Worker`.

One asyncio loop is shared by the scheduler, python-telegram-bot and the sender. The poll job
coalesces missed runs, never runs twice at once (``max_instances=1``) and tolerates a late start
up to ``poll.misfire_grace``. After each poll the job's next run is pushed to the next moment
any market needs polling, so the bot sleeps through nights, weekends and holidays.

APScheduler plans runs on the wall clock. When that clock steps back (NTP, a resumed VM) it
would see the planned run as an hour away and wait for it; so each run also notes, on the
monotonic clock (``Clock.monotonic``), when the next one is due, and a watchdog task brings
the job forward when that moment has passed without a run.
SIGTERM/SIGINT stop the loop cleanly: the current cycle finishes, in-flight deliveries finish
or stay queued, state is flushed, exit code 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import weakref
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot import health
from bot.lifecycle import freeze_long_lived, unless_stopped
from bot.logs import log_failure
from bot.worker import Worker

if TYPE_CHECKING:
    from bot.cockpit.app import Cockpit

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
        started = worker.clock.monotonic()
        try:
            await worker.poll_once()  # logs its own one-line summary
        except Exception as exc:  # a full disk or a bug in one cycle must not kill the worker
            log_failure(log, "poll cycle failed", exc, "retrying next cycle")
        _follow_reload(scheduler, worker)
        wait = _sleep_until_next_session(scheduler, worker)
        if wait is None:
            wait = worker.config.poll.every.total_seconds()
        _due_at[scheduler] = started + wait

    scheduler.add_job(
        poll_job,
        IntervalTrigger(seconds=poll.every.total_seconds(), timezone=UTC),
        id=POLL_JOB,
        next_run_time=datetime.now(UTC),
    )
    return scheduler


def _follow_reload(scheduler: AsyncIOScheduler, worker: Worker) -> None:
    """A reloaded config with another ``poll.every``: the job's interval follows it."""
    job = scheduler.get_job(POLL_JOB)
    every = worker.config.poll.every
    if job is not None and getattr(job.trigger, "interval", every) != every:
        job.reschedule(IntervalTrigger(seconds=every.total_seconds(), timezone=UTC))
        log.info("poll interval is now %s (config reloaded)", every)


#: scheduler → ``clock.monotonic()`` by which the poll job should have run again.
_due_at: weakref.WeakKeyDictionary[AsyncIOScheduler, float] = weakref.WeakKeyDictionary()


def _sleep_until_next_session(scheduler: AsyncIOScheduler, worker: Worker) -> float | None:
    """Skip the interval runs that would find every market closed, or run sooner when a source
    asked for it (``Source.next_poll``: fast FOMC polling); the seconds until the next run when
    it was moved."""
    now = worker.clock.now()
    wake = worker.next_wake(now)
    hint = worker.next_hint(now)
    job = scheduler.get_job(POLL_JOB)
    if job is None:
        return None
    if hint is not None and hint < now + worker.config.poll.every:
        wait = max(hint - now, _MIN_HINT_DELAY)
        # the worker's clock may be offset from the wall clock: schedule by the difference
        job.modify(next_run_time=datetime.now(UTC) + wait)
        return wait.total_seconds()
    if wake - now > worker.config.poll.every + timedelta(seconds=1):
        if hint is not None:
            wake = min(wake, hint)
        job.modify(next_run_time=wake)
        log.info("all markets closed; next poll at %s", wake.isoformat())
        return (wake - now).total_seconds()
    return None


def check_cadence(scheduler: AsyncIOScheduler, worker: Worker) -> bool:
    """Bring the poll job forward if its run is overdue on the monotonic clock (the wall clock
    stepped back while it waited). True when it did."""
    due = _due_at.get(scheduler)
    mono = worker.clock.monotonic()
    if due is None or mono < due + 1.0:
        return False
    job = scheduler.get_job(POLL_JOB)
    now = worker.clock.now()
    if job is None or job.next_run_time is None or job.next_run_time <= now:
        return False
    log.warning(
        "poll overdue by %.0f s on the monotonic clock (wall clock stepped back?); polling now",
        mono - due,
    )
    _due_at[scheduler] = mono + worker.config.poll.every.total_seconds()
    job.modify(next_run_time=now)
    return True


async def _watch_cadence(scheduler: AsyncIOScheduler, worker: Worker) -> None:
    """Every few seconds (asyncio's clock is monotonic), :func:`check_cadence`."""
    period = max(1.0, min(worker.config.poll.every.total_seconds() / 2, 30.0))
    while True:
        health.beat()  # the loop is alive (BOT_HEALTH_FILE, for container health checks)
        await asyncio.sleep(period)
        try:
            check_cadence(scheduler, worker)
        except Exception:  # the watchdog must never take the loop down
            log.exception("poll cadence check failed")


async def run_forever(worker: Worker, stop: asyncio.Event | None = None) -> int:
    """Start the worker and scheduler; return 0 after SIGTERM/SIGINT (or ``stop`` being set)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        # add_signal_handler fails outside the main thread (tests drive ``stop`` instead)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, _on_signal, stop, signum)
    reloads: set[asyncio.Task[None]] = set()

    def on_hup() -> None:  # SIGHUP: read config.yaml now (applied between cycles)
        log.info("received SIGHUP: reloading the config")
        task = asyncio.ensure_future(worker.reload_config())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
        loop.add_signal_handler(signal.SIGHUP, on_hup)
    started, _ = await unless_stopped(stop, worker.start())  # SIGTERM must not wait for it
    if not started:
        log.info("stopped during start-up")
        return 0
    freeze_long_lived()  # start-up's objects live as long as the process
    scheduler = build_scheduler(worker)
    scheduler.start()
    cockpit = build_cockpit(worker)
    # In the background: talking to Telegram for commands never delays the first poll.
    cockpit_start = asyncio.create_task(cockpit.start(), name="cockpit-start") if cockpit else None
    watchdog = asyncio.create_task(_watch_cadence(scheduler, worker), name="cadence")
    try:
        await stop.wait()
    finally:
        watchdog.cancel()
        log.info("stopping: finishing the current cycle and in-flight deliveries")
        # Pause first, shut down only once the running cycle is over: AsyncIOScheduler's
        # shutdown cancels a running job, and a send cancelled after Telegram got it is
        # never recorded as sent (the restart would send that message again).
        scheduler.pause()
        if cockpit is not None and cockpit_start is not None:
            await _started(cockpit_start)
            await cockpit.stop()  # no more commands; the lease goes to another replica now
        await worker.idle()  # the running cycle finishes its transaction and its sends
        scheduler.shutdown(wait=False)
        _due_at.pop(scheduler, None)
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
            loop.remove_signal_handler(signal.SIGHUP)
        await worker.stop()
    return 0


def build_cockpit(worker: Worker) -> Cockpit | None:
    """The Telegram cockpit (commands, buttons) when Telegram is on and ``commands`` is set."""
    telegram = worker.config.telegram
    if not (telegram.enabled and telegram.commands):
        return None
    from bot.cockpit.app import Cockpit
    from bot.notify.telegram import TelegramNotifier

    if not isinstance(worker.notifier, TelegramNotifier):
        return None
    cockpit = Cockpit(worker, worker.notifier.bot)
    worker.notifier.chart_for = cockpit.alert_chart
    return cockpit


async def _started(task: asyncio.Task[None]) -> None:
    """Wait for the cockpit's start to be over (one still running is cancelled)."""
    if not task.done():
        task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception as exc:  # a failed start is logged; the bot went on pushing alerts
        log_failure(log, "starting the Telegram cockpit failed", exc, "commands were off")


def _on_signal(stop: asyncio.Event, signum: int) -> None:
    log.info("received %s", signal.Signals(signum).name)
    stop.set()
