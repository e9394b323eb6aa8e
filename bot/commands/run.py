"""``python -m bot run``: the worker, one cycle of it (``--once``) or the demo (``--demo``)."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from bot.commands.common import add_config_arg
from bot.config import Config, read_config

if TYPE_CHECKING:
    from bot.calendar_child import ChildSessions
    from bot.worker import Worker

log = logging.getLogger("bot")


def add_parser(subparsers: Any) -> None:
    """Register ``run`` on the CLI's subparsers (handler: :func:`run`)."""
    parser = subparsers.add_parser("run", help="run the worker (poll, evaluate, notify)")
    add_config_arg(parser)
    parser.add_argument("--once", action="store_true", help="run one cycle and exit")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run the rules against a simulated market on a fast clock (no token, no network)",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="DEBUG, INFO, WARNING, ERROR (default INFO; WARNING for --demo, whose alerts print)",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="text (default) or json: one JSON object per line, for log collectors",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """``run``: the worker, one cycle of it, or the demo.

    Each runs under :func:`bot.lifecycle.run` with SIGTERM/SIGINT and a closed stdout handled
    from the loop's first step, so even start-up (store migration, history) can be stopped.
    """
    from bot import lifecycle
    from bot.logs import setup_logging

    setup_logging(
        args.log_level or ("WARNING" if args.demo else "INFO"),
        fmt=getattr(args, "log_format", "text"),
    )
    lifecycle.guard_stdout()  # `run --demo | head`: one quiet stop, not a traceback per alert
    calendars = None if args.demo else _calendars_in_a_child()
    config = read_config(args.config)
    for warning in config.warnings:
        log.warning("config: %s", warning)
    if args.demo:
        return lifecycle.run(_run_demo(config))
    assert calendars is not None
    calendars.keep_only(spec.calendar for spec in config.symbols.values())
    from bot.app import build_worker

    worker = build_worker(config)
    if args.once:
        return lifecycle.run(_run_once(worker))
    return lifecycle.run(_run_forever(worker))


def _calendars_in_a_child() -> ChildSessions:
    """Exchange sessions from a child process, started before even the config is read: it
    runs while the worker is configured, built and started, and pandas (~55 MB) never enters
    the worker (bot.calendar_child)."""
    from datetime import UTC, datetime

    from bot.calendar_child import use_child_process

    return use_child_process(None, datetime.now(UTC))


async def _run_demo(config: Config) -> int:
    from bot.demo import run_demo
    from bot.lifecycle import StopRequest

    stop = StopRequest()
    stop.install()
    try:
        return await run_demo(config, stop=stop)
    finally:
        stop.uninstall()


async def _run_forever(worker: Worker) -> int:
    from bot.lifecycle import StopRequest
    from bot.scheduler import run_forever

    stop = StopRequest()
    stop.install()  # before any start-up work: SIGTERM while loading history stops at once
    log.info("starting worker %s (SIGTERM or Ctrl-C stops it)", worker.worker_id)
    try:
        return await run_forever(worker, stop.event)
    finally:
        stop.uninstall()


async def _run_once(worker: Worker) -> int:
    from bot.lifecycle import StopRequest, unless_stopped
    from bot.logs import log_failure

    stop = StopRequest()
    stop.install()
    try:
        started, _ = await unless_stopped(stop, worker.start())
        if not started:
            log.info("stopped during start-up")
            return 0
        try:
            report = await worker.poll_once()
        except Exception as exc:  # one clear line (the traceback at DEBUG), exit 1
            log_failure(log, "the cycle failed", exc, "the next run retries it")
            return 1
        finally:
            await worker.stop()
    finally:
        stop.uninstall()
    if not report.healthy:  # a health check: every fetch failed, the bot is blind
        log.error("every fetch failed (%s); exit 1", ", ".join(report.fetch_failed))
        return 1
    return 0
