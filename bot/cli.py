"""Command line: ``python -m bot <command>``; assembles the commands of :mod:`bot.commands`.

Each command is one module there (its arguments and its handler); this module only adds the
options common to all (``--version``), registers each command and maps errors to exit codes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.commands import (
    backtest,
    chart,
    check,
    healthcheck,
    parse_fomc,
    report,
    run,
    schema,
    send_test,
    status,
)
from bot.config import ConfigError
from bot.errors import BotError

DISTRIBUTION = "index-alert-bot"
CONSOLE_SCRIPT = "index-alert-bot"  # [project.scripts] in pyproject.toml


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description=(
            "Index Alert Bot: Telegram alerts for market levels. "
            f"Run as `python -m bot` or as the installed `{CONSOLE_SCRIPT}` command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    run.add_parser(sub)
    check.add_parser(sub)
    report.add_parser(sub)
    backtest.add_parser(sub)
    parse_fomc.add_parser(sub)
    schema.add_parser(sub)
    send_test.add_parser(sub)
    healthcheck.add_parser(sub)
    status.add_parser(sub)
    chart.add_parser(sub)
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
