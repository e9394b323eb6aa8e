"""When markets trade and when a daily close is final.

Holidays, early closes and daylight-saving rules come from ``pandas_market_calendars`` (never
from tables kept here). The names users write in ``calendar:`` are:

``XNYS``
    NYSE cash session, 09:30–16:00 New York, with NYSE holidays (including one-off closures
    such as 2025-01-09) and early closes (13:00 on half days). For cash indices (^RUT, ^GSPC).
``CME``
    CME equity index futures (library calendar ``CME_Equity``): Sunday 18:00 – Friday 17:00
    New York, a daily break 17:00–18:00, CME holidays and early halts. A session is named by
    the day it *closes* on: the Sunday-evening open belongs to Monday's session.
``always``
    24/7 data (rates, crypto, anything without sessions). Always open; every UTC calendar day
    is one "session" from 00:00 UTC to 00:00 UTC of the next day, so a daily value dated ``D``
    is final at ``D+1 00:00 UTC`` plus the settle delay.

All datetimes in and out are timezone-aware; results are UTC. Schedules are computed by the
library once per span of years and cached, then every question is a binary search: the
scheduler asks every minute and a backtest asks for thousands of days.
"""

from __future__ import annotations

import bisect
import functools
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bot.errors import BotError

#: Calendar names accepted in ``symbols.<id>.calendar`` (bot.config validates against this).
CALENDARS: tuple[str, ...] = ("always", "XNYS", "CME")

# Our names → pandas_market_calendars names.
_LIBRARY_NAMES: dict[str, str] = {"XNYS": "XNYS", "CME": "CME_Equity"}

# The library calendars' time zones (tests/test_calendar_child.py checks them against the
# library): known without importing it, so a process whose sessions come from elsewhere
# (:func:`set_session_source`) never loads pandas.
_LIBRARY_TIME_ZONES: dict[str, str] = {"XNYS": "America/New_York", "CME_Equity": "America/Chicago"}

# pandas_market_calendars knows no sessions outside this span; clamping keeps a runaway search
# (a calendar that never opens again) finite.
_MIN_YEAR = 1900
_MAX_YEAR = 2200

# How far around a moment the schedule must be loaded so that the session containing it, the
# last one closed before it and the next one opening after it are all known: longer than any
# closure streak (NYSE after 2001-09-11: 6 days without a session).
_MARGIN = timedelta(days=14)


class UnknownCalendarError(BotError, ValueError):
    """A calendar name that is not one of :data:`CALENDARS`."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown calendar {name!r}; known: {', '.join(CALENDARS)}")


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session, named by its session ``date``; ``open``/``close`` are UTC.

    ``close`` is the *actual* close of that day (early on half days). ``break_start`` and
    ``break_end`` mark a pause inside the session, when the calendar has one.
    """

    date: date
    open: datetime
    close: datetime
    break_start: datetime | None = None
    break_end: datetime | None = None

    def intervals(self) -> list[tuple[datetime, datetime]]:
        """The half-open ``[start, end)`` spans during which the market trades."""
        if self.break_start is None or self.break_end is None:
            return [(self.open, self.close)]
        return [
            (start, end)
            for start, end in ((self.open, self.break_start), (self.break_end, self.close))
            if start < end
        ]


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC; naive datetimes are refused (their meaning is a guess)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"timezone-aware datetime required, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _non_negative(delta: timedelta, what: str) -> None:
    if delta < timedelta(0):
        raise ValueError(f"{what} must not be negative, got {delta}")


class MarketCalendar(ABC):
    """When one market trades. Get instances with :func:`get_calendar` (they are shared)."""

    def __init__(self, name: str, tz: ZoneInfo) -> None:
        self.name = name
        #: the exchange's own time zone (used for "end of day" of days without a session)
        self.tz = tz

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    @abstractmethod
    def is_open(self, moment: datetime) -> bool:
        """Whether the market trades at ``moment`` (outside breaks and holidays)."""

    @abstractmethod
    def should_poll(self, moment: datetime, after_close: timedelta) -> bool:
        """Whether to poll at ``moment``: the market is open, or closed less than
        ``after_close`` ago (to catch the final print of the close)."""

    @abstractmethod
    def next_poll_time(self, after: datetime, after_close: timedelta) -> datetime:
        """The earliest moment at or after ``after`` at which :meth:`should_poll` is true.

        Equal to ``after`` while polling is due; otherwise the next open, so the scheduler
        sleeps through nights, weekends and holidays.
        """

    @abstractmethod
    def session_on(self, day: date) -> Session | None:
        """The session named ``day``, or ``None`` when the market does not trade that day."""

    @abstractmethod
    def session_at(self, moment: datetime) -> Session | None:
        """The session whose ``[open, close)`` contains ``moment`` (a break counts as inside),
        or ``None``. Tells which session date an intraday price belongs to."""

    @abstractmethod
    def last_session_closed_by(self, moment: datetime) -> Session | None:
        """The latest session whose close is at or before ``moment``."""

    @abstractmethod
    def sessions_between(self, start: date, end: date) -> list[Session]:
        """Sessions named ``start`` .. ``end`` (both inclusive), in order."""

    def is_trading_day(self, day: date) -> bool:
        """Whether a session is named ``day``."""
        return self.session_on(day) is not None

    def close_is_final(self, session_date: date, now: datetime, settle: timedelta) -> bool:
        """Whether the daily close dated ``session_date`` is final at ``now``.

        True only from the session's actual close (early on half days) plus ``settle``. A date
        without a session (a holiday row some sources still deliver) is final once that day
        has ended in the exchange's time zone, plus ``settle``.
        """
        _non_negative(settle, "settle")
        now = _utc(now)
        session = self.session_on(session_date)
        if session is not None:
            return now >= session.close + settle
        day_end = datetime.combine(session_date + timedelta(days=1), time(0), self.tz)
        return now >= day_end.astimezone(UTC) + settle


