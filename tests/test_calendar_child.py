"""Exchange sessions computed in a child process (bot.calendar_child) for the live worker:
the same sessions as in-process, no pandas in the parent, and every failure of the child
falls back to loading in-process with one warning.

The failing children are stand-ins run through the loader's ``command`` (the far side);
``pandas_market_calendars`` itself runs for real, in the child and in-process.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import calendars
from bot.calendar_child import ChildSessions, decode, encode, use_child_process
from bot.calendars import ExchangeCalendar, Session, get_calendar, set_session_source

ROOT = Path(__file__).resolve().parents[1]
NY = ZoneInfo("America/New_York")
CHICAGO = ZoneInfo("America/Chicago")
LIBRARY = {"XNYS": "XNYS", "CME": "CME_Equity"}


def fresh(name: str) -> ExchangeCalendar:
    """A calendar with nothing cached (get_calendar's are shared by every test)."""
    return ExchangeCalendar(name, LIBRARY[name])


def stand_in(code: str) -> list[str]:
    """A child command that runs ``code`` instead of bot.calendar_child."""
    return [sys.executable, "-c", code]


@pytest.fixture(autouse=True)
def _in_process_by_default() -> Iterator[None]:
    yield
    set_session_source(None)  # no test leaves child loading on for the next


@pytest.fixture(scope="module")
def in_process() -> dict[str, list[Session]]:
    return {name: fresh(name).load_in_process(2024, 2027) for name in LIBRARY}


def test_the_time_zone_table_is_the_librarys() -> None:
    import pandas_market_calendars as mcal

    for library_name, tz in calendars._LIBRARY_TIME_ZONES.items():
        assert str(mcal.get_calendar(library_name).tz) == tz
    assert set(calendars._LIBRARY_TIME_ZONES) == set(calendars._LIBRARY_NAMES.values())


def test_child_sessions_equal_in_process_sessions_for_xnys_and_cme(
    in_process: dict[str, list[Session]],
) -> None:
    source = ChildSessions()
    source.prefetch(["XNYS", "CME"], 2024, 2027)
    for name in LIBRARY:
        got = source.sessions(name, 2024, 2027)
        assert got == in_process[name], name
    assert not source.failed
    # what is compared: early closes and breaks as the exchanges publish them
    xnys = {s.date: s for s in in_process["XNYS"]}
    cme = {s.date: s for s in in_process["CME"]}
    after_thanksgiving = xnys[date(2024, 11, 29)]
    assert after_thanksgiving.close == datetime(2024, 11, 29, 13, 0, tzinfo=NY)
    assert xnys[date(2027, 11, 26)].close == datetime(2027, 11, 26, 13, 0, tzinfo=NY)
    assert date(2025, 1, 9) not in xnys  # the day of mourning
    black_friday = cme[date(2024, 11, 29)]  # opens Thursday evening, halts at noon
    assert black_friday.open == datetime(2024, 11, 28, 17, 0, tzinfo=CHICAGO)
    assert black_friday.close == datetime(2024, 11, 29, 12, 0, tzinfo=CHICAGO)
    monday = cme[date(2025, 3, 10)]
    assert monday.open == datetime(2025, 3, 9, 17, 0, tzinfo=CHICAGO)
    assert monday.close == datetime(2025, 3, 10, 16, 0, tzinfo=CHICAGO)
    # since mid-2021 the library gives CME a zero-length break: no pause (breaks: below)
    assert all(s.break_start is None for s in in_process["CME"])
    for name in LIBRARY:  # a span inside the prefetched one is a slice, no new child
        inner = source.sessions(name, 2025, 2025)
        assert inner == [s for s in in_process[name] if s.date.year == 2025]


def test_child_sessions_keep_the_cme_breaks_of_2020_and_2021() -> None:
    """CME's daily 15:15–15:30 Chicago pause (until mid-2021) survives the trip."""
    source = ChildSessions()
    source.prefetch(["CME"], 2020, 2021)
    expected = fresh("CME").load_in_process(2020, 2021)
    assert source.sessions("CME", 2020, 2021) == expected
    paused = [s for s in expected if s.break_start is not None]
    assert 300 < len(paused) < len(expected)
    first = paused[0]
    assert first.break_start == datetime(2020, 1, 2, 15, 15, tzinfo=CHICAGO)
    assert first.break_end == datetime(2020, 1, 2, 15, 30, tzinfo=CHICAGO)


def test_a_calendar_asks_its_years_of_the_source_and_answers_the_same(
    in_process: dict[str, list[Session]],
) -> None:
    source = ChildSessions()
    source.prefetch(["XNYS", "CME"], 2024, 2027)
    set_session_source(source)
    for name in LIBRARY:
        through_child, here = fresh(name), ExchangeCalendar(name, LIBRARY[name])
        set_session_source(None)
        expected = here.sessions_between(date(2024, 1, 1), date(2027, 12, 31))
        set_session_source(source)
        assert through_child.sessions_between(date(2024, 1, 1), date(2027, 12, 31)) == expected
        after_the_half_day = datetime(2024, 11, 29, 18, 5, tzinfo=UTC)  # 13:05 New York
        for minutes in range(0, 4 * 24 * 60, 5):
            moment = after_the_half_day + timedelta(minutes=minutes)
            assert through_child.should_poll(moment, timedelta(minutes=20)) == (
                here.should_poll(moment, timedelta(minutes=20))
            )
            assert through_child.next_poll_time(moment, timedelta(0)) == (
                here.next_poll_time(moment, timedelta(0))
            )
        assert "_library" not in vars(through_child)  # the library never loaded
    assert source.failed is False


def test_years_outside_the_prefetch_come_from_a_child_of_their_own(
    in_process: dict[str, list[Session]],
) -> None:
    source = ChildSessions()
    source.prefetch(["XNYS"], 2025, 2025)
    assert source.sessions("XNYS", 2025, 2025) == [
        s for s in in_process["XNYS"] if s.date.year == 2025
    ]
    # CME was not prefetched, 2026 not for XNYS either
    assert source.sessions("CME", 2024, 2024) == [
        s for s in in_process["CME"] if s.date.year == 2024
    ]
    assert source.sessions("XNYS", 2025, 2026) == [
        s for s in in_process["XNYS"] if s.date.year in (2025, 2026)
    ]
    assert not source.failed


def test_the_parent_never_imports_pandas() -> None:
    """A subprocess probe: the worker's modules, child loading, sessions asked (as the first
    poll does) — and neither pandas nor the calendar library in the parent."""
    code = """
import sys
from datetime import UTC, date, datetime, timedelta
import bot.app, bot.scheduler, bot.worker
from bot.calendar_child import use_child_process
from bot.calendars import get_calendar
source = use_child_process(["XNYS", "CME", "always"], datetime(2025, 11, 20, tzinfo=UTC))
xnys, cme = get_calendar("XNYS"), get_calendar("CME")
friday = xnys.session_on(date(2025, 11, 28))
print("CLOSE:" + friday.close.isoformat())
print("POLL:" + str(cme.should_poll(datetime(2025, 11, 24, 15, tzinfo=UTC), timedelta(0))))
new_year = xnys.next_poll_time(datetime(2025, 12, 31, 23, tzinfo=UTC), timedelta(0))
print("NEXT:" + new_year.isoformat())
heavy = ("pandas", "pandas_market_calendars", "exchange_calendars", "numpy")
print("HEAVY:" + ",".join(m for m in heavy if m in sys.modules))
print("FAILED:" + str(source.failed))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = dict(line.split(":", 1) for line in done.stdout.splitlines() if ":" in line)
    assert out["HEAVY"] == ""
    assert out["FAILED"] == "False"
    assert out["CLOSE"] == "2025-11-28T18:00:00+00:00"  # 13:00 New York, the half day
    assert out["POLL"] == "True"
    assert out["NEXT"] == "2026-01-02T14:30:00+00:00"  # New Year's Day closed


# -- failures: one warning, then in-process ----------------------------------------------------


@pytest.mark.parametrize(
    ("code", "timeout", "what"),
    [
        ("import sys; print('boom', file=sys.stderr); sys.exit(3)", 30.0, "exit status 3: boom"),
        ("print('<html>garbage</html>')", 30.0, "unreadable output"),
        ('print(\'{"format": 1, "lo": 1999, "hi": 1999, "calendars": {}}\')', 30.0, "years"),
        ("import time; time.sleep(60)", 0.5, "no answer within 0.5 s"),
    ],
    ids=["exit-non-zero", "garbage", "wrong-answer", "hangs"],
)
def test_a_failing_child_falls_back_to_in_process_with_one_warning(
    code: str,
    timeout: float,
    what: str,
    caplog: pytest.LogCaptureFixture,
    in_process: dict[str, list[Session]],
) -> None:
    source = ChildSessions(stand_in(code), timeout=timeout)
    source.prefetch(["XNYS", "CME"], 2024, 2027)
    set_session_source(source)
    calendar = fresh("XNYS")
    with caplog.at_level(logging.WARNING, logger="bot.calendar_child"):
        got = calendar.sessions_between(date(2024, 1, 1), date(2027, 12, 31))
        cme = fresh("CME").sessions_between(date(2024, 1, 1), date(2027, 12, 31))
    assert got == in_process["XNYS"]  # nothing lost
    assert cme == in_process["CME"]
    assert source.failed
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert "CME, XNYS" in message and what in message, message
    assert "loading them in this process" in message


def test_the_child_is_not_given_the_bots_secrets(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """It computes calendars only: the bot token and the database URL (whose password a
    crashing child could print into the warning) stay out of its environment."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:SECRET-token")
    monkeypatch.setenv("DATABASE_URL", "postgresql://bot:hunter2@db/bot")
    code = (
        "import os, sys; print(os.environ.get('TELEGRAM_BOT_TOKEN'), "
        "os.environ.get('DATABASE_URL'), file=sys.stderr); sys.exit(1)"
    )
    source = ChildSessions(stand_in(code))
    with caplog.at_level(logging.WARNING, logger="bot.calendar_child"):
        source.prefetch(["XNYS"], 2025, 2025)
        assert source.sessions("XNYS", 2025, 2025) is None
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "exit status 1: None None" in warning, warning


