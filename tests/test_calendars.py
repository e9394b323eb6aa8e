"""Exchange calendars: holidays, early closes, DST, CME sessions, polling windows.

Expected times are written by hand in New York local time (what the exchanges publish), so
these tests check the library's data and our use of it rather than repeating the library.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.calendars import (
    CALENDARS,
    AlwaysCalendar,
    ExchangeCalendar,
    MarketCalendar,
    Session,
    UnknownCalendarError,
    get_calendar,
)
from bot.clock import FakeClock

NY = ZoneInfo("America/New_York")
AFTER = timedelta(minutes=20)
SETTLE = timedelta(minutes=10)


def ny(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    """A New York wall-clock time as UTC."""
    return datetime(y, m, d, hh, mm, tzinfo=NY).astimezone(UTC)


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


@pytest.fixture(scope="module")
def xnys() -> MarketCalendar:
    return get_calendar("XNYS")


@pytest.fixture(scope="module")
def cme() -> MarketCalendar:
    return get_calendar("CME")


# -- names ------------------------------------------------------------------------------------


def test_calendar_names_are_what_config_validates_against() -> None:
    assert "XNYS" in CALENDARS and "CME" in CALENDARS and "always" in CALENDARS
    assert ", ".join(CALENDARS) == "always, XNYS, CME"
    for name in CALENDARS:
        assert get_calendar(name).name == name


def test_get_calendar_is_cached() -> None:
    assert get_calendar("XNYS") is get_calendar("XNYS")
    assert get_calendar("CME") is get_calendar("CME")


def test_unknown_calendar_is_a_typed_error_listing_known_names() -> None:
    with pytest.raises(UnknownCalendarError, match=r"'LSE'.*always, XNYS, CME") as info:
        get_calendar("LSE")
    assert info.value.name == "LSE"
    assert isinstance(info.value, ValueError)


def test_naive_datetimes_and_negative_windows_are_refused(xnys: MarketCalendar) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        xnys.is_open(datetime(2025, 3, 10, 14, 0))
    with pytest.raises(ValueError, match="after_close"):
        xnys.should_poll(utc(2025, 3, 10, 14), timedelta(minutes=-1))
    with pytest.raises(ValueError, match="settle"):
        xnys.close_is_final(date(2025, 3, 10), utc(2025, 3, 11), timedelta(seconds=-1))
    with pytest.raises(ValueError, match="timezone-aware"):
        get_calendar("always").is_open(datetime(2025, 3, 10, 14, 0))


def test_any_timezone_is_accepted_and_results_are_utc(xnys: MarketCalendar) -> None:
    tokyo = datetime(2025, 3, 10, 23, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 14:00 UTC
    assert xnys.is_open(tokyo)
    session = xnys.session_at(tokyo)
    assert session is not None and session.open.utcoffset() == timedelta(0)
    assert xnys.next_poll_time(ny(2025, 3, 8, 12), AFTER).utcoffset() == timedelta(0)


# -- Thanksgiving 2024 ------------------------------------------------------------------------


def test_thanksgiving_2024_nyse_closed(xnys: MarketCalendar) -> None:
    assert xnys.session_on(date(2024, 11, 28)) is None
    assert not xnys.is_trading_day(date(2024, 11, 28))
    for hour in (9, 10, 12, 15):
        moment = ny(2024, 11, 28, hour, 45)
        assert not xnys.is_open(moment)
        assert not xnys.should_poll(moment, AFTER)
    # Wednesday's close is the last one before the holiday, Friday opens as usual.
    last = xnys.last_session_closed_by(ny(2024, 11, 28, 12))
    assert last is not None and last.date == date(2024, 11, 27)
    assert xnys.next_poll_time(ny(2024, 11, 27, 16, 20), AFTER) == ny(2024, 11, 29, 9, 30)


def test_thanksgiving_2024_cme_early_halt(cme: MarketCalendar) -> None:
    # The Thanksgiving session runs from Wednesday 18:00 to the early halt Thursday 13:00 NY
    # (12:00 Chicago); trading resumes Thursday 18:00 NY for Friday's session.
    session = cme.session_on(date(2024, 11, 28))
    assert session == Session(date(2024, 11, 28), ny(2024, 11, 27, 18), ny(2024, 11, 28, 13))
    assert cme.is_open(ny(2024, 11, 28, 12, 59))
    assert not cme.is_open(ny(2024, 11, 28, 13, 0))
    assert not cme.is_open(ny(2024, 11, 28, 17, 59))
    assert cme.is_open(ny(2024, 11, 28, 18, 0))
    friday = cme.session_at(ny(2024, 11, 28, 18, 0))
    assert friday is not None and friday.date == date(2024, 11, 29)
    assert friday.close == ny(2024, 11, 29, 13, 0)  # Friday's early halt
    assert cme.next_poll_time(ny(2024, 11, 28, 13, 30), AFTER) == ny(2024, 11, 28, 18)


def test_black_friday_2024_nyse_closes_at_13(xnys: MarketCalendar) -> None:
    session = xnys.session_on(date(2024, 11, 29))
    assert session is not None
    assert session.open == ny(2024, 11, 29, 9, 30)
    assert session.close == ny(2024, 11, 29, 13, 0) == utc(2024, 11, 29, 18, 0)
    assert xnys.is_open(ny(2024, 11, 29, 12, 59))
    assert not xnys.is_open(ny(2024, 11, 29, 13, 0))
    assert not xnys.is_open(ny(2024, 11, 29, 15, 0))
    # The after-close window follows the early close, not the regular 16:00.
    assert xnys.should_poll(ny(2024, 11, 29, 13, 19), AFTER)
    assert not xnys.should_poll(ny(2024, 11, 29, 13, 20), AFTER)
    assert not xnys.should_poll(ny(2024, 11, 29, 16, 5), AFTER)
    assert xnys.next_poll_time(ny(2024, 11, 29, 13, 20), AFTER) == ny(2024, 12, 2, 9, 30)


# -- 2025 -------------------------------------------------------------------------------------


def test_2025_01_09_nyse_closed_national_day_of_mourning(xnys: MarketCalendar) -> None:
    assert xnys.session_on(date(2025, 1, 9)) is None
    assert not xnys.is_open(ny(2025, 1, 9, 11))
    assert not xnys.should_poll(ny(2025, 1, 9, 11), AFTER)
    assert xnys.is_trading_day(date(2025, 1, 8)) and xnys.is_trading_day(date(2025, 1, 10))
    assert xnys.next_poll_time(ny(2025, 1, 8, 16, 20), AFTER) == ny(2025, 1, 10, 9, 30)
    last = xnys.last_session_closed_by(ny(2025, 1, 9, 23))
    assert last is not None and last.date == date(2025, 1, 8)


def test_2025_07_03_early_close_and_independence_day(xnys: MarketCalendar) -> None:
    session = xnys.session_on(date(2025, 7, 3))
    assert session is not None
    assert session.close == ny(2025, 7, 3, 13, 0) == utc(2025, 7, 3, 17, 0)
    assert xnys.is_open(ny(2025, 7, 3, 12, 59))
    assert not xnys.is_open(ny(2025, 7, 3, 13, 0))
    assert xnys.session_on(date(2025, 7, 4)) is None
    # Early close + after_close, then nothing until Monday's open.
    assert xnys.next_poll_time(ny(2025, 7, 3, 13, 20), AFTER) == ny(2025, 7, 7, 9, 30)


def test_march_2025_dst_switch_moves_nyse_hours_in_utc(xnys: MarketCalendar) -> None:
    friday = xnys.session_on(date(2025, 3, 7))
    monday = xnys.session_on(date(2025, 3, 10))
    assert friday is not None and monday is not None
    assert (friday.open, friday.close) == (utc(2025, 3, 7, 14, 30), utc(2025, 3, 7, 21, 0))
    assert (monday.open, monday.close) == (utc(2025, 3, 10, 13, 30), utc(2025, 3, 10, 20, 0))
    # Same wall-clock hours in New York.
    assert monday.open == ny(2025, 3, 10, 9, 30)
    assert not xnys.is_open(utc(2025, 3, 10, 13, 29))
    assert xnys.is_open(utc(2025, 3, 10, 13, 30))
    assert xnys.next_poll_time(utc(2025, 3, 8, 12), AFTER) == utc(2025, 3, 10, 13, 30)


def test_november_2025_dst_switch_moves_nyse_hours_in_utc(xnys: MarketCalendar) -> None:
    friday = xnys.session_on(date(2025, 10, 31))
    monday = xnys.session_on(date(2025, 11, 3))
    assert friday is not None and monday is not None
    assert (friday.open, friday.close) == (utc(2025, 10, 31, 13, 30), utc(2025, 10, 31, 20, 0))
    assert (monday.open, monday.close) == (utc(2025, 11, 3, 14, 30), utc(2025, 11, 3, 21, 0))
    assert not xnys.is_open(utc(2025, 11, 3, 13, 30))  # would be open with a stale offset
    assert xnys.is_open(utc(2025, 11, 3, 14, 30))
    assert xnys.close_is_final(date(2025, 11, 3), utc(2025, 11, 3, 21, 10), SETTLE)
    assert not xnys.close_is_final(date(2025, 11, 3), utc(2025, 11, 3, 20, 10), SETTLE)


def test_cme_sunday_evening_open_on_the_march_2025_dst_day(cme: MarketCalendar) -> None:
    # Clocks went forward at 02:00 that Sunday, so 18:00 New York is already EDT (UTC-4).
    assert not cme.is_open(ny(2025, 3, 8, 12))  # Saturday
    assert not cme.is_open(utc(2025, 3, 9, 21, 59))
    assert cme.is_open(utc(2025, 3, 9, 22, 0))
    assert ny(2025, 3, 9, 18) == utc(2025, 3, 9, 22)
    assert cme.next_poll_time(ny(2025, 3, 7, 17, 20), AFTER) == utc(2025, 3, 9, 22, 0)
    session = cme.session_at(utc(2025, 3, 9, 22, 0))
    assert session is not None and session.date == date(2025, 3, 10)  # named after Monday
    assert session.close == ny(2025, 3, 10, 17) == utc(2025, 3, 10, 21)
    assert cme.session_on(date(2025, 3, 9)) is None  # no session is named Sunday


def test_cme_sunday_evening_open_on_the_november_2025_dst_day(cme: MarketCalendar) -> None:
    assert not cme.is_open(utc(2025, 11, 2, 22, 0))  # 17:00 EST: still closed
    assert cme.is_open(utc(2025, 11, 2, 23, 0))
    assert (
        cme.next_poll_time(ny(2025, 11, 1, 9), AFTER) == ny(2025, 11, 2, 18) == utc(2025, 11, 2, 23)
    )


def test_cme_daily_break_17_to_18_new_york(cme: MarketCalendar) -> None:
    assert cme.is_open(ny(2024, 11, 26, 16, 59))
    assert not cme.is_open(ny(2024, 11, 26, 17, 0))
    assert not cme.is_open(ny(2024, 11, 26, 17, 59))
    assert cme.is_open(ny(2024, 11, 26, 18, 0))
    # The break is between two sessions: Tuesday's closes at 17:00, Wednesday's opens at 18:00.
    tuesday = cme.last_session_closed_by(ny(2024, 11, 26, 17, 30))
    assert tuesday is not None and tuesday.date == date(2024, 11, 26)
    wednesday = cme.session_at(ny(2024, 11, 26, 18, 0))
    assert wednesday is not None and wednesday.date == date(2024, 11, 27)
    assert cme.should_poll(ny(2024, 11, 26, 17, 19), AFTER)  # final print window
    assert not cme.should_poll(ny(2024, 11, 26, 17, 20), AFTER)
    assert cme.next_poll_time(ny(2024, 11, 26, 17, 20), AFTER) == ny(2024, 11, 26, 18, 0)


def test_cme_weekend_friday_17_to_sunday_18(cme: MarketCalendar) -> None:
    assert cme.is_open(ny(2025, 1, 17, 16, 59))
    assert not cme.is_open(ny(2025, 1, 17, 17, 0))
    assert not cme.is_open(ny(2025, 1, 18, 12))
    assert not cme.is_open(ny(2025, 1, 19, 17, 59))
    assert cme.is_open(ny(2025, 1, 19, 18, 0))
    last = cme.last_session_closed_by(ny(2025, 1, 19, 12))
    assert last is not None and last.date == date(2025, 1, 17)


def test_cme_across_new_year(cme: MarketCalendar) -> None:
    fresh = ExchangeCalendar("CME", "CME_Equity")  # nothing cached: must load both years
    assert fresh.next_poll_time(ny(2024, 12, 31, 17, 30), AFTER) == ny(2025, 1, 1, 18)
    assert fresh.session_on(date(2025, 1, 1)) is None
    session = fresh.session_at(ny(2025, 1, 1, 18))
    assert session is not None and session.date == date(2025, 1, 2)


# -- close_is_final ---------------------------------------------------------------------------


def test_close_is_final_only_after_the_early_close_plus_settle(xnys: MarketCalendar) -> None:
    day = date(2024, 11, 29)
    assert not xnys.close_is_final(day, ny(2024, 11, 29, 11, 0), SETTLE)  # trading
    assert not xnys.close_is_final(day, ny(2024, 11, 29, 13, 0), SETTLE)  # just closed
    assert not xnys.close_is_final(day, ny(2024, 11, 29, 13, 9), SETTLE)
    assert xnys.close_is_final(day, ny(2024, 11, 29, 13, 10), SETTLE)  # not 16:10
    assert xnys.close_is_final(day, ny(2024, 11, 29, 13, 0), timedelta(0))
    # A regular day needs the regular close.
    assert not xnys.close_is_final(date(2024, 11, 27), ny(2024, 11, 27, 16, 9), SETTLE)
    assert xnys.close_is_final(date(2024, 11, 27), ny(2024, 11, 27, 16, 10), SETTLE)


def test_close_is_final_for_cme_early_halt(cme: MarketCalendar) -> None:
    day = date(2024, 11, 28)
    assert not cme.close_is_final(day, ny(2024, 11, 28, 13, 5), SETTLE)
    assert cme.close_is_final(day, ny(2024, 11, 28, 13, 10), SETTLE)


def test_close_is_final_for_a_date_without_session(xnys: MarketCalendar) -> None:
    # Some sources still deliver a holiday row; it is final once that New York day is over.
    day = date(2024, 11, 28)
    assert not xnys.close_is_final(day, ny(2024, 11, 28, 23, 0), SETTLE)
    assert not xnys.close_is_final(day, ny(2024, 11, 29, 0, 9), SETTLE)
    assert xnys.close_is_final(day, ny(2024, 11, 29, 0, 10), SETTLE)


def test_close_is_never_final_for_a_future_session(xnys: MarketCalendar) -> None:
    assert not xnys.close_is_final(date(2025, 3, 10), utc(2025, 3, 7, 22), SETTLE)


# -- sessions_between / caching ---------------------------------------------------------------


def test_sessions_between_skips_weekends_and_holidays(xnys: MarketCalendar) -> None:
    days = [s.date for s in xnys.sessions_between(date(2024, 11, 25), date(2024, 12, 2))]
    assert days == [
        date(2024, 11, 25),
        date(2024, 11, 26),
        date(2024, 11, 27),
        date(2024, 11, 29),
        date(2024, 12, 2),
    ]
    across = [s.date for s in xnys.sessions_between(date(2024, 12, 23), date(2025, 1, 10))]
    assert date(2024, 12, 25) not in across and date(2025, 1, 1) not in across
    assert date(2025, 1, 9) not in across
    assert across[0] == date(2024, 12, 23) and across[-1] == date(2025, 1, 10)
    assert len(across) == 12
    assert xnys.sessions_between(date(2025, 1, 10), date(2025, 1, 1)) == []


def test_sessions_between_long_range_agrees_with_session_on(xnys: MarketCalendar) -> None:
    sessions = xnys.sessions_between(date(1990, 1, 1), date(2025, 12, 31))
    assert 36 * 245 < len(sessions) < 36 * 256
    assert all(a.date < b.date and a.close <= b.open for a, b in itertools.pairwise(sessions))
    assert sessions[0].date == date(1990, 1, 2)
    assert sessions[-1].date == date(2025, 12, 31)
    assert xnys.session_on(date(2001, 9, 11)) is None  # closed after the attacks
    assert xnys.session_on(date(2001, 9, 17)) is not None


def test_schedule_is_computed_once_per_span_of_years(monkeypatch: pytest.MonkeyPatch) -> None:
    calendar = ExchangeCalendar("XNYS", "XNYS")
    loads: list[tuple[int, int]] = []
    real_load = calendar._load

    def counting_load(lo: int, hi: int) -> list[Session]:
        loads.append((lo, hi))
        return real_load(lo, hi)

    monkeypatch.setattr(calendar, "_load", counting_load)
    moment = utc(2025, 6, 2, 12)
    for minute in range(0, 3 * 24 * 60, 7):
        calendar.should_poll(moment + timedelta(minutes=minute), AFTER)
        calendar.next_poll_time(moment + timedelta(minutes=minute), AFTER)
    assert loads == [(2025, 2025)]
    calendar.sessions_between(date(2020, 1, 1), date(2026, 12, 31))
    assert loads == [(2025, 2025), (2020, 2024), (2026, 2026)]  # only the missing years
    calendar.session_on(date(2021, 5, 5))
    calendar.is_open(utc(2022, 2, 2, 15))
    assert len(loads) == 3


def _library_sessions(calendar: ExchangeCalendar, start: str, end: str) -> dict[date, tuple]:
    """The library's own ``schedule()`` over a wide span (it builds every holiday it knows)."""
    frame = calendar._library.schedule(start_date=start, end_date=end)
    return {
        label.date(): (
            row.market_open.to_pydatetime().astimezone(UTC),
            row.market_close.to_pydatetime().astimezone(UTC),
        )
        for label, row in frame.iterrows()
    }


