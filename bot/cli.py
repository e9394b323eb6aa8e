"""Command line: ``python -m bot run | check | backtest``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import (
    Config,
    ConfigError,
    format_duration,
    load_config,
    parse_config,
    redact_url,
)
from bot.errors import BotError, redact

if TYPE_CHECKING:
    from bot.worker import Worker

log = logging.getLogger("bot")

DEFAULT_CONFIG = "config.yaml"
EMBEDDED_CONFIG = "<embedded default config>"
DISTRIBUTION = "index-alert-bot"
CONSOLE_SCRIPT = "index-alert-bot"  # [project.scripts] in pyproject.toml


def config_path(arg: str | None) -> str:
    """``--config``, else ``$BOT_CONFIG``, else ``./config.yaml``."""
    return arg or os.environ.get("BOT_CONFIG") or DEFAULT_CONFIG


def read_config(arg: str | None) -> Config:
    """Load the config; fall back to the embedded default when no path was asked for and
    ``./config.yaml`` does not exist (so a fresh install runs with no files at all)."""
    path = config_path(arg)
    if arg is None and "BOT_CONFIG" not in os.environ and not Path(path).exists():
        text = resources.files("bot").joinpath("default_config.yaml").read_text("utf-8")
        log.info("no %s here: using the embedded default config", DEFAULT_CONFIG)
        return parse_config(text, EMBEDDED_CONFIG, os.environ)
    return load_config(path)


def version() -> str:
    """The installed package's version (``pyproject.toml``), else ``bot.__version__``."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        from bot import __version__

        return __version__


def _prog() -> str:
    """How the user called us, for usage lines: the console script, else ``python -m bot``."""
    return CONSOLE_SCRIPT if Path(sys.argv[0]).name == CONSOLE_SCRIPT else "python -m bot"


def _add_config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help=f"config file (default: $BOT_CONFIG or ./{DEFAULT_CONFIG})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    from bot import backtest
    from bot.commands import healthcheck, parse_fomc, report, schema, send_test

    parser = argparse.ArgumentParser(
        prog=_prog(),
        description=(
            "Index Alert Bot: Telegram alerts for market levels. "
            f"Run as `python -m bot` or as the installed `{CONSOLE_SCRIPT}` command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the worker (poll, evaluate, notify)")
    _add_config_arg(run)
    run.add_argument("--once", action="store_true", help="run one cycle and exit")
    run.add_argument(
        "--demo",
        action="store_true",
        help="run the rules against a simulated market on a fast clock (no token, no network)",
    )
    run.add_argument(
        "--log-level",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="DEBUG, INFO, WARNING, ERROR (default INFO; WARNING for --demo, whose alerts print)",
    )
    run.set_defaults(handler=cmd_run)

    check = sub.add_parser("check", help="validate the config and print a summary")
    _add_config_arg(check)
    check.add_argument(
        "--online",
        action="store_true",
        help="also verify the token, each chat and each symbol's sources over the network",
    )
    check.set_defaults(handler=cmd_check)

    report.add_parser(sub)
    backtest.add_parser(sub)
    parse_fomc.add_parser(sub)
    schema.add_parser(sub)
    send_test.add_parser(sub)
    healthcheck.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except BotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def cmd_run(args: argparse.Namespace) -> int:
    """``run``: the worker, one cycle of it, or the demo.

    Each runs under :func:`bot.lifecycle.run` with SIGTERM/SIGINT and a closed stdout handled
    from the loop's first step, so even start-up (store migration, history) can be stopped.
    """
    from bot import lifecycle
    from bot.logs import setup_logging

    setup_logging(args.log_level or ("WARNING" if args.demo else "INFO"))
    lifecycle.guard_stdout()  # `run --demo | head`: one quiet stop, not a traceback per alert
    config = read_config(args.config)
    for warning in config.warnings:
        log.warning("config: %s", warning)
    if args.demo:
        return lifecycle.run(_run_demo(config))
    from bot.app import build_worker

    worker = build_worker(config)
    if args.once:
        return lifecycle.run(_run_once(worker))
    return lifecycle.run(_run_forever(worker))


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
    log.info("one cycle: %s", report.summary())
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """``check``: validate and print a one-screen summary (secrets redacted)."""
    config = read_config(args.config)
    print(summarize(config))
    if getattr(args, "online", False):
        from bot.online_check import run_checks

        print("online checks:")
        lines = run_checks(config)
        print("\n".join(map(str, lines)))
        return 0 if all(line.ok for line in lines) else 2
    return 0


def summarize(config: Config) -> str:
    """A one-screen description of a valid config. Never shows a secret."""
    lines = [f"{config.path}: OK", *(f"warning: {w}" for w in config.warnings)]
    lines.append(f"timezone: {config.timezone}")
    telegram = config.telegram
    if telegram.enabled:
        lines.append(f"telegram: on, token <redacted>, {telegram.base_url}")
    else:
        lines.append("telegram: off (no token) - alerts are printed to the console")
    for name, chat in telegram.chats.items():
        admin = " (admin)" if name == telegram.admin_chat else ""
        lines.append(f"  chat {name}: {chat if chat is not None else '(not set)'}{admin}")
    lines.append(f"state: {redact_url(config.state.url)}")
    poll = config.poll
    lines.append(
        f"poll: every {format_duration(poll.every)}, {format_duration(poll.after_close)} "
        f"after the close, closes final after {format_duration(poll.settle)}"
    )
    lines.append(f"sources ({len(config.sources)}):")
    for name, source in config.sources.items():
        lines.append(f"  {name}: {source.type} {source.base_url or '(default URL)'}")
    lines.append(f"symbols ({len(config.symbols)}):")
    for symbol_id, spec in config.symbols.items():
        what = spec.ticker or (spec.series if isinstance(spec.series, str) else None)
        if isinstance(spec.series, dict):
            what = "+".join(spec.series.values())
        lines.append(
            f"  {symbol_id}: {what or spec.file or symbol_id} ({spec.name or symbol_id}) "
            f"via {' -> '.join(spec.source)}, calendar {spec.calendar}"
        )
    lines.append(f"rules ({len(config.rules)}):")
    common = {"id", "type", "enabled", "template"}
    for params in config.rules:
        options = params.model_dump(mode="json", exclude_defaults=True, exclude=common)
        shown = " ".join(f"{k}={_short(v)}" for k, v in options.items())
        state = "" if params.enabled else " [disabled]"
        lines.append(f"  {params.id}: {params.type} {shown}{state}")
    return redact("\n".join(lines))


def _short(value: object) -> str:
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{v}" for k, v in value.items()) + "}"
    return str(value)
