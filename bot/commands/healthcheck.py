"""``python -m bot healthcheck``: exit 0 while a running ``run`` beats its health file.

Meant for a container ``HEALTHCHECK`` (see the Dockerfile): it reads ``$BOT_HEALTH_FILE``
(or ``--file``), which ``run`` rewrites every few seconds (:mod:`bot.health`), and fails when
the file is missing or older than ``--max-age``. No config, no network, no store: it answers in
well under a second and cannot itself hang.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DEFAULT_MAX_AGE = 90.0  # seconds: the watchdog beats at least every 30 s


def add_parser(subparsers: Any) -> None:
    """Register ``healthcheck``."""
    parser = subparsers.add_parser(
        "healthcheck", help="exit 0 if the running worker's health file is fresh (containers)"
    )
    parser.add_argument("--file", metavar="PATH", help="health file (default: $BOT_HEALTH_FILE)")
    parser.add_argument(
        "--max-age",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_MAX_AGE,
        help=f"oldest acceptable beat (default {DEFAULT_MAX_AGE:g})",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """0: healthy; 1: no beat, or a stale one (printed)."""
    from bot.health import HEALTH_FILE_ENV, age, health_file

    path = Path(args.file) if args.file else health_file()
    if path is None:
        print(f"unhealthy: no health file (set {HEALTH_FILE_ENV} for `run`, or pass --file)")
        return 1
    seconds = age(path)
    if seconds is None:
        print(f"unhealthy: {path} has no beat (is `run` running?)")
        return 1
    if seconds > args.max_age:
        print(f"unhealthy: last beat {seconds:.0f} s ago (more than {args.max_age:g} s)")
        return 1
    print(f"healthy: last beat {seconds:.0f} s ago")
    return 0