class _Schedule:
    """An immutable snapshot of the sessions of a contiguous span of years, ready to search."""

    __slots__ = (
        "closes",
        "hi_year",
        "index_by_date",
        "lo_year",
        "ordinals",
        "sessions",
        "window_ends",
        "window_starts",
    )

    def __init__(self, lo_year: int, hi_year: int, sessions: list[Session]) -> None:
        self.lo_year = lo_year
        self.hi_year = hi_year
        self.sessions = sessions
        self.ordinals = [s.date.toordinal() for s in sessions]
        self.closes = [s.close for s in sessions]
        self.index_by_date = {s.date: i for i, s in enumerate(sessions)}
        starts: list[datetime] = []
        ends: list[datetime] = []
        for session in sessions:
            for start, end in session.intervals():
                starts.append(start)
                ends.append(end)
        self.window_starts = starts
        self.window_ends = ends


class SessionSource(Protocol):
    """Somewhere else the library's sessions can come from (bot.calendar_child: a short-lived
    child process, so the live worker never imports pandas)."""

    def sessions(self, name: str, lo_year: int, hi_year: int) -> list[Session] | None:
        """Sessions of calendar ``name`` named in years ``lo_year`` .. ``hi_year``, exactly
        what :meth:`ExchangeCalendar.load_in_process` gives; ``None``: load them in-process
        instead (the source failed, and said so in the log)."""


# None (the default: backtests, reports, charts, tests): the library, in this process.
_session_source: SessionSource | None = None


def set_session_source(source: SessionSource | None) -> None:
    """Where :class:`ExchangeCalendar` schedules come from from now on (``None``: in-process).

    Schedules already cached stay; only years not loaded yet are asked of ``source``."""
    global _session_source
    _session_source = source