@pytest.mark.parametrize(
    ("name", "years"),
    [
        # year ends where New Year's Day falls on a weekend (observed or not), 9/11, the 2025
        # day of mourning; CME: its holiday rules start in 1970 (none before, as the library)
        ("XNYS", (1999, 2000, 2001, 2004, 2005, 2010, 2011, 2016, 2021, 2022, 2025)),
        ("CME", (1969, 1970, 2004, 2005, 2010, 2011, 2021, 2022, 2025)),
    ],
)
def test_range_limited_schedule_matches_the_library_full_schedule(
    name: str, years: tuple[int, ...]
) -> None:
    """Loading one year at a time (holidays evaluated for that span only) gives exactly the
    sessions of the library's full schedule, including the first and last days of the year."""
    library = _library_sessions(
        ExchangeCalendar(name, name if name == "XNYS" else "CME_Equity"),
        f"{years[0] - 1}-01-01",
        f"{years[-1] + 1}-12-31",
    )
    for year in years:
        calendar = ExchangeCalendar(name, name if name == "XNYS" else "CME_Equity")
        sessions = calendar.sessions_between(date(year, 1, 1), date(year, 12, 31))
        got = {s.date: (s.open, s.close) for s in sessions}
        want = {d: v for d, v in library.items() if d.year == year}
        assert got == want, year
        # boundary days: the last session of the year before and the first of the next one
        before = max(d for d in library if d.year == year - 1)
        after = min(d for d in library if d.year == year + 1)
        for day in (before, after):
            session = calendar.session_on(day)
            assert session is not None and (session.open, session.close) == library[day]


