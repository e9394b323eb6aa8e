"""``/rules``, ``/mute`` and ``/unmute``: rule states and mutes (kept in the store)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Config
from bot.rules.text import fmt_time

MUTE_USAGE = "Usage: /mute RULE|all DURATION  (e.g. /mute rut-record 2h, /mute all today)"
UNMUTE_USAGE = "Usage: /unmute RULE|all"
ALL = "*"  # the store's rule id for "every rule"

_DURATION = re.compile(r"^(\d+)\s*(m|min|h|d|w)$", re.IGNORECASE)
_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_MUTE = timedelta(days=366)


def mute_until(text: str, now: datetime, tz: ZoneInfo) -> datetime | None:
    """When a mute of ``text`` (``30m``, ``2h``, ``3d``, ``1w``, ``today``) given at ``now``
    ends; None if ``text`` is not a duration. ``today``: the next local midnight."""
    text = text.strip().lower()
    if text == "today":
        tomorrow = now.astimezone(tz).date() + timedelta(days=1)
        return datetime.combine(tomorrow, time(0), tz)
    match = _DURATION.match(text)
    if match is None:
        return None
    seconds = int(match.group(1)) * _UNITS[match.group(2).lower()]
    if seconds <= 0 or seconds > MAX_MUTE.total_seconds():
        return None
    return now + timedelta(seconds=seconds)


def resolve_rule(config: Config, name: str) -> str | None:
    """The rule id (``*`` for ``all``) meant by ``name``; None if there is no such rule."""
    if name.lower() == "all":
        return ALL
    ids = {params.id for params in config.rules}
    return name if name in ids else None


def rule_state_line(
    config: Config,
    rule_id: str,
    states: Mapping[str, Mapping[str, Any]],
    mutes: Mapping[str, datetime],
    unseeded: Sequence[str],
    now: datetime,
) -> str:
    """One rule's line: ``id (type): armed / fired at … / unseeded / muted until … / expired /
    disabled`` (plus what a mute held back)."""
    params = next(p for p in config.rules if p.id == rule_id)
    tz = config.tz
    state = states.get(rule_id) or {}
    if not params.enabled:
        what = "disabled"
    elif params.expires is not None and now.astimezone(tz).date() > params.expires:
        what = f"expired on {params.expires}"
    elif rule_id in unseeded:
        what = "unseeded (waiting for history)"
    elif state.get("last_alert"):
        what = f"fired at {fmt_time(datetime.fromisoformat(state['last_alert']), tz)}"
    else:
        what = "armed"
    until = max((mutes[k] for k in (rule_id, ALL) if k in mutes), default=None)
    if until is not None and until > now:
        what += f"; muted until {fmt_time(until, tz)}"
    muted = state.get("muted") or {}
    if muted.get("count"):
        last = muted.get("last") or {}
        when = fmt_time(datetime.fromisoformat(last["time"]), tz) if last.get("time") else "?"
        what += f"; {muted['count']} alert(s) muted, last at {when}"
    return f"{rule_id} ({params.type}): {what}"


def rules_text(
    config: Config,
    states: Mapping[str, Mapping[str, Any]],
    mutes: Mapping[str, datetime],
    unseeded: Sequence[str],
    now: datetime,
) -> str:
    """The whole ``/rules`` answer."""
    lines = [
        rule_state_line(config, params.id, states, mutes, unseeded, now) for params in config.rules
    ]
    if ALL in mutes and mutes[ALL] > now:
        lines.insert(0, f"All rules muted until {fmt_time(mutes[ALL], config.tz)}")
    return "\n".join(lines) or "No rules configured."
