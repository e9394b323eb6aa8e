"""``python -m bot chart SYMBOL``: the ``/chart`` picture as a PNG file, offline.

History comes from ``--data`` files (read as the backtest reads them) or, for a symbol without
one, from its configured source. The picture is :func:`bot.charts.chart_for`'s: the one the
Telegram ``/chart`` command sends.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any, TextIO

from bot.commands.common import add_config_arg, add_data_arg, date_arg

PERIODS = ("1m", "3m", "6m", "1y", "5y", "max")  # bot.charts.PERIODS, without importing it


def add_parser(subparsers: Any) -> None:
    """Register ``chart`` on the CLI's subparsers (handler: :func:`run`)."""
    parser = subparsers.add_parser(
        "chart",
        help="draw a symbol's daily closes, record and levels as a PNG",
        description=(
            "Draw the /chart picture of SYMBOL: daily closes with the record close and the "
            "levels of the rules on it. Without --data the symbol's configured source is asked."
        ),
    )
    parser.add_argument("symbol", metavar="SYMBOL", help="symbol id from the config (e.g. RUT)")
    add_config_arg(parser)
    add_data_arg(parser)
    parser.add_argument(
        "--from", dest="start", type=date_arg, metavar="DATE", help="first day to draw"
    )
    parser.add_argument("--to", dest="end", type=date_arg, metavar="DATE", help="last day to draw")
    parser.add_argument(
        "--period",
        choices=PERIODS,
        default="max",
        help="window ending at the last day drawn (default: max, i.e. all of --from..--to)",
    )
    parser.add_argument("--out", required=True, metavar="FILE.png", help="PNG file to write")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, err: TextIO | None = None) -> int:
    """Write the chart; returns the exit code (2 on bad input, with one line on stderr)."""
    from bot.backtest import load_data_files, parse_data_args
    from bot.charts import chart_for
    from bot.config import ConfigError, read_config
    from bot.errors import BotError

    err = err or sys.stderr
    if args.start is not None and args.end is not None and args.start > args.end:
        print(f"error: --from {args.start} is after --to {args.end}", file=err)
        return 2
    try:
        config = read_config(args.config)
        if args.symbol not in config.symbols:
            known = ", ".join(config.symbols) or "none"
            print(f"error: unknown symbol {args.symbol!r}; symbols: {known}", file=err)
            return 2
        history = load_data_files(config, parse_data_args(args.data))
        if args.symbol not in history:
            history.set(args.symbol, fetch_series(config, args.symbol, args.end))
        png = chart_for(
            config, args.symbol, history, period=args.period, start=args.start, end=args.end
        )
    except ConfigError as exc:
        print(str(exc), file=err)
        return 2
    except BotError as exc:
        print(f"error: {exc}", file=err)
        return 2
    try:
        with open(args.out, "wb") as file:
            file.write(png)
    except OSError as exc:
        print(f"error: --out {args.out}: cannot write: {exc.strerror or exc}", file=err)
        return 2
    return 0


def fetch_series(config: Any, symbol_id: str, end: date | None) -> Any:
    """All daily rows of one symbol from its configured sources (as ``backtest`` fetches a
    symbol without ``--data``)."""
    from bot.clock import SystemClock
    from bot.sources.poller import Poller

    poller = Poller.from_config(config, SystemClock())
    try:
        return poller.fetch_daily(symbol_id, config.symbols[symbol_id], None, end)
    finally:
        poller.close()


# ---------------------------------------------------------------------------------------------
# backtest --chart (called from bot.backtest.run)
# ---------------------------------------------------------------------------------------------


def add_backtest_args(parser: argparse.ArgumentParser) -> None:
    """``backtest --chart FILE.png [--chart-symbol ID]``."""
    parser.add_argument(
        "--chart",
        metavar="FILE.png",
        help="also draw the chart of one symbol with the backtest's alerts marked",
    )
    parser.add_argument(
        "--chart-symbol",
        metavar="ID",
        help="symbol to draw with --chart (default: the one symbol given by --data)",
    )


def backtest_chart_symbol(args: argparse.Namespace, config: Any, data_ids: list[str]) -> str | None:
    """The symbol ``backtest --chart`` draws (``None`` without ``--chart``), chosen before the
    replay so a bad choice costs no time. Raises :class:`~bot.errors.BotError` when it is
    unknown or ambiguous."""
    from bot.errors import BotError

    if not getattr(args, "chart", None):
        if getattr(args, "chart_symbol", None):
            raise BotError("--chart-symbol needs --chart FILE.png")
        return None
    wanted = args.chart_symbol
    if wanted is not None:
        if wanted not in config.symbols:
            known = ", ".join(config.symbols) or "none"
            raise BotError(f"--chart-symbol {wanted!r}: unknown symbol; symbols: {known}")
        return str(wanted)
    given = [key for key in data_ids if key in config.symbols]
    if len(given) == 1:
        return given[0]
    choices = ", ".join(given or config.symbols) or "none"
    raise BotError(f"--chart: which symbol? pick one with --chart-symbol ({choices})")


def write_backtest_chart(
    args: argparse.Namespace, config: Any, history: Any, symbol_id: str, alerts: Any, err: TextIO
) -> int:
    """Write ``--chart``: ``symbol_id`` over ``--start``..``--end`` with ``alerts`` marked.
    Returns the exit code (0, or 2 with one line on ``err``)."""
    from bot.charts import chart_for
    from bot.errors import BotError

    try:
        png = chart_for(
            config, symbol_id, history, alerts, period="max", start=args.start, end=args.end
        )
        with open(args.chart, "wb") as file:
            file.write(png)
    except BotError as exc:
        print(f"error: --chart: {exc}", file=err)
        return 2
    except OSError as exc:
        print(f"error: --chart {args.chart}: cannot write: {exc.strerror or exc}", file=err)
        return 2
    return 0
