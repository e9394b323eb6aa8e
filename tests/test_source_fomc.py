"""The ``fomc`` source against the fake Fed site: feed, statement pages, calendar and its cache,
and the fast-polling hint."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.clock import FakeClock
from bot.config import SymbolConfig
from bot.errors import SourceError
from bot.fomc.calendar import Meeting
from bot.sources.fomc import FomcParams, FomcSource, parse_feed
from bot.store.sqlite import SqliteStore
from tests.fakes.fed import (
    CALENDAR_JSON,
    CALENDAR_PAGE,
    ERROR_PAGE,
    FedFake,
    calendar_json,
    calendar_page,
    cut_statement,
    feed_xml,
    statement_page,
)
from tests.fakes.yahoo import Reply

NY = ZoneInfo("America/New_York")
DAY = date(2025, 12, 10)
SPEC = SymbolConfig(source=["fed"], calendar="always")
OCT = date(2025, 10, 29)


def hold_page(day: date, lower: str, upper: str) -> str:
    return statement_page(
        day,
        [
            "The Committee decided to maintain the target range for the federal funds rate at "
            f"{lower} to {upper} percent."
        ],
    )


def link(day: date, base: str = "https://www.federalreserve.gov") -> str:
    return f"{base}/newsevents/pressreleases/monetary{day:%Y%m%d}a.htm"


@pytest.fixture
def fed(fed_fake: FedFake) -> FedFake:
    fed_fake.calendar(calendar_json([("2025-12", "9-10"), ("2026-04", "30-1")]))
    fed_fake.feed(
        feed_xml(
            [
                (
                    "Minutes of the Federal Open Market Committee",
                    link(date(2025, 11, 19)),
                    datetime(2025, 11, 19, 19, tzinfo=UTC),
                ),
                (
                    "Federal Reserve issues FOMC statement",
                    link(OCT),
                    datetime(2025, 10, 29, 18, tzinfo=UTC),
                ),
            ]
        )
    )
    fed_fake.publish(date(2025, 11, 19), statement_page(date(2025, 11, 19), ["Minutes."]))
    fed_fake.publish(OCT, hold_page(OCT, "3-3/4", "4"))
    fed_fake.not_yet(DAY)
    return fed_fake


def make_source(fed: FedFake, clock: FakeClock, store: SqliteStore | None = None) -> FomcSource:
    params = FomcParams(type="fomc", base_url=fed.base_url, attempts=1)
    source = FomcSource("fed", params, clock, sleep=lambda _s: None)
    if store is not None:
        source.attach_store(store)
    return source


def test_feed_with_bom_and_cdata() -> None:
    items = parse_feed(
        feed_xml([("FOMC statement", link(OCT), datetime(2025, 10, 29, 18, tzinfo=UTC))]).decode()
    )
    assert items == [("FOMC statement", link(OCT), datetime(2025, 10, 29, 18, tzinfo=UTC))]


def test_feed_statement_becomes_a_rate_observation(fed: FedFake) -> None:
    clock = FakeClock(datetime(2025, 11, 20, 9, tzinfo=NY))
    source = make_source(fed, clock)
    first = source.fetch_latest("FOMC", SPEC)
    assert (first.kind, first.session, first.fields) == ("rate", OCT, {"lower": 3.75, "upper": 4.0})
    assert first.detail is not None
    assert first.detail["time"] == "2025-10-29T18:00:00+00:00"  # the release: the feed's pubDate
    assert first.time == clock.now()  # stamped when read: newer than anything before it
    assert first.detail is not None and first.detail["decision"] == "hold"
    assert [m["decision_day"] for m in first.detail["meetings"]] == ["2025-12-10", "2026-05-01"]
    source.fetch_latest("FOMC", SPEC)
    # the minutes page (no decision) and the statement were each read once
    assert fed.statement_requests(date(2025, 11, 19)) == 1
    assert fed.statement_requests(OCT) == 1


def test_no_statement_yet_is_an_error(fed_fake: FedFake) -> None:
    fed_fake.calendar(calendar_json([("2025-12", "9-10")]))
    fed_fake.feed(feed_xml([]))
    source = make_source(fed_fake, FakeClock(datetime(2025, 11, 20, 9, tzinfo=NY)))
    with pytest.raises(SourceError, match="no FOMC statement seen yet"):
        source.fetch_latest("FOMC", SPEC)


def test_calendar_meeting_spanning_months_and_cache(fed: FedFake, tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "s.sqlite"))
    store.migrate()
    clock = FakeClock(datetime(2025, 11, 20, 9, tzinfo=NY))
    source = make_source(fed, clock, store)
    source.fetch_latest("FOMC", SPEC)
    assert Meeting(date(2026, 5, 1), date(2026, 4, 30), projections=False) in source.meetings
    source.fetch_latest("FOMC", SPEC)
    assert fed.count(CALENDAR_JSON) == 1  # checked daily, not every poll
    # a restart with the Fed's calendar down: the cached meetings are used
    fed.calendar("oops", status=500)
    fed.script(CALENDAR_PAGE, [Reply("oops", status=500)])
    again = make_source(fed, FakeClock(datetime(2025, 11, 22, 9, tzinfo=NY)), store)
    again.fetch_latest("FOMC", SPEC)
    assert date(2025, 12, 10) in [m.decision_day for m in again.meetings]
    assert fed.count(CALENDAR_JSON) == 2


def test_calendar_page_fallback(fed: FedFake) -> None:
    fed.calendar("<html>maintenance</html>", status=503)
    fed.calendar_page(calendar_page(2025, [("December", "9-10*"), ("Oct/Nov", "31-1")]))
    source = make_source(fed, FakeClock(datetime(2025, 11, 20, 9, tzinfo=NY)))
    source.fetch_latest("FOMC", SPEC)
    assert source.meetings == [
        Meeting(date(2025, 11, 1), date(2025, 10, 31), False),
        Meeting(date(2025, 12, 10), date(2025, 12, 9), True),
    ]


def test_fast_polling_hint_and_statement_page(fed: FedFake) -> None:
    """From 13:59 New York on a decision day the page is polled every 2 s: 404 is "not yet",
    an HTML error page is not a decision, the real page ends fast polling."""
    clock = FakeClock(datetime(2025, 12, 10, 9, 0, tzinfo=NY))
    source = make_source(fed, clock)
    source.fetch_latest("FOMC", SPEC)  # a morning poll: feed and calendar
    start = datetime(2025, 12, 10, 13, 59, tzinfo=NY)
    assert source.next_poll("FOMC", SPEC, clock.now()) == start
    clock.set(start)
    assert source.next_poll("FOMC", SPEC, clock.now()) == start  # due now
    feed_reads = fed.count("/feeds/press_monetary.xml")
    assert source.fetch_latest("FOMC", SPEC).session == OCT  # 404: the older one still
    assert fed.statement_requests(DAY) == 1
    assert fed.count("/feeds/press_monetary.xml") == feed_reads  # fast polls skip the feed
    assert source.next_poll("FOMC", SPEC, clock.now()) == start + timedelta(seconds=2)
    clock.advance(timedelta(seconds=2))
    fed.publish(DAY, ERROR_PAGE)
    assert source.fetch_latest("FOMC", SPEC).session == OCT
    clock.advance(timedelta(seconds=2))
    fed.publish(DAY, statement_page(DAY, cut_statement(DAY), release="2:00 p.m. EST"))
    found = source.fetch_latest("FOMC", SPEC)
    assert (found.session, found.fields) == (DAY, {"lower": 3.5, "upper": 3.75})
    assert found.detail is not None and found.detail["bp"] == -25
    assert found.time == min(clock.now(), datetime(2025, 12, 10, 14, tzinfo=NY))
    assert source.next_poll("FOMC", SPEC, clock.now()) is None  # found: back to normal


def test_fast_polling_gives_up_after_fast_for(fed: FedFake) -> None:
    clock = FakeClock(datetime(2025, 12, 10, 16, 1, tzinfo=NY))
    source = make_source(fed, clock)
    source.fetch_latest("FOMC", SPEC)
    assert source.next_poll("FOMC", SPEC, clock.now()) is None
    clock.set(datetime(2025, 12, 11, 13, 59, tzinfo=NY))  # no meeting that day
    assert source.next_poll("FOMC", SPEC, clock.now()) is None


def test_unscheduled_decision_arrives_through_the_feed(fed: FedFake) -> None:
    """The Sunday 2020-03-15 cut style: not on the calendar, 5 p.m. release, found in the feed."""
    sunday = date(2025, 11, 16)
    fed.feed(
        feed_xml(
            [
                (
                    "Federal Reserve issues FOMC statement",
                    link(sunday),
                    datetime(2025, 11, 16, 22, tzinfo=UTC),
                )
            ]
        )
    )
    fed.publish(
        sunday,
        statement_page(
            sunday,
            [
                "The Committee decided to lower the target range for the federal funds rate to "
                "3-1/4 to 3-1/2 percent."
            ],
            release="5:00 p.m. EST",
        ),
    )
    source = make_source(fed, FakeClock(datetime(2025, 11, 16, 17, 5, tzinfo=NY)))
    found = source.fetch_latest("FOMC", SPEC)
    assert found.session == sunday and found.detail is not None
    assert found.detail["decision"] == "cut"


def test_feed_link_whose_page_is_not_up_yet_is_asked_again(fed: FedFake) -> None:
    nov = date(2025, 11, 20)
    fed.feed(
        feed_xml(
            [
                (
                    "Federal Reserve issues FOMC statement",
                    link(nov),
                    datetime(2025, 11, 20, 19, tzinfo=UTC),
                )
            ]
        )
    )
    fed.not_yet(nov)
    source = make_source(fed, FakeClock(datetime(2025, 11, 20, 14, 1, tzinfo=NY)))
    with pytest.raises(SourceError):
        source.fetch_latest("FOMC", SPEC)  # the feed was quicker than the page
    fed.publish(nov, hold_page(nov, "3-3/4", "4"))
    assert source.fetch_latest("FOMC", SPEC).session == nov


def test_first_start_inside_the_fast_window_reads_the_feed_too(fed: FedFake) -> None:
    source = make_source(fed, FakeClock(datetime(2025, 12, 10, 13, 59, 30, tzinfo=NY)))
    assert source.fetch_latest("FOMC", SPEC).session == OCT  # the latest known decision
    assert fed.statement_requests(DAY) == 1  # and the page of the day was asked for


def test_an_error_page_is_warned_about_once(fed: FedFake, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(datetime(2025, 12, 10, 13, 59, 30, tzinfo=NY))
    source = make_source(fed, clock)
    fed.publish(DAY, ERROR_PAGE)
    with caplog.at_level("DEBUG", logger="bot.sources.fomc"):
        for _ in range(5):
            source.fetch_latest("FOMC", SPEC)
            clock.advance(timedelta(seconds=2))
    warnings = [
        r for r in caplog.records if r.levelname == "WARNING" and "no rate decision" in r.message
    ]
    assert len(warnings) == 1
    assert fed.statement_requests(DAY) == 5  # still polled every time


def test_a_calendar_change_restamps_the_observation(fed: FedFake) -> None:
    """Rules that keep the calendar (fomc_reminder, rate_odds) only see an observation newer
    than the last: a changed calendar moves its time; an unchanged one does not."""
    clock = FakeClock(datetime(2025, 11, 20, 9, tzinfo=NY))
    source = make_source(fed, clock)
    first = source.fetch_latest("FOMC", SPEC)
    clock.advance(timedelta(days=1, minutes=1))
    same = source.fetch_latest("FOMC", SPEC)  # calendar fetched again, unchanged
    assert same.time == first.time
    fed.calendar(calendar_json([("2025-12", "9-10"), ("2026-01", "27-28")]))
    clock.advance(timedelta(days=1, minutes=1))
    moved = source.fetch_latest("FOMC", SPEC)
    assert moved.time == clock.now() and moved.session == OCT
    assert moved.detail is not None
    assert [m["decision_day"] for m in moved.detail["meetings"]] == ["2025-12-10", "2026-01-28"]
    assert fed.count(CALENDAR_JSON) == 3
