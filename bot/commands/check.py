"""``python -m bot check``: validate the config and print a one-screen summary."""

from __future__ import annotations

import argparse
from typing import Any

from bot.commands.common import add_config_arg
from bot.config import Config, format_duration, read_config, redact_url
from bot.errors import redact


def add_parser(subparsers: Any) -> None:
    """Register ``check`` on the CLI's subparsers (handler: :func:`run`)."""
    parser = subparsers.add_parser("check", help="validate the config and print a summary")
    add_config_arg(parser)
    parser.add_argument(
        "--online",
        action="store_true",
        help="also verify the token, each chat and each symbol's sources over the network",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """``check``: validate and print a one-screen summary (secrets redacted)."""
    config = read_config(args.config)
    print(summarize(config))
    if getattr(args, "online", False):
        from bot.online_check import run_checks

        print("online checks:")
        lines = run_checks(config)
        print("\n".join(map(str, lines)))
        return 0 if all(line.ok for line in lines) else 2
    return 0


def summarize(config: Config) -> str:
    """A one-screen description of a valid config. Never shows a secret."""
    lines = [f"{config.path}: OK", *(f"warning: {w}" for w in config.warnings)]
    lines.append(f"timezone: {config.timezone}")
    telegram = config.telegram
    if telegram.enabled:
        lines.append(f"telegram: on, token <redacted>, {telegram.base_url}")
    else:
        lines.append("telegram: off (no token) - alerts are printed to the console")
    for name, chat in telegram.chats.items():
        admin = " (admin)" if name == telegram.admin_chat else ""
        lines.append(f"  chat {name}: {chat if chat is not None else '(not set)'}{admin}")
    lines.append(f"state: {redact_url(config.state.url)}")
    poll = config.poll
    lines.append(
        f"poll: every {format_duration(poll.every)}, {format_duration(poll.after_close)} "
        f"after the close, closes final after {format_duration(poll.settle)}"
    )
    lines.append(f"sources ({len(config.sources)}):")
    for name, source in config.sources.items():
        lines.append(f"  {name}: {source.type} {source.base_url or '(default URL)'}")
    lines.append(f"symbols ({len(config.symbols)}):")
    for symbol_id, spec in config.symbols.items():
        what = spec.ticker or (spec.series if isinstance(spec.series, str) else None)
        if isinstance(spec.series, dict):
            what = "+".join(spec.series.values())
        lines.append(
            f"  {symbol_id}: {what or spec.file or symbol_id} ({spec.name or symbol_id}) "
            f"via {' -> '.join(spec.source)}, calendar {spec.calendar}"
        )
    lines.append(f"rules ({len(config.rules)}):")
    common = {"id", "type", "enabled", "template"}
    for params in config.rules:
        options = params.model_dump(mode="json", exclude_defaults=True, exclude=common)
        shown = " ".join(f"{k}={_short(v)}" for k, v in options.items())
        state = "" if params.enabled else " [disabled]"
        lines.append(f"  {params.id}: {params.type} {shown}{state}")
    return redact("\n".join(lines))


def _short(value: object) -> str:
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{v}" for k, v in value.items()) + "}"
    return str(value)