def test_a_child_that_cannot_start_falls_back(
    caplog: pytest.LogCaptureFixture, in_process: dict[str, list[Session]]
) -> None:
    source = ChildSessions(["/nonexistent/python3"])
    with caplog.at_level(logging.WARNING, logger="bot.calendar_child"):
        source.prefetch(["XNYS"], 2024, 2027)
        assert source.sessions("XNYS", 2024, 2027) is None
    set_session_source(source)
    assert (
        fresh("XNYS").sessions_between(date(2024, 1, 1), date(2027, 12, 31)) == (in_process["XNYS"])
    )
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "calendar XNYS" in warning and "could not start" in warning


def test_a_hung_child_is_killed(caplog: pytest.LogCaptureFixture) -> None:
    source = ChildSessions(stand_in("import time; time.sleep(60)"), timeout=0.2)
    source.prefetch(["XNYS"], 2025, 2025)
    run = source._pending
    assert run is not None
    with caplog.at_level(logging.WARNING, logger="bot.calendar_child"):
        assert source.sessions("XNYS", 2025, 2025) is None
    assert run.proc.returncode is not None  # killed and reaped


def test_a_start_up_child_for_calendars_the_config_does_not_use_is_stopped() -> None:
    source = use_child_process(None, datetime(2025, 6, 1, tzinfo=UTC))
    run = source._pending
    assert run is not None and run.names == ["CME", "XNYS"] and (run.lo, run.hi) == (2024, 2026)
    source.keep_only(["always"])
    assert source._pending is None and run.proc.returncode is not None
    kept = use_child_process(["XNYS", "always"], datetime(2025, 6, 1, tzinfo=UTC))
    assert kept._pending is not None and kept._pending.names == ["XNYS"]
    kept.keep_only(["XNYS"])
    assert kept._pending is not None
    kept.close()
    assert kept._pending is None
    assert calendars._session_source is kept


