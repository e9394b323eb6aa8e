"""Options several commands share, so each command module declares them the same way."""

from __future__ import annotations

import argparse
from datetime import date

from bot.config import DEFAULT_CONFIG


def add_config_arg(parser: argparse.ArgumentParser) -> None:
    """``--config PATH`` (resolved by :func:`bot.config.read_config`)."""
    parser.add_argument(
        "--config",
        metavar="PATH",
        help=f"config file (default: $BOT_CONFIG or ./{DEFAULT_CONFIG})",
    )


def add_data_arg(parser: argparse.ArgumentParser) -> None:
    """``--data ID=FILE`` (repeatable): daily history from files (see
    :func:`bot.backtest.parse_data_args`)."""
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="ID=FILE",
        help="daily CSV for a symbol id, or a FRED CSV for a series id (repeatable)",
    )


def date_arg(text: str) -> date:
    """An argparse ``type`` for ``--start``/``--end``/``--at``: an ISO date."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date such as 2025-01-01, got {text!r}"
        ) from None
