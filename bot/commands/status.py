"""``status``: the operator's view of a bot, read from its store (the bot may be running).

Rule states (and whether each rule is still in the config), the outbox (counts; pending and
failed rows with their errors), the last poll of each symbol, the cached history per symbol.
Nothing is written; secrets are redacted.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.commands.common import add_config_arg

#: Rows of each outbox status listed (the counts cover all of them).
DEFAULT_LIMIT = 20


def add_parser(subparsers: Any) -> None:
    """Register ``status`` on the CLI's subparsers."""
    parser = subparsers.add_parser(
        "status",
        help="show rule states, the outbox, last polls and history from the state store",
        description="Read the state store the config points at and print what the bot knows.",
    )
    add_config_arg(parser)
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"list at most N pending and N failed outbox rows (default {DEFAULT_LIMIT})",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the status; 0, or 1 when the store cannot be read (``main`` prints why)."""
    from bot.config import read_config, redact_url
    from bot.errors import StoreError, redact
    from bot.store import open_store

    config = read_config(args.config)
    url = config.state.url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        # read-only: never create an empty database just to say it is empty
        print(f"no state at {redact_url(url)} yet: the bot has not run with this config")
        return 1
    store = open_store(url, settings=config.state)
    try:
        try:
            store.stats()  # fails on a database the bot never migrated
        except StoreError:
            print(f"no state in {redact_url(url)} yet: the bot has not run with this config")
            return 1
        print(redact(render(config, store, limit=args.limit)))
    finally:
        store.close()
    return 0


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "-"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def render(config: Any, store: Any, *, limit: int = DEFAULT_LIMIT) -> str:
    """The status text of the bot whose config is ``config`` and store is ``store``."""
    from bot.config import redact_url
    from bot.worker import POLLS_KEY

    lines = [f"state: {redact_url(config.state.url)} (schema v{store.current_version()})"]
    configured = {rule.id: rule for rule in config.rules}
    states = store.load_states()
    lines.append(f"rules ({len(configured)} configured, {len(states)} with state):")
    for rule_id in sorted(set(configured) | set(states)):
        rule = configured.get(rule_id)
        kind = rule.type if rule is not None else "(not in the config any more)"
        disabled = " [disabled]" if rule is not None and not rule.enabled else ""
        state = states.get(rule_id)
        if state is None:
            lines.append(f"  {rule_id}: {kind}{disabled}, no state yet")
            continue
        inner = json.dumps(state.get("rule"), sort_keys=True, separators=(",", ":"))
        lines.append(
            f"  {rule_id}: {kind}{disabled}, last alert {_when(state.get('last_alert'))}, "
            f"state {inner}"
        )
    counts = store.stats()
    lines.append(
        f"outbox: {counts['pending']} pending, {counts['sent']} sent, {counts['failed']} failed"
    )
    for status in ("pending", "failed"):
        rows = store.outbox(status)
        for row in rows[:limit]:
            error = f", error: {row.error}" if row.error else ""
            due = f", next try {_when(row.next_attempt_at)}" if status == "pending" else ""
            lines.append(
                f"  {status} {row.alert.id} -> {row.chat}: {row.attempts} attempts{due}{error}"
            )
        if len(rows) > limit:
            lines.append(f"  ... {len(rows) - limit} more {status} rows (--limit)")
    polls = store.get_value(POLLS_KEY) or {}
    lines.append("last poll per symbol:")
    for symbol in sorted(set(config.symbols) | set(polls)):
        poll = polls.get(symbol)
        if poll is None:
            lines.append(f"  {symbol}: never polled")
            continue
        if poll.get("ok"):
            value = poll.get("value")
            what = f"ok, {value:g}" if isinstance(value, int | float) else "ok"
        else:
            what = f"FAILED: {poll.get('error', '?')}"
        lines.append(f"  {symbol}: {_when(poll.get('at'))} {what}")
    lines.append("history per symbol:")
    summary = store.history_summary()
    if not summary:
        lines.append("  (none cached)")
    for symbol, (rows, first, last) in summary.items():
        span = f", {first} .. {last}" if first is not None else ""
        lines.append(f"  {symbol}: {rows} rows{span}")
    return "\n".join(lines)