class ExchangeCalendar(MarketCalendar):
    """A calendar backed by ``pandas_market_calendars``, cached per span of years."""

    def __init__(self, name: str, library_name: str) -> None:
        self.library_name = library_name
        tz = _LIBRARY_TIME_ZONES.get(library_name)
        super().__init__(name, ZoneInfo(tz if tz is not None else str(self._library.tz)))
        self._lock = threading.Lock()
        self._schedule: _Schedule | None = None

    @functools.cached_property
    def _library(self) -> Any:
        """The library's calendar: imported (pandas and all, ~55 MB) only when first used."""
        import pandas_market_calendars as mcal

        return mcal.get_calendar(self.library_name)

    # -- schedule cache ----------------------------------------------------------------------

    def _load(self, lo_year: int, hi_year: int) -> list[Session]:
        """Sessions named in years ``lo_year`` .. ``hi_year``: from the session source when one
        is set (:func:`set_session_source`) and it delivers, else from the library here."""
        source = _session_source
        if source is not None:
            sessions = source.sessions(self.name, lo_year, hi_year)
            if sessions is not None:
                return sessions
        return self.load_in_process(lo_year, hi_year)

    def load_in_process(self, lo_year: int, hi_year: int) -> list[Session]:
        """Sessions named in years ``lo_year`` .. ``hi_year`` from the library, in this process
        (one call; bot.calendar_library)."""
        from bot.calendar_library import load_sessions

        return load_sessions(self._library, lo_year, hi_year, Session)

    def _ensure_years(self, lo_year: int, hi_year: int) -> _Schedule:
        """The cached schedule, first extended (one library call per side) to cover the years."""
        lo_year = max(lo_year, _MIN_YEAR)
        hi_year = min(hi_year, _MAX_YEAR)
        current = self._schedule
        if current is not None and current.lo_year <= lo_year and hi_year <= current.hi_year:
            return current
        with self._lock:
            current = self._schedule
            if current is None:
                snapshot = _Schedule(lo_year, hi_year, self._load(lo_year, hi_year))
            else:
                sessions = list(current.sessions)
                new_lo, new_hi = min(lo_year, current.lo_year), max(hi_year, current.hi_year)
                if new_lo < current.lo_year:
                    sessions = self._load(new_lo, current.lo_year - 1) + sessions
                if new_hi > current.hi_year:
                    sessions = sessions + self._load(current.hi_year + 1, new_hi)
                snapshot = _Schedule(new_lo, new_hi, sessions)
            # Readers take the snapshot reference once, so swapping it needs no read lock.
            self._schedule = snapshot
            return snapshot

    def _around(self, moment: datetime) -> _Schedule:
        return self._ensure_years((moment - _MARGIN).year, (moment + _MARGIN).year)

    # -- questions ---------------------------------------------------------------------------

    def session_at(self, moment: datetime) -> Session | None:
        moment = _utc(moment)
        sched = self._around(moment)
        i = bisect.bisect_right(sched.closes, moment)  # first session still open after moment
        if i < len(sched.sessions) and sched.sessions[i].open <= moment:
            return sched.sessions[i]
        return None

    def is_open(self, moment: datetime) -> bool:
        moment = _utc(moment)
        sched = self._around(moment)
        i = bisect.bisect_right(sched.window_starts, moment) - 1
        return i >= 0 and moment < sched.window_ends[i]

    def should_poll(self, moment: datetime, after_close: timedelta) -> bool:
        _non_negative(after_close, "after_close")
        moment = _utc(moment)
        sched = self._around(moment)
        # Trading windows are disjoint and sorted; the latest one started decides.
        i = bisect.bisect_right(sched.window_starts, moment) - 1
        return i >= 0 and moment < sched.window_ends[i] + after_close

    def next_poll_time(self, after: datetime, after_close: timedelta) -> datetime:
        after = _utc(after)
        if self.should_poll(after, after_close):
            return after
        sched = self._around(after)
        while True:
            i = bisect.bisect_right(sched.window_starts, after)
            if i < len(sched.window_starts):
                return sched.window_starts[i]
            if sched.hi_year >= _MAX_YEAR:
                raise ValueError(f"calendar {self.name}: no session after {after.isoformat()}")
            sched = self._ensure_years(sched.lo_year, sched.hi_year + 1)

    def session_on(self, day: date) -> Session | None:
        sched = self._ensure_years(day.year, day.year)
        i = sched.index_by_date.get(day)
        return None if i is None else sched.sessions[i]

    def last_session_closed_by(self, moment: datetime) -> Session | None:
        moment = _utc(moment)
        sched = self._around(moment)
        i = bisect.bisect_right(sched.closes, moment) - 1
        return sched.sessions[i] if i >= 0 else None

    def sessions_between(self, start: date, end: date) -> list[Session]:
        if end < start:
            return []
        sched = self._ensure_years(start.year, end.year)
        lo = bisect.bisect_left(sched.ordinals, start.toordinal())
        hi = bisect.bisect_right(sched.ordinals, end.toordinal())
        return sched.sessions[lo:hi]


class AlwaysCalendar(MarketCalendar):
    """24/7: always open; each UTC day is a session ``[D 00:00, D+1 00:00)`` UTC."""

    def __init__(self) -> None:
        super().__init__("always", ZoneInfo("UTC"))

    @staticmethod
    def _session(day: date) -> Session:
        start = datetime.combine(day, time(0), UTC)
        return Session(day, start, start + timedelta(days=1))

    def is_open(self, moment: datetime) -> bool:
        _utc(moment)
        return True

    def should_poll(self, moment: datetime, after_close: timedelta) -> bool:
        _non_negative(after_close, "after_close")
        _utc(moment)
        return True

    def next_poll_time(self, after: datetime, after_close: timedelta) -> datetime:
        _non_negative(after_close, "after_close")
        return _utc(after)

    def session_on(self, day: date) -> Session | None:
        return self._session(day)

    def session_at(self, moment: datetime) -> Session | None:
        return self._session(_utc(moment).date())

    def last_session_closed_by(self, moment: datetime) -> Session | None:
        # The session of yesterday (UTC) closed at today's midnight, which is <= moment.
        return self._session(_utc(moment).date() - timedelta(days=1))

    def sessions_between(self, start: date, end: date) -> list[Session]:
        return [self._session(start + timedelta(days=n)) for n in range((end - start).days + 1)]


@functools.cache
def get_calendar(name: str) -> MarketCalendar:
    """The shared calendar called ``name`` (one of :data:`CALENDARS`)."""
    if name == "always":
        return AlwaysCalendar()
    library_name = _LIBRARY_NAMES.get(name)
    if library_name is None:
        raise UnknownCalendarError(name)
    return ExchangeCalendar(name, library_name)
