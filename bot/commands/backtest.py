"""``python -m bot backtest``: arguments and output (table, ``--json``, per-rule summary) of
the replay in :mod:`bot.backtest`."""

from __future__ import annotations

import argparse
import json
import sys
import time as time_module
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from bot.commands.chart import add_backtest_args, backtest_chart_symbol, write_backtest_chart
from bot.commands.common import add_config_arg, add_data_arg, date_arg
from bot.config import ConfigError, read_config
from bot.errors import BotError
from bot.rules.text import fmt_when, local_moment

if TYPE_CHECKING:
    from bot.backtest import ReplayResult
    from bot.config import Config
    from bot.model import Alert


def alert_json(alert: Alert, config: Config) -> dict[str, Any]:
    """One ``--json`` line: time, rule, type, symbol, value, message."""
    return {
        "time": local_moment(alert.time, config.tz, alert.day).isoformat(),
        "rule": alert.rule_id,
        "type": alert.rule_type,
        "symbol": alert.symbol,
        "value": alert.value,
        "message": alert.text,
    }


def print_table(alerts: Sequence[Alert], config: Config, out: TextIO) -> None:
    """A human-readable table; continuation lines of long messages are indented."""
    rows = [
        (
            fmt_when(alert.time, config.tz, alert.day),
            alert.rule_id,
            alert.symbol,
            f"{alert.value:,.2f}",
            alert.text,
        )
        for alert in alerts
    ]
    header = ("time", "rule", "symbol", "value", "message")
    widths = [max([len(header[i]), *(len(r[i]) for r in rows)]) for i in range(4)]
    indent = sum(widths) + 2 * 4

    def line(cells: Sequence[str]) -> str:
        head = "  ".join(
            cell.rjust(w) if i == 3 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells[:4], widths, strict=True))
        )
        message = cells[4].replace("\n", "\n" + " " * indent)
        return f"{head}  {message}"

    print(line(header), file=out)
    for row in rows:
        print(line(row), file=out)


def rule_summary(result: ReplayResult, config: Config) -> list[str]:
    """One line per replayed rule: alerts fired, the first and the last."""
    by_rule: dict[str, list[Alert]] = {rule_id: [] for rule_id in result.rules}
    for alert in result.alerts:
        by_rule.setdefault(alert.rule_id, []).append(alert)
    width = max((len(rule_id) for rule_id in by_rule), default=0)
    lines = []
    for rule_id, alerts in by_rule.items():
        if not alerts:
            lines.append(f"  {rule_id:<{width}}  0 alerts")
            continue
        first = fmt_when(alerts[0].time, config.tz, alerts[0].day)
        last = fmt_when(alerts[-1].time, config.tz, alerts[-1].day)
        count = f"{len(alerts):,d} alert{'' if len(alerts) == 1 else 's'}"
        span = f"on {first}" if len(alerts) == 1 else f"first {first}, last {last}"
        lines.append(f"  {rule_id:<{width}}  {count}, {span}")
    return lines


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
    add_data_arg(parser)
    parser.add_argument("--start", type=date_arg, metavar="DATE", help="first day to report")
    parser.add_argument("--end", type=date_arg, metavar="DATE", help="last day to replay")
    parser.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="ID",
        help="replay only this rule (repeatable; default: every rule)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per alert and line")
    add_backtest_args(parser)
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
    from bot.backtest import load_history, parse_data_args, replay_detailed

    out = out or sys.stdout
    err = err or sys.stderr
    if args.start is not None and args.end is not None and args.start > args.end:
        print(f"error: --start {args.start} is after --end {args.end}", file=err)
        return 2
    try:
        config = read_config(args.config)
        data = parse_data_args(args.data)
        rules = getattr(args, "rule", None) or None
        chart_symbol = backtest_chart_symbol(args, config, list(data))
        history, fetched = load_history(config, data, args.end, sleep, rules)
    except ConfigError as exc:
        print(str(exc), file=err)
        return 2
    except BotError as exc:
        print(f"error: {exc}", file=err)
        return 2
    result = replay_detailed(config, history, args.start, args.end, rules)
    for rule_id, problem in result.errors.items():
        print(f"error: rule {rule_id} failed: {problem}", file=err)
    if args.json:
        for alert in result.alerts:
            print(json.dumps(alert_json(alert, config), ensure_ascii=False), file=out)
    else:
        print_table(result.alerts, config, out)
        span = f"{args.start or 'first row'} .. {args.end or 'last row'}"
        source = f"; fetched {', '.join(fetched)} from sources" if fetched else ""
        warm = (
            f"; {result.warmup_alerts} alert{'' if result.warmup_alerts == 1 else 's'} of "
            "rules still warming up dropped"
            if result.warmup_alerts
            else ""
        )
        print(
            f"\n{len(result.alerts)} alerts from {len(result.rules)} rules over {span} "
            f"({result.observations} observations, {result.warmup} for warm-up{source}{warm})",
            file=out,
        )
        for line in rule_summary(result, config):
            print(line, file=out)
    if chart_symbol is not None:
        code = write_backtest_chart(args, config, history, chart_symbol, result.alerts, err)
        if code:
            return code
    return 1 if result.errors else 0
