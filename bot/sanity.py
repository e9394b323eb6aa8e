"""Sanity checks between sources and rules: no alert from bad data.

:meth:`SanityChecker.check` passes an observation through or raises :class:`SanityError`
(and logs why). Callers drop rejected observations, so they can neither fire nor re-arm a rule.

Checks, in order:

1. **finite / positive** — ``NaN``, infinities, and for prices and closes any value ≤ 0.
   Rates may be 0 (the Fed's lower bound was 0.00 for years) or negative, so for ``rate``
   observations only finiteness is checked (including every ``fields`` value).
2. **stale** — a ``price`` whose timestamp has not advanced for longer than ``stale_after``
   *while its market is open*. Time only counts while the caller says the market is open: the
   last print of yesterday is not stale at 09:31, only if it is still the newest at 09:46.
3. **jump** — a ``price``/``close`` more than ``max_jump`` away from the last good value is held
   back, unless the next poll confirms it (also beyond ``max_jump`` from the old value and
   within ``max_jump`` of the held value); the confirming observation is accepted.

Daily ``rate`` series (FRED) are published with a lag and change in steps that are large in
percent (0.25 → 0.50 is +100 %), so neither the stale nor the jump check applies to them.

The last good value per symbol survives restarts: :meth:`state` / :meth:`load` (JSON-able).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.config import SanityConfig
from bot.errors import SanityError
from bot.model import Observation

log = logging.getLogger(__name__)

STATE_VERSION = 1


@dataclass
class _SymbolState:
    value: float | None = None  # last good value
    time: datetime | None = None  # its observation time
    pending: float | None = None  # a jump waiting for confirmation
    pending_time: datetime | None = None
    seen_time: datetime | None = None  # newest observation time seen (accepted or not)
    unchanged_since: datetime | None = None  # clock time since when seen_time has not advanced
    #   while the market was open; None while closed

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "time": _iso(self.time),
            "pending": self.pending,
            "pending_time": _iso(self.pending_time),
            "seen_time": _iso(self.seen_time),
            "unchanged_since": _iso(self.unchanged_since),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _SymbolState:
        return cls(
            value=_float(data.get("value")),
            time=_dt(data.get("time")),
            pending=_float(data.get("pending")),
            pending_time=_dt(data.get("pending_time")),
            seen_time=_dt(data.get("seen_time")),
            unchanged_since=_dt(data.get("unchanged_since")),
        )


class SanityChecker:
    """Rejects non-finite, non-positive, stale and unconfirmed jumping observations."""

    def __init__(self, config: SanityConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self._symbols: dict[str, _SymbolState] = {}

    def last_good(self, symbol: str) -> float | None:
        """The last accepted value of ``symbol`` (``None`` before the first)."""
        state = self._symbols.get(symbol)
        return state.value if state else None

    def check(self, observation: Observation, market_open: bool) -> Observation:
        """Return ``observation`` if it can be trusted; raise :class:`SanityError` otherwise.

        ``market_open``: whether the symbol's market is in session now (from its calendar);
        the stale check only runs while it is.
        """
        if observation.kind == "tick":
            return observation
        state = self._symbols.setdefault(observation.symbol, _SymbolState())
        try:
            self._check_finite(observation)
            if observation.kind == "price":
                self._check_stale(observation, state, market_open)
            if observation.kind in ("price", "close"):
                self._check_jump(observation, state)
        except SanityError as exc:
            log.warning("rejected %s observation: %s", observation.kind, exc)
            raise
        state.value = observation.value
        state.time = observation.time
        state.pending = None
        state.pending_time = None
        return observation

    # -- checks ----------------------------------------------------------------------------

    def _reject(self, observation: Observation, message: str) -> SanityError:
        source = f" from {observation.source}" if observation.source else ""
        return SanityError(f"{message}{source}", symbol=observation.symbol)

    def _check_finite(self, observation: Observation) -> None:
        value = observation.value
        if not math.isfinite(value):
            raise self._reject(observation, f"value {value!r} is not a finite number")
        if observation.kind in ("price", "close") and value <= 0:
            raise self._reject(observation, f"{observation.kind} {value:g} is not positive")
        for name, field_value in (observation.fields or {}).items():
            if not math.isfinite(field_value):
                raise self._reject(observation, f"field {name} = {field_value!r} is not finite")

    def _check_stale(
        self, observation: Observation, state: _SymbolState, market_open: bool
    ) -> None:
        now = self.clock.now()
        advanced = state.seen_time is None or observation.time > state.seen_time
        if advanced:
            state.seen_time = observation.time
            state.unchanged_since = now if market_open else None
            return
        if not market_open:
            # The clock only runs while the market is open: a quiet night is not staleness.
            state.unchanged_since = None
            return
        if state.unchanged_since is None:
            state.unchanged_since = now
            return
        unchanged = now - state.unchanged_since
        if unchanged > self.config.stale_after:
            raise self._reject(
                observation,
                f"stale quote: its time {observation.time.isoformat()} has not advanced for "
                f"{_minutes(unchanged)} while the market is open "
                f"(limit {_minutes(self.config.stale_after)})",
            )

    def _check_jump(self, observation: Observation, state: _SymbolState) -> None:
        last = state.value
        if last is None:
            return  # nothing to compare with: the first value is trusted
        value = observation.value
        limit = self.config.max_jump.of(last)
        if abs(value - last) <= limit:
            return
        pending = state.pending
        if pending is not None and abs(value - pending) <= self.config.max_jump.of(pending):
            log.info(
                "%s: jump from %g to %g confirmed by a second poll (%g before)",
                observation.symbol,
                last,
                value,
                pending,
            )
            return
        state.pending = value
        state.pending_time = observation.time
        change = (value - last) / last * 100.0
        raise self._reject(
            observation,
            f"jump from {last:g} to {value:g} ({change:+.2f}%) exceeds max_jump "
            f"{self.config.max_jump}; held until a second poll confirms it",
        )

    # -- persistence -----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The checker's memory as JSON-able data (store it; :meth:`load` it after a restart)."""
        return {
            "version": STATE_VERSION,
            "symbols": {symbol: s.to_json() for symbol, s in sorted(self._symbols.items())},
        }

    def load(self, data: dict[str, Any] | None) -> None:
        """Restore :meth:`state` output. Unreadable entries are skipped (and logged): losing
        the memory only means the next value is trusted as a first one."""
        self._symbols = {}
        if not data:
            return
        symbols = data.get("symbols") if isinstance(data, dict) else None
        if not isinstance(symbols, dict):
            log.warning("ignoring unreadable sanity state")
            return
        for symbol, entry in symbols.items():
            try:
                self._symbols[str(symbol)] = _SymbolState.from_json(entry)
            except (TypeError, ValueError, AttributeError):
                log.warning("ignoring unreadable sanity state of %s", symbol)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError("naive datetime in sanity state")
    return parsed


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _minutes(delta: Any) -> str:
    seconds = delta.total_seconds()
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
