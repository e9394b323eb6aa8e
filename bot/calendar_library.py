"""Sessions from ``pandas_market_calendars``, computed in this process.

What :class:`bot.calendars.ExchangeCalendar` loads by default and what the calendar child
(bot.calendar_child) runs for the live worker. Importing this module is light; the functions
import pandas (through the library calendar they are given).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

# bot.calendars.Session, given by the caller (that module imports this one)
S = TypeVar("S")


def trading_days(library: Any, lo_year: int, hi_year: int) -> Any:
    """The library's trading days of years ``lo_year`` .. ``hi_year``, from its own rules.

    ``MarketCalendar.schedule()`` first materialises every holiday of the calendar's whole
    range (NYSE: 1885–2200, ~0.2 s) whatever span is asked; the same public rules
    (``regular_holidays``, ``adhoc_holidays``, ``weekmask``) evaluated for the span only
    give the same days (tests/test_calendars.py compares them) at a fraction of the cost.
    """
    import pandas as pd

    start = pd.Timestamp(f"{lo_year}-01-01")
    end = pd.Timestamp(f"{hi_year}-12-31")
    # A margin on both sides, so a holiday observed across a year boundary (New Year's
    # Day on a Saturday, observed on Friday 31 December) is not lost at the edge.
    pad = pd.Timedelta(days=31)
    holidays: list[Any] = []
    regular = library.regular_holidays
    if regular is not None:
        # Within the holiday calendar's own bounds, as the library's full list is (pandas'
        # default 1970–2200 for CME: no holidays before 1970 there either).
        lo = max(start - pad, pd.Timestamp(regular.start_date))
        hi = min(end + pad, pd.Timestamp(regular.end_date))
        if lo <= hi:
            holidays.extend(regular.holidays(lo, hi))
    for day in map(pd.Timestamp, library.adhoc_holidays):
        if day.tzinfo is not None:  # some calendars list them at midnight UTC
            day = day.tz_localize(None)
        if start - pad <= day <= end + pad:
            holidays.append(day)
    return pd.bdate_range(start, end, freq="C", weekmask=library.weekmask, holidays=holidays)


def _stamps(column: Any) -> list[datetime | None]:
    """A datetime column as UTC datetimes (``None`` where missing)."""
    # Whole-column conversion: integer seconds since the epoch, then one
    # ``fromtimestamp`` per value — ten times cheaper than ``Timestamp.to_pydatetime``.
    mask = column.isna().to_numpy()
    nanos = column.to_numpy(dtype="datetime64[ns]").astype("int64").tolist()
    return [
        None
        if missing
        else datetime.fromtimestamp(ns / 1e9, UTC)
        if ns % 1_000_000_000
        else datetime.fromtimestamp(ns // 1_000_000_000, UTC)
        for ns, missing in zip(nanos, mask.tolist(), strict=True)
    ]


def load_sessions(
    library: Any,
    lo_year: int,
    hi_year: int,
    session: Callable[[date, datetime, datetime, datetime | None, datetime | None], S],
) -> list[S]:
    """Sessions named in years ``lo_year`` .. ``hi_year`` of a library calendar (one call),
    each made by ``session(date, open, close, break_start, break_end)``."""
    import pandas as pd

    days = trading_days(library, lo_year, hi_year)
    if not len(days):
        return []
    frame = library.schedule_from_days(days)
    opens = _stamps(frame["market_open"])
    closes = _stamps(frame["market_close"])
    if "break_start" in frame.columns and "break_end" in frame.columns:
        b_starts, b_ends = _stamps(frame["break_start"]), _stamps(frame["break_end"])
    else:
        b_starts = b_ends = [None] * len(frame)
    labels = [day.date() for day in pd.DatetimeIndex(frame.index)]
    sessions = []
    for label, opened, closed, b0, b1 in zip(labels, opens, closes, b_starts, b_ends, strict=True):
        assert opened is not None and closed is not None  # every trading day opens and closes
        break_start = break_end = None
        # The library repeats the regular break on early-close days (at or after the close)
        # and since 2021 gives CME a zero-length one; only a real pause counts.
        if b0 is not None and b1 is not None and opened < b0 < b1 and b0 < closed:
            break_start, break_end = b0, min(b1, closed)
        sessions.append(session(label, opened, closed, break_start, break_end))
    return sessions
