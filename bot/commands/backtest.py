"""``python -m bot backtest``: arguments and output of the replay in :mod:`bot.backtest`."""

from __future__ import annotations

import argparse
import json
import sys
import time as time_module
from collections.abc import Callable
from datetime import date
from typing import Any, TextIO

from bot.commands.common import add_config_arg
from bot.config import ConfigError, read_config
from bot.errors import BotError


def _date_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date such as 2025-01-01, got {text!r}"
        ) from None


def add_parser(subparsers: Any) -> None:
    """Register ``backtest`` on the CLI's subparsers (handler: :func:`run`)."""
    parser = subparsers.add_parser(
        "backtest",
        help="replay daily history through the rules and print the alerts they would have sent",
        description=(
            "Replay daily closes (Yahoo/Stooq CSV) and FRED series through the configured rules "
            "with the live engine. Rows before --start warm the rules up without alerting. "
            "Symbols without --data are fetched from their configured source."
        ),
    )
    add_config_arg(parser)
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="ID=FILE",
        help="daily CSV for a symbol id, or a FRED CSV for a series id (repeatable)",
    )
    parser.add_argument("--start", type=_date_arg, metavar="DATE", help="first day to report")
    parser.add_argument("--end", type=_date_arg, metavar="DATE", help="last day to replay")
    parser.add_argument("--json", action="store_true", help="one JSON object per alert and line")
    parser.set_defaults(handler=run)


def run(
    args: argparse.Namespace,
    out: TextIO | None = None,
    err: TextIO | None = None,
    sleep: Callable[[float], None] = time_module.sleep,
) -> int:
    """Run a backtest from parsed arguments; returns the exit code (2 on bad input).

    ``sleep`` paces retries of sources asked for symbols without ``--data`` (tests pass a
    recorder)."""
    # the replay pulls in the engine and every rule: only when a backtest runs
    from bot.backtest import alert_json, load_history, parse_data_args, print_table, replay_detailed

    out = out or sys.stdout
    err = err or sys.stderr
    if args.start is not None and args.end is not None and args.start > args.end:
        print(f"error: --start {args.start} is after --end {args.end}", file=err)
        return 2
    try:
        config = read_config(args.config)
        data = parse_data_args(args.data)
        history, fetched = load_history(config, data, args.end, sleep)
    except ConfigError as exc:
        print(str(exc), file=err)
        return 2
    except BotError as exc:
        print(f"error: {exc}", file=err)
        return 2
    result = replay_detailed(config, history, args.start, args.end)
    for rule_id, problem in result.errors.items():
        print(f"error: rule {rule_id} failed: {problem}", file=err)
    if args.json:
        for alert in result.alerts:
            print(json.dumps(alert_json(alert, config), ensure_ascii=False), file=out)
    else:
        print_table(result.alerts, config, out)
        span = f"{args.start or 'first row'} .. {args.end or 'last row'}"
        source = f"; fetched {', '.join(fetched)} from sources" if fetched else ""
        print(
            f"\n{len(result.alerts)} alerts from {len(config.rules)} rules over {span} "
            f"({result.observations} observations, {result.warmup} for warm-up{source})",
            file=out,
        )
    return 1 if result.errors else 0