def test_a_narrow_run_loads_only_its_years_and_then_hits_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calendar = ExchangeCalendar("XNYS", "XNYS")
    loads: list[tuple[int, int]] = []
    real_load = calendar._load

    def counting_load(lo: int, hi: int) -> list[Session]:
        loads.append((lo, hi))
        return real_load(lo, hi)

    monkeypatch.setattr(calendar, "_load", counting_load)
    first = calendar.sessions_between(date(2024, 11, 1), date(2025, 3, 1))
    assert loads == [(2024, 2025)]
    again = calendar.sessions_between(date(2024, 11, 1), date(2025, 3, 1))
    calendar.session_on(date(2025, 1, 9))
    assert loads == [(2024, 2025)]  # cache hit: no second load
    assert again == first and first[0].date == date(2024, 11, 1)


# -- always -----------------------------------------------------------------------------------


def test_always_calendar_is_open_and_days_close_at_midnight_utc() -> None:
    always = get_calendar("always")
    assert isinstance(always, AlwaysCalendar)
    saturday_night = utc(2024, 11, 30, 23, 59)
    assert always.is_open(saturday_night)
    assert always.should_poll(saturday_night, AFTER)
    assert always.next_poll_time(saturday_night, AFTER) == saturday_night
    assert always.is_trading_day(date(2024, 11, 28))
    session = always.session_on(date(2024, 11, 28))
    assert session == Session(date(2024, 11, 28), utc(2024, 11, 28), utc(2024, 11, 29))
    assert not always.close_is_final(date(2024, 11, 28), utc(2024, 11, 29, 0, 9), SETTLE)
    assert always.close_is_final(date(2024, 11, 28), utc(2024, 11, 29, 0, 10), SETTLE)
    last = always.last_session_closed_by(utc(2024, 11, 29, 0, 0))
    assert last is not None and last.date == date(2024, 11, 28)
    at = always.session_at(utc(2024, 11, 29, 12))
    assert at is not None and at.date == date(2024, 11, 29)
    assert len(always.sessions_between(date(2024, 11, 25), date(2024, 12, 1))) == 7