def test_get_calendar_does_not_load_the_library() -> None:
    calendar = get_calendar("CME")
    assert str(calendar.tz) == "America/Chicago"
    assert str(fresh("XNYS").tz) == "America/New_York"
    assert "_library" not in vars(fresh("CME"))


# -- the format --------------------------------------------------------------------------------


def _session(day: date, hour: int) -> Session:
    opened = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return Session(day, opened, opened + timedelta(hours=6, seconds=0.5))


def test_encode_decode_round_trip() -> None:
    rows = [
        _session(date(2025, 1, 2), 14),
        Session(
            date(2025, 1, 3),
            datetime(2025, 1, 2, 23, tzinfo=UTC),
            datetime(2025, 1, 3, 22, tzinfo=UTC),
            datetime(2025, 1, 3, 21, tzinfo=UTC),
            datetime(2025, 1, 3, 21, 30, tzinfo=UTC),
        ),
    ]
    text = encode(2025, 2025, {"CME": rows, "XNYS": []})
    assert decode(text, ["CME", "XNYS"], 2025, 2025) == {"CME": rows, "XNYS": []}


@pytest.mark.parametrize(
    "payload",
    [
        {"format": 2, "lo": 2025, "hi": 2025, "calendars": {"XNYS": []}},
        {"format": 1, "lo": 2024, "hi": 2025, "calendars": {"XNYS": []}},
        {"format": 1, "lo": 2025, "hi": 2025, "calendars": {"CME": []}},
        {"format": 1, "lo": 2025, "hi": 2025, "calendars": {"XNYS": [["2025-01-02", 1, 2]]}},
        {
            "format": 1,
            "lo": 2025,
            "hi": 2025,
            "calendars": {"XNYS": [["2025-01-02", 2, 1, None, None]]},
        },
        {
            "format": 1,
            "lo": 2025,
            "hi": 2025,
            "calendars": {"XNYS": [["2026-01-02", 1, 2, None, None]]},
        },
        {
            "format": 1,
            "lo": 2025,
            "hi": 2025,
            "calendars": {"XNYS": [["2025-01-02", "1", 2, None, None]]},
        },
        {
            "format": 1,
            "lo": 2025,
            "hi": 2025,
            "calendars": {
                "XNYS": [["2025-01-03", 5, 6, None, None], ["2025-01-02", 1, 2, None, None]]
            },
        },
        [1, 2, 3],
    ],
    ids=[
        "format",
        "years",
        "calendar-missing",
        "short-row",
        "close-before-open",
        "other-year",
        "time-as-text",
        "out-of-order",
        "not-an-object",
    ],
)
def test_decode_refuses_anything_but_the_answer(payload: object) -> None:
    with pytest.raises(ValueError):
        decode(json.dumps(payload), ["XNYS"], 2025, 2025)
