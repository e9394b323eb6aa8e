"""``python -m bot report``: the market context of each symbol as of a date.

The facts come from :mod:`bot.context` (the same numbers the digest, templates and record
alerts use), computed from ``--data`` files or, without them, the history the live bot loads
(its store cache, refreshed from the configured sources). Rows after ``--at`` are never read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bot.commands.common import add_config_arg, add_data_arg, date_arg

if TYPE_CHECKING:
    from bot.config import Config
    from bot.context import RateFacts, SymbolFacts
    from bot.model import History


def add_parser(subparsers: Any) -> None:
    """Register ``report`` (handler: :func:`run`)."""
    parser = subparsers.add_parser(
        "report",
        help="the facts traders quote (record, drought, changes, 52-week range) per symbol",
        description=(
            "Market context of every configured symbol (or those given with --symbol) as of the "
            "final close of --at (default: the latest), from --data files or the history the "
            "live bot loads."
        ),
    )
    add_config_arg(parser)
    add_data_arg(parser)
    parser.add_argument(
        "--symbol", action="append", default=[], metavar="ID", help="only this symbol (repeatable)"
    )
    parser.add_argument("--at", type=date_arg, metavar="DATE", help="as of this day's close")
    parser.add_argument("--json", action="store_true", help="one JSON object per symbol and line")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print the report; exit 0, or 2 on bad input (unknown symbol, unreadable file)."""
    from bot.backtest import is_rate_symbol, load_data_files, parse_data_args
    from bot.config import read_config
    from bot.context import rate_facts, symbol_facts
    from bot.errors import BotError, ConfigError

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        config = read_config(args.config)
        unknown = [s for s in args.symbol if s not in config.symbols]
        if unknown:
            print(
                f"error: --symbol {', '.join(unknown)}: unknown; defined symbols: "
                + ", ".join(config.symbols),
                file=err,
            )
            return 2
        symbols = list(dict.fromkeys(args.symbol)) or list(config.symbols)
        history = load_data_files(config, parse_data_args(args.data))
        missing = [s for s in symbols if s not in history]
        if missing:
            _load_live(config, history, missing)
    except ConfigError as exc:
        print(str(exc), file=err)
        return 2
    except BotError as exc:
        print(f"error: {exc}", file=err)
        return 2
    for symbol in symbols:
        spec = config.symbols[symbol]
        name = spec.name or symbol
        series = history.get(symbol)
        facts: SymbolFacts | RateFacts | None
        if is_rate_symbol(config, symbol, series):
            facts = rate_facts(series, args.at, symbol, name)
        else:
            facts = symbol_facts(series, args.at, symbol, name)
        if facts is None:
            when = f" on or before {args.at}" if args.at else ""
            print(f"{symbol}: no data{when}", file=err)
            continue
        if args.json:
            print(json.dumps(facts.to_json(), ensure_ascii=False), file=out)
        else:
            print(format_text(facts) + "\n", file=out)
    if args.at is None:  # the odds are the latest ones only: never shown as of a past day
        _print_odds(config, args.json, out, err)
    return 0


def _print_odds(config: Config, as_json: bool, out: TextIO, err: TextIO) -> None:
    """The latest odds of every enabled ``rate_odds`` rule, from the rule states in the store
    (read, never written: no store yet means no odds yet)."""
    from bot.rules.rate_odds import odds_blocks

    rules = [p for p in config.rules if p.type == "rate_odds" and p.enabled]
    if not rules:
        return
    states = _stored_states(config, err)
    if not as_json:
        for block in odds_blocks(config.rules, states):
            print("\n".join(block) + "\n", file=out)
        return
    for params in rules:
        engine_state = states.get(params.id) or {}
        own = engine_state.get("rule") or {}
        summary = own.get("summary") if isinstance(own, dict) else None
        summary = summary if isinstance(summary, str) and summary else None
        row = {
            "rule": params.id,
            "type": params.type,
            "odds": summary.splitlines() if summary else None,
            "meeting": own.get("meeting") if summary else None,
            "p_cut": own.get("p_cut") if summary else None,
            "as_of": own.get("as_of") if summary else None,  # the quotes it priced
        }
        print(json.dumps(row, ensure_ascii=False), file=out)


