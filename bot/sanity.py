"""Sanity checks between sources and rules: no alert from bad data.

:meth:`SanityChecker.check` passes an observation through or raises :class:`SanityError`
(and logs why). Callers drop rejected observations, so they can neither fire nor re-arm a rule.
Polled quotes, final daily closes and FRED rates all pass it; daily history rows pass
:func:`~bot.sanity_rows.clean_daily` (the same checks, row by row) before rules see them.

Checks, in order:

1. **finite / positive** — ``NaN``, infinities, and for prices and closes any value ≤ 0.
   Rates may be 0 (the Fed's lower bound was 0.00 for years) or negative, so for ``rate``
   observations only finiteness is checked (including every ``fields`` value).
2. **future** — an observation stamped later than the clock's now plus ``max_skew``: it would
   become every rule's "newest seen" and hide every real quote after it.
3. **plausible rate** — a ``rate`` (or a ``lower``/``upper`` field) outside
   ``min_rate``..``max_rate``, or a lower bound above the upper one.
4. **stale** — a ``price`` whose timestamp has not advanced for longer than ``stale_after``
   *while its market is open*. Time only counts while the caller says the market is open: the
   last print of yesterday is not stale at 09:31, only if it is still the newest at 09:46.
5. **absurd** — a ``price``/``close`` more than ``max_ratio`` times above (or below) the last
   good close (the checker's own, or the newest history row it is given) is never accepted,
   however often it repeats.
6. **jump** — a ``price``/``close`` more than ``max_jump`` away from the last good value is held
   back until polls that agree with each other (each within ``max_jump`` of the first held one)
   have shown it for ``confirm_after`` of clock time; the confirming observation is accepted.
   Two polls a minute apart repeating garbage are not a confirmation; a real crash
   (^RUT −14 % on 2020-03-16) is, five minutes later.

Daily ``rate`` series (FRED) are published with a lag and change in steps that are large in
percent (0.25 → 0.50 is +100 %), so neither the stale nor the jump checks apply to them.

The last good value per symbol survives restarts: :meth:`state` / :meth:`load` (JSON-able).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from bot.clock import Clock
from bot.config import SanityConfig
from bot.errors import SanityError
from bot.model import History, Observation
from bot.sanity_rows import clean_daily, latest_day, rate_problem

__all__ = ["SanityChecker", "clean_daily", "latest_day", "rate_problem"]

log = logging.getLogger(__name__)

STATE_VERSION = 2

#: ``history()`` → the daily history (final closes) as it is now: the checker takes a symbol's
#: newest row as its "last good close" when it has none of its own that is newer.
HistoryOf = Callable[[], History]


@dataclass
class _SymbolState:
    value: float | None = None  # last good value
    time: datetime | None = None  # its observation time
    pending: float | None = None  # the first poll of a jump waiting for confirmation
    pending_time: datetime | None = None  # its observation time
    pending_since: datetime | None = None  # clock time it was first seen
    seen_time: datetime | None = None  # newest observation time seen (accepted or not)
    unchanged_since: datetime | None = None  # clock time since when seen_time has not advanced
    #   while the market was open; None while closed
    close: float | None = None  # last good final close
    close_day: date | None = None  # its session

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "time": _iso(self.time),
            "pending": self.pending,
            "pending_time": _iso(self.pending_time),
            "pending_since": _iso(self.pending_since),
            "seen_time": _iso(self.seen_time),
            "unchanged_since": _iso(self.unchanged_since),
            "close": self.close,
            "close_day": self.close_day.isoformat() if self.close_day else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _SymbolState:
        close_day = data.get("close_day")
        return cls(
            value=_float(data.get("value")),
            time=_dt(data.get("time")),
            pending=_float(data.get("pending")),
            pending_time=_dt(data.get("pending_time")),
            pending_since=_dt(data.get("pending_since")),
            seen_time=_dt(data.get("seen_time")),
            unchanged_since=_dt(data.get("unchanged_since")),
            close=_float(data.get("close")),
            close_day=date.fromisoformat(str(close_day)) if close_day else None,
        )


class SanityChecker:
    """Rejects non-finite, non-positive, future, implausible, stale, absurd and unconfirmed
    jumping observations."""

    def __init__(
        self, config: SanityConfig, clock: Clock, history: HistoryOf | None = None
    ) -> None:
        """``history`` gives the symbols' daily history (the worker's), so the absurd-value
        bound has a last good close from the first poll on."""
        self.config = config
        self.clock = clock
        self.history = history
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
            self._check_future(observation)
            if observation.kind == "rate":
                self._check_rate(observation)
            if observation.kind == "price":
                self._check_stale(observation, state, market_open)
            if observation.kind in ("price", "close"):
                self._check_absurd(observation, state)
                self._check_jump(observation, state)
        except SanityError as exc:
            log.warning("rejected %s observation: %s", observation.kind, exc)
            raise
        state.value = observation.value
        state.time = observation.time
        state.pending = None
        state.pending_time = None
        state.pending_since = None
        if observation.kind == "close":
            day = observation.session or observation.time.date()
            if state.close_day is None or day >= state.close_day:
                state.close, state.close_day = observation.value, day
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

    def _check_future(self, observation: Observation) -> None:
        limit = self.clock.now() + self.config.max_skew
        if observation.time > limit:
            raise self._reject(
                observation,
                f"dated {observation.time.isoformat()}, in the future (now "
                f"{self.clock.now().isoformat()}, max_skew {_minutes(self.config.max_skew)})",
            )

    def _check_rate(self, observation: Observation) -> None:
        values = {"value": observation.value, **(observation.fields or {})}
        problem = rate_problem(values, self.config)
        if problem is not None:
            raise self._reject(observation, problem)

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

    def _last_close(
        self, observation: Observation, state: _SymbolState
    ) -> tuple[date, float] | None:
        """The newest good close before ``observation`` (before its session, for a close)."""
        session = observation.session if observation.kind == "close" else None
        best: tuple[date, float] | None = None
        if (
            state.close is not None
            and state.close_day is not None
            and (session is None or state.close_day < session)
        ):
            best = (state.close_day, state.close)
        history = self.history() if self.history is not None else None
        series = (
            history.get(observation.symbol)
            if history is not None and observation.symbol in history
            else None
        )
        if series is not None and len(series):
            index = series.index_before(session) if session is not None else len(series) - 1
            if index >= 0 and (best is None or series.dates[index] > best[0]):
                best = (series.dates[index], series.values[index])
        return best

    def _check_absurd(self, observation: Observation, state: _SymbolState) -> None:
        reference = self._last_close(observation, state)
        if reference is None:
            return
        day, close = reference
        if close <= 0 or not math.isfinite(close):
            return
        if _absurd(observation.value, close, self.config.max_ratio):
            raise self._reject(
                observation,
                f"{observation.kind} {observation.value:g} is more than {self.config.max_ratio:g}×"
                f" away from the last good close {close:g} of {day.isoformat()}: never "
                "accepted, however often it repeats",
            )

    def _check_jump(self, observation: Observation, state: _SymbolState) -> None:
        last = state.value
        if last is None:
            return  # nothing to compare with: the first value is trusted
        value = observation.value
        limit = self.config.max_jump.of(last)
        if abs(value - last) <= limit:
            return
        now = self.clock.now()
        pending, since = state.pending, state.pending_since
        change = (value - last) / last * 100.0
        what = f"jump from {last:g} to {value:g} ({change:+.2f}%) exceeds max_jump "
        if (
            pending is not None
            and since is not None
            and abs(value - pending) <= self.config.max_jump.of(pending)
        ):
            shown = now - since
            if shown >= self.config.confirm_after:
                log.info(
                    "%s: jump from %g to %g confirmed by polls agreeing for %s (first %g)",
                    observation.symbol,
                    last,
                    value,
                    _minutes(shown),
                    pending,
                )
                return
            raise self._reject(
                observation,
                f"{what}{self.config.max_jump}; agreeing polls for {_minutes(shown)} so far, "
                f"held until they have for {_minutes(self.config.confirm_after)}",
            )
        state.pending = value
        state.pending_time = observation.time
        state.pending_since = now
        raise self._reject(
            observation,
            f"{what}{self.config.max_jump}; held until polls agreeing with it for "
            f"{_minutes(self.config.confirm_after)} confirm it",
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
        the memory only means the next value is trusted as a first one. Times in the future
        (a state written before future-dated observations were rejected) are forgotten."""
        self._symbols = {}
        if not data:
            return
        symbols = data.get("symbols") if isinstance(data, dict) else None
        if not isinstance(symbols, dict):
            log.warning("ignoring unreadable sanity state")
            return
        limit = self.clock.now() + self.config.max_skew
        for symbol, entry in symbols.items():
            try:
                state = _SymbolState.from_json(entry)
            except (TypeError, ValueError, AttributeError):
                log.warning("ignoring unreadable sanity state of %s", symbol)
                continue
            if any(t is not None and t > limit for t in (state.time, state.seen_time)) or (
                state.close_day is not None and state.close_day > limit.date()
            ):
                log.warning("ignoring sanity state of %s: it holds a time in the future", symbol)
                continue
            self._symbols[str(symbol)] = state


def _absurd(value: float, reference: float, ratio: float) -> bool:
    return value > reference * ratio or value * ratio < reference


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


def _minutes(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