# -- a simulated week -------------------------------------------------------------------------

WEEK_START = ny(2024, 11, 25, 0, 0)  # Monday before Thanksgiving
WEEK_END = ny(2024, 12, 3, 0, 0)  # through Monday 2024-12-02

# Trading windows as the exchanges publish them, New York time (start, end).
XNYS_WINDOWS = [
    (ny(2024, 11, 25, 9, 30), ny(2024, 11, 25, 16)),
    (ny(2024, 11, 26, 9, 30), ny(2024, 11, 26, 16)),
    (ny(2024, 11, 27, 9, 30), ny(2024, 11, 27, 16)),
    # Thursday: Thanksgiving, closed.
    (ny(2024, 11, 29, 9, 30), ny(2024, 11, 29, 13)),  # early close
    (ny(2024, 12, 2, 9, 30), ny(2024, 12, 2, 16)),
    (ny(2024, 12, 3, 9, 30), ny(2024, 12, 3, 16)),  # after the week; next_poll_time target
]
CME_WINDOWS = [
    (ny(2024, 11, 24, 18), ny(2024, 11, 25, 17)),
    (ny(2024, 11, 25, 18), ny(2024, 11, 26, 17)),
    (ny(2024, 11, 26, 18), ny(2024, 11, 27, 17)),
    (ny(2024, 11, 27, 18), ny(2024, 11, 28, 13)),  # Thanksgiving halt
    (ny(2024, 11, 28, 18), ny(2024, 11, 29, 13)),  # Friday early halt (library: 12:00 CT)
    # weekend
    (ny(2024, 12, 1, 18), ny(2024, 12, 2, 17)),
    (ny(2024, 12, 2, 18), ny(2024, 12, 3, 17)),
]