def _stored_states(config: Config, err: TextIO) -> dict[str, Any]:
    """The engine's rule states in the store; ``{}`` when there is no store or it cannot be
    read (said on ``err``). A missing SQLite file is not created."""
    from bot.errors import StoreError
    from bot.store import open_store, sqlite_path

    url = config.state.url
    if url.split(":", 1)[0].lower() == "sqlite":
        path = sqlite_path(url)
        if path != ":memory:" and not Path(path).exists():
            return {}
    try:
        store = open_store(url, settings=config.state)
    except StoreError as exc:
        print(f"odds: {exc}", file=err)
        return {}
    try:
        return store.load_states()
    except StoreError as exc:  # no schema yet (the bot never ran there), or unreachable
        print(f"odds: {exc}", file=err)
        return {}
    finally:
        store.close()


def _load_live(config: Config, history: History, symbols: list[str]) -> None:
    """The history the live worker would load for ``symbols``: the store's cache, refreshed
    from the configured sources."""
    from bot.clock import SystemClock
    from bot.history import HistoryLoader
    from bot.sources.poller import Poller
    from bot.store import open_store

    clock = SystemClock()
    poller = Poller.from_config(config, clock)
    store = open_store(config.state.url, settings=config.state)
    try:
        store.migrate()
        loader = HistoryLoader(store, poller.fetch_daily, config=config, clock=clock)
        loader.load(dict.fromkeys(symbols), into=history)
    finally:
        store.close()
        poller.close()


def _pct(value: float | None) -> str:
    return f"{value:+.2f}%" if value is not None else "n/a"


def format_text(facts: SymbolFacts | RateFacts) -> str:
    """One symbol's block, worded like a market note."""
    from bot.context import RateFacts, longest_phrase, ordinal
    from bot.rules.text import fmt_range

    if isinstance(facts, RateFacts):
        lines = [
            f"{facts.name} ({facts.symbol}) on {facts.date}: {fmt_range(facts.lower, facts.upper)}"
            f" since {facts.since}"
        ]
        if facts.last_change_date is not None and facts.last_change_bp is not None:
            verb = "cut" if facts.last_change_bp < 0 else "raised"
            lines.append(
                f"  last change: {verb} by {abs(facts.last_change_bp)} bp on "
                f"{facts.last_change_date}"
            )
        if facts.changes_ytd:
            total = sum(bp for _, bp in facts.changes_ytd)
            moves = ", ".join(f"{d} {bp:+d} bp" for d, bp in facts.changes_ytd)
            lines.append(
                f"  {facts.date.year}: {len(facts.changes_ytd)} change"
                f"{'' if len(facts.changes_ytd) == 1 else 's'}, {total:+d} bp ({moves})"
            )
        else:
            lines.append(f"  {facts.date.year}: no change so far")
        return "\n".join(lines)
    r = facts.record
    c = facts.change
    lines = [f"{facts.name} ({facts.symbol}) closed at {facts.close:,.2f} on {facts.date}"]
    if r.days_since == 0:
        lines.append(f"  a record close, the {ordinal(r.count_ytd)} of {facts.date.year}")
    else:
        side = "below" if r.pct_from < 0 else "at"
        lines.append(
            f"  {abs(r.pct_from):.2f}% {side} its record close {r.value:,.2f} of {r.date}; "
            f"{r.days_since:,d} days ({r.sessions_since:,d} sessions) without a record close, "
            f"the {longest_phrase(r.drought_rank)} such stretch since {r.history_start.year}"
        )
    if r.days_since:
        year = facts.date.year
        lines.append(
            f"  no record close in {year}"
            if r.count_ytd == 0
            else f"  {r.count_ytd:,d} record close{'' if r.count_ytd == 1 else 's'} in {year}"
        )
    lines.append(
        f"  day {_pct(c['1d'])}, 5 days {_pct(c['5d'])}, month {_pct(c['mtd'])} "
        f"(last month {_pct(c['prev_month'])}), quarter {_pct(c['qtd'])}, "
        f"year {_pct(c['ytd'])}, 1 year {_pct(c['1y'])}"
    )
    lines.append(
        f"  52-week range {facts.low_52w:,.2f} ({facts.low_52w_date}) – "
        f"{facts.high_52w:,.2f} ({facts.high_52w_date})"
    )
    return "\n".join(lines)
