"""Options several commands share, so each command module declares them the same way."""

from __future__ import annotations

import argparse

from bot.config import DEFAULT_CONFIG


def add_config_arg(parser: argparse.ArgumentParser) -> None:
    """``--config PATH`` (resolved by :func:`bot.config.read_config`)."""
    parser.add_argument(
        "--config",
        metavar="PATH",
        help=f"config file (default: $BOT_CONFIG or ./{DEFAULT_CONFIG})",
    )
