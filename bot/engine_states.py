"""What the engine reads back from rule states between calls, checked before it is trusted.

A rule's stored state and the newest-seen map may hold times from before future-dated
observations were rejected (a quote stamped 2100): such times are dropped or the state starts
afresh, so no stored value can hide real observations or hold alerts back by cooldown. Peers'
states are handed to a rule read-only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from bot.model import Observation
from bot.rules.base import PeerStates

log = logging.getLogger("bot.engine")  # these lines have always been the engine's

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def healed(rule_id: str, previous: Mapping[str, Any], limit: datetime) -> Mapping[str, Any]:
    """``previous``, or a fresh start if it remembers a time beyond ``limit``.

    A state written before future-dated observations were rejected may hold one (a quote
    stamped 2100): as "newest seen" it would hide every real observation, as the last alert it
    would hold every later one back by cooldown. Such a state is not trustworthy at all, so the
    rule starts over and seeds itself from history, as on a first run.
    """
    legacy = previous.get("seen")
    last_alert = previous.get("last_alert")
    if not legacy and last_alert is None:
        return previous  # nothing to parse: the common case of a quiet rule
    times = [*(legacy or {}).values(), last_alert]
    try:
        poisoned = any(t is not None and datetime.fromisoformat(t) > limit for t in times)
    except (TypeError, ValueError):
        poisoned = True
    if poisoned:
        log.warning(
            "rule %s: its stored state holds a time in the future; starting it afresh", rule_id
        )
        return {}
    return previous


def peer_states(states: Mapping[str, Mapping[str, Any]], ids: Sequence[str]) -> PeerStates:
    """Each named rule's own state (``"rule"`` of its engine state), read-only; a rule without
    a state yet is left out."""
    found: dict[str, Mapping[str, Any]] = {}
    for rule_id in ids:
        own = (states.get(rule_id) or {}).get("rule")
        if isinstance(own, Mapping):
            found[rule_id] = MappingProxyType(dict(own))
    return MappingProxyType(found)


def seen_times(
    given: Mapping[str, str] | None, states: Mapping[str, Mapping[str, Any]], limit: datetime
) -> dict[tuple[str, str], datetime]:
    """The newest-seen map as datetimes; a time beyond ``limit`` is dropped (see _healed).

    Without ``given`` (states written before the map was kept apart), the newest of the
    per-rule maps those states hold, so an upgrade re-evaluates no quote already evaluated.
    """
    merged: dict[str, str] = {}
    if given is None:
        for state in states.values():
            for key, value in (state.get("seen") or {}).items():
                if isinstance(value, str) and value > merged.get(key, ""):
                    merged[key] = value
    else:
        merged = dict(given)
    out: dict[tuple[str, str], datetime] = {}
    for key, value in merged.items():
        symbol, _, kind = key.rpartition("/")
        try:
            moment = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            continue
        if moment > limit:
            log.warning("newest seen %s of %s is in the future; forgotten", value, key)
            continue
        out[(symbol, kind)] = moment
    return out


def is_newer(observation: Observation, seen: Mapping[tuple[str, str], datetime]) -> bool:
    """Whether ``observation`` is newer than the newest of its symbol and kind evaluated."""
    last = seen.get((observation.symbol, observation.kind))
    return last is None or observation.time > last