def _expected_poll(windows: list[tuple[datetime, datetime]], moment: datetime) -> bool:
    return any(start <= moment < end + AFTER for start, end in windows)


def _expected_next(windows: list[tuple[datetime, datetime]], moment: datetime) -> datetime:
    if _expected_poll(windows, moment):
        return moment
    return min(start for start, _ in windows if start > moment)


@pytest.mark.parametrize(("name", "windows"), [("XNYS", XNYS_WINDOWS), ("CME", CME_WINDOWS)])
def test_simulated_week_polls_exactly_inside_sessions(
    name: str, windows: list[tuple[datetime, datetime]]
) -> None:
    calendar = get_calendar(name)
    clock = FakeClock(WEEK_START)
    checked = polled = 0
    while clock.now() < WEEK_END:
        now = clock.now()
        expected = _expected_poll(windows, now)
        assert calendar.should_poll(now, AFTER) is expected, now
        assert calendar.is_open(now) is any(s <= now < e for s, e in windows), now
        assert calendar.next_poll_time(now, AFTER) == _expected_next(windows, now), now
        checked += 1
        polled += expected
        clock.advance(timedelta(minutes=1))
    assert checked == 8 * 24 * 60
    assert 0 < polled < checked


@pytest.mark.parametrize(("name", "windows"), [("XNYS", XNYS_WINDOWS), ("CME", CME_WINDOWS)])
def test_simulated_week_scheduler_sleeps_through_nights_weekend_and_holiday(
    name: str, windows: list[tuple[datetime, datetime]]
) -> None:
    """A scheduler loop: poll every minute while due, else jump to next_poll_time."""
    calendar = get_calendar(name)
    clock = FakeClock(WEEK_START)
    every = timedelta(minutes=1)
    polls: list[datetime] = []
    wakeups = 0
    while True:
        wake = calendar.next_poll_time(clock.now(), AFTER)
        if wake >= WEEK_END:
            break
        if wake != clock.now():
            wakeups += 1  # slept over a night, weekend or holiday
            clock.set(wake)
        polls.append(clock.now())
        clock.advance(every)
    expected = []
    moment = WEEK_START
    while moment < WEEK_END:
        if _expected_poll(windows, moment):
            expected.append(moment)
        moment += every
    assert polls == expected
    # One sleep before each window (the first CME window started before the week).
    assert wakeups == sum(1 for start, _ in windows if WEEK_START < start < WEEK_END)
    # Nothing at all on Thanksgiving for the cash market, nothing on Saturday for either.
    saturday = [p for p in polls if p.astimezone(NY).date() == date(2024, 11, 30)]
    assert saturday == []
    if name == "XNYS":
        assert not [p for p in polls if p.astimezone(NY).date() == date(2024, 11, 28)]
