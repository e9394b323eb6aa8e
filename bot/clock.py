"""Time as an input: every component takes a :class:`Clock` so tests can set it.

A clock tells two times: ``now()``, the wall clock (dates, sessions, alert times), and
``monotonic()``, seconds that only ever go forward (intervals between polls, back-off). The wall
clock can step back (NTP, a VM resumed, an operator); an interval measured on it then looks
negative and the bot would wait for the step to be "made up" before polling again.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current time as a timezone-aware UTC datetime."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never go backwards (for intervals only)."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """``time.monotonic()``: immune to wall-clock steps."""
        return time.monotonic()


class FakeClock:
    """A settable clock for tests, demos and replays.

    ``advance`` and a forward ``set`` are time passing: both clocks move. ``step`` (and a
    backward ``set``) move only the wall clock, as an NTP correction does: ``monotonic`` stays.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware datetime")
        self._now = start.astimezone(UTC)
        self._monotonic = 0.0

    def now(self) -> datetime:
        """The fake wall-clock time."""
        return self._now

    def monotonic(self) -> float:
        """Seconds of fake time that passed since the clock was made (never decreases)."""
        return self._monotonic

    def set(self, when: datetime) -> None:
        """Jump the wall clock to ``when``; forward jumps count as time passing."""
        when = when.astimezone(UTC)
        self._monotonic += max(0.0, (when - self._now).total_seconds())
        self._now = when

    def advance(self, delta: timedelta) -> datetime:
        """Let ``delta`` (not negative) pass on both clocks."""
        if delta < timedelta(0):
            raise ValueError("time does not pass backwards: use step() for a wall-clock step")
        self._now += delta
        self._monotonic += delta.total_seconds()
        return self._now

    def step(self, delta: timedelta) -> datetime:
        """Step the wall clock by ``delta`` (either sign) without time passing."""
        self._now += delta
        return self._now
