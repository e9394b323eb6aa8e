"""``python -m bot parse-fomc FILE_OR_URL… [--json]``: what the bot reads from FOMC statements.

Each input is a statement page (a file or an ``http(s)://`` URL: the Fed's
``…/monetaryYYYYMMDDa.htm``) or plain text. ``--json`` prints one line per input::

    {"file": …, "date": "YYYY-MM-DD", "decision": "cut", "bp": -25, "lower": 3.5,
     "upper": 3.75, "dissents": [{"name": …, "preferred": …}]}

and, for an input without a decision, ``{"file": …, "error": …}``. Exit code 1 when any input
had no decision (or could not be read).
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import date
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    """Register ``parse-fomc``."""
    parser = subparsers.add_parser(
        "parse-fomc",
        help="print the decision, range and dissents the bot reads from FOMC statements",
        description="Parse FOMC statement pages or texts (files or URLs) as the fomc source does.",
    )
    parser.add_argument("inputs", nargs="+", metavar="FILE_OR_URL")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(handler=run)


def _day_in_name(name: str) -> date | None:
    """``2025-12-10.html`` or ``monetary20251210a.htm``: the date the name carries."""
    match = re.search(r"(\d{4})-(\d{2})-(\d{2})", name) or re.search(
        r"monetary(\d{4})(\d{2})(\d{2})a", name
    )
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def _read(target: str) -> bytes | str:
    if re.match(r"https?://", target):
        from bot.clock import SystemClock
        from bot.sources.http import HttpClient, HttpSourceParams

        client = HttpClient("parse-fomc", HttpSourceParams(type="fomc"), SystemClock())
        try:
            return client.get(target, symbol=None, accept_html=True)
        finally:
            client.close()
    return Path(target).read_bytes()


def run(args: argparse.Namespace) -> int:
    """Parse each input; print a line per input; 1 if any had no decision."""
    from bot.errors import BotError
    from bot.fomc.message import describe_decision
    from bot.fomc.parse import parse_statement

    failed = False
    for target in args.inputs:
        try:
            statement = parse_statement(_read(target), day=_day_in_name(target))
        except (BotError, OSError) as exc:
            failed = True
            reason = f"{type(exc).__name__}: {exc}" if isinstance(exc, OSError) else str(exc)
            if args.json:
                print(json.dumps({"file": target, "error": reason}))
            else:
                print(f"{target}: error: {reason}")
            continue
        data = statement.to_json()
        if args.json:
            print(json.dumps({"file": target, **data}, ensure_ascii=False))
        else:
            detail = {
                **data,
                "votes_for": statement.votes_for,
                "votes_against": statement.votes_against,
            }
            text = describe_decision(detail, statement.previous, (statement.lower, statement.upper))
            print(f"{target}: {data['date'] or 'undated'}: {text}")
    return 1 if failed else 0
