"""The Fed's FOMC statements as they are published: ``type: fomc``.

* The press feed ``{base_url}/feeds/press_monetary.xml`` (UTF-8, maybe a BOM, CDATA links) is
  read on every ordinary poll: new statement pages it links (``…/monetaryYYYYMMDDa.htm``) are
  fetched and parsed. Unscheduled decisions (the Sunday 2020-03-15 cut) arrive this way.
* On a decision day, from ``fast_before`` ahead of the scheduled release (14:00 New York) until
  the statement is found (at most ``fast_for``), the dated statement page itself is polled every
  ``fast_every`` (404 means not yet). The source tells the worker through
  :meth:`Source.next_poll`, the generic "poll me again at" hook.
* The meeting calendar comes from ``{base_url}/json/calendar.json``, falling back to
  ``{base_url}/monetarypolicy/fomccalendars.htm``; it is cached in the store and checked every
  ``calendar_every``.

``fetch_latest`` returns the newest statement as a ``rate`` observation (``fields``: ``lower``,
``upper``; ``detail``: the parsed statement, its vote and dissents, and the next meetings), so
``rate_change``, ``fomc_reminder`` and ``rate_odds`` can use it.
"""

from __future__ import annotations

import logging
import re
import threading
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, time, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

from bot.config import ClockTime, Duration, SourceParams, SymbolConfig
from bot.errors import SourceError
from bot.fomc.calendar import (
    NEW_YORK,
    CalendarError,
    Meeting,
    fast_window,
    meeting_on,
    next_meetings,
    parse_calendar_json,
    parse_calendar_page,
)
from bot.fomc.parse import NoDecisionError, Statement, parse_statement
from bot.model import DailySeries, Observation
from bot.sources.base import SOURCES
from bot.sources.http import HttpSource, HttpSourceParams

log = logging.getLogger(__name__)

DEFAULT_FED_URL = "https://www.federalreserve.gov"
FEED_PATH = "/feeds/press_monetary.xml"
CALENDAR_JSON = "/json/calendar.json"
CALENDAR_PAGE = "/monetarypolicy/fomccalendars.htm"
_STATEMENT_LINK = re.compile(r"/newsevents/pressreleases/monetary(\d{8})a\.htm$")
_CACHE_KEY = "fomc:{name}"
_KEEP_STATEMENTS = 24  # three years of meetings: enough for "the range before" any new one


def statement_path(day: date) -> str:
    """The dated statement page of a decision day."""
    return f"/newsevents/pressreleases/monetary{day:%Y%m%d}a.htm"


class FomcParams(HttpSourceParams):
    """``type: fomc`` options."""

    fast_every: Duration = timedelta(seconds=2)
    """How often the statement page is polled around the scheduled release."""
    fast_before: Duration = timedelta(minutes=1)
    """Fast polling starts this long before the release."""
    fast_for: Duration = timedelta(hours=2)
    """…and stops this long after it if no statement appeared (a postponed release)."""
    release: ClockTime = time(14, 0)
    """Scheduled release time, New York."""
    calendar_every: Duration = timedelta(days=1)
    """How often the meeting calendar is fetched again."""


def parse_feed(raw: str) -> list[tuple[str, str, datetime | None]]:
    """``(title, link, pubDate)`` of each feed item, newest first as the feed lists them."""
    text = raw.lstrip("\ufeff").lstrip()
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"unreadable RSS: {exc}") from None
    items = []
    for item in root.iter("item"):
        title = (item.findtext("title") or "").strip()
        link = (item.findtext("link") or item.findtext("guid") or "").strip()
        stamp = (item.findtext("pubDate") or "").strip()
        try:
            published = parsedate_to_datetime(stamp).astimezone(UTC) if stamp else None
        except (TypeError, ValueError):
            published = None
        items.append((title, link, published))
    if root.find(".//channel") is None:
        raise ValueError("not an RSS feed (no channel)")
    return items


def release_time(statement: Statement, day: date, fallback: time) -> datetime:
    """When the statement was released: its "For release at 5:00 p.m. EDT" line, else the
    scheduled time."""
    at = fallback
    if statement.release:
        match = re.match(r"(\d{1,2}):(\d{2}) ([ap])", statement.release)
        if match:
            hour = int(match.group(1)) % 12 + (12 if match.group(3) == "p" else 0)
            at = time(hour, int(match.group(2)))
    return datetime.combine(day, at, NEW_YORK).astimezone(UTC)


@SOURCES.register("fomc")
class FomcSource(HttpSource):
    """FOMC statements (feed + fast page polling on decision days) and the meeting calendar."""

    type_name: ClassVar[str] = "fomc"
    params_model: ClassVar[type[SourceParams]] = FomcParams
    default_base_url: ClassVar[str] = DEFAULT_FED_URL
    daily_history: ClassVar[bool] = False  # decisions, not daily bars: FRED is the history

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        params = self.params
        self.fomc = params if isinstance(params, FomcParams) else FomcParams(type="fomc")
        self.store: Any = None
        self._lock = threading.Lock()
        self._loaded = False
        self.meetings: list[Meeting] = []
        self.calendar_checked: datetime | None = None
        #: when the fetched calendar last differed from the one before (the observation's time
        #: moves then, so rules that keep the calendar hear of it; see _observation)
        self.calendar_changed: datetime | None = None
        self.statements: dict[str, dict[str, Any]] = {}  # iso date → observation data
        self._not_decisions: set[str] = set()
        self._warned: set[str] = set()
        self._last_fetch: dict[str, datetime] = {}

    # ------------------------------------------------------------------ the cache

    def attach_store(self, store: Any) -> None:
        """Keep the calendar and the statements seen in ``store`` (survives restarts)."""
        self.store = store

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        cached = self.store.get_value(_CACHE_KEY.format(name=self.name)) if self.store else None
        if not cached:
            return
        self.meetings = [Meeting.from_json(m) for m in cached.get("meetings", [])]
        checked = cached.get("calendar_checked")
        self.calendar_checked = datetime.fromisoformat(checked) if checked else None
        changed = cached.get("calendar_changed")
        self.calendar_changed = datetime.fromisoformat(changed) if changed else None
        self.statements = dict(cached.get("statements", {}))

    def _save(self) -> None:
        if self.store is None:
            return
        keep = dict(sorted(self.statements.items())[-_KEEP_STATEMENTS:])
        self.statements = keep
        self.store.set_value(
            _CACHE_KEY.format(name=self.name),
            {
                "meetings": [m.to_json() for m in self.meetings],
                "calendar_checked": self.calendar_checked.isoformat()
                if self.calendar_checked
                else None,
                "calendar_changed": self.calendar_changed.isoformat()
                if self.calendar_changed
                else None,
                "statements": keep,
            },
        )

    # ------------------------------------------------------------------ calendar

    def refresh_calendar(self, symbol: str | None, now: datetime) -> None:
        """Fetch the calendar if the cached one is older than ``calendar_every``; a failure
        keeps the cached one (logged)."""
        if (
            self.calendar_checked is not None
            and now - self.calendar_checked < self.fomc.calendar_every
        ):
            return
        errors = []
        for path, parse in ((CALENDAR_JSON, parse_calendar_json), (CALENDAR_PAGE, None)):
            url = self.base_url + path
            try:
                text = self.http.get(url, symbol=symbol, accept_html=parse is None)
                meetings = (parse or parse_calendar_page)(text)
            except (SourceError, CalendarError) as exc:
                errors.append(f"{path}: {exc}")
                continue
            if meetings != self.meetings:
                self.meetings = meetings
                self.calendar_changed = now
            self.calendar_checked = now
            self._save()
            return
        self.calendar_checked = now  # ask again next period, not on every poll
        log.warning(
            "FOMC calendar not available (%s); %s",
            "; ".join(errors),
            f"using the {len(self.meetings)} cached meetings" if self.meetings else "none cached",
        )

    def meeting_today(self, now: datetime) -> Meeting | None:
        return meeting_on(self.meetings, now.astimezone(NEW_YORK).date())

    # ------------------------------------------------------------------ polling hints

    def _window(self, meeting: Meeting) -> tuple[datetime, datetime]:
        return fast_window(
            meeting, before=self.fomc.fast_before, at=self.fomc.release, lasts=self.fomc.fast_for
        )

    def _fast(self, now: datetime) -> Meeting | None:
        """Today's meeting while its statement is awaited (inside the fast window)."""
        meeting = self.meeting_today(now)
        if meeting is None or meeting.decision_day.isoformat() in self.statements:
            return None
        start, end = self._window(meeting)
        return meeting if start <= now <= end else None

    def next_poll(self, symbol_id: str, spec: SymbolConfig, now: datetime) -> datetime | None:
        """Fast polling on decision days: the next fast poll, or today's window start.

        Never waits for a fetch in flight (the worker asks from its event loop): it reads
        what the last fetch left."""
        if not self._loaded:
            with self._lock:
                self._load()
        meeting = self.meeting_today(now)
        if meeting is None or meeting.decision_day.isoformat() in self.statements:
            return None
        start, end = self._window(meeting)
        if now < start:
            return start
        if now > end:
            return None
        last = self._last_fetch.get(symbol_id)
        return now if last is None else max(now, last + self.fomc.fast_every)

    # ------------------------------------------------------------------ statements

    def _previous(self, day: date) -> tuple[float, float] | None:
        older = [d for d in sorted(self.statements) if d < day.isoformat()]
        if not older:
            return None
        data = self.statements[older[-1]]
        return float(data["lower"]), float(data["upper"])

    def _read_statement(
        self, symbol: str, day: date, *, published: datetime | None, awaited: bool = False
    ) -> bool | None:
        """Fetch and parse the statement page of ``day``: True when a decision was read, None
        when the page is not there yet (404), False when it holds no decision. ``awaited``:
        the page of a decision day, where that means an error page (logged at WARNING once a
        day, then at DEBUG); a feed link without a decision (minutes) is normal (DEBUG)."""
        url = self.base_url + statement_path(day)
        try:
            text = self.http.get(url, symbol=symbol, accept_html=True)
        except SourceError as exc:
            if exc.status == 404:
                log.debug("%s: no statement at %s yet", symbol, url)
                return None
            raise
        try:
            statement = parse_statement(text, day=day, previous=self._previous(day))
        except NoDecisionError as exc:
            key = f"{url}@{self.clock.now().date()}"
            level = logging.DEBUG if key in self._warned or not awaited else logging.WARNING
            self._warned.add(key)
            log.log(level, "%s: %s has no rate decision (yet): %s", symbol, url, exc)
            return False
        released = published or release_time(statement, day, self.fomc.release)
        data = statement.to_json()
        data.update(
            {
                "date": day.isoformat(),
                "url": url,
                "time": released.isoformat(),
                "read": self.clock.now().isoformat(),
                "votes_for": statement.votes_for,
                "votes_against": statement.votes_against,
                "dissents": [
                    {"name": d.name, "preferred": d.preferred, "bp": d.bp}
                    for d in statement.dissents
                ],
            }
        )
        self.statements[day.isoformat()] = data
        self._save()
        log.info("%s: FOMC statement of %s read: %s", symbol, day, statement.decision)
        return True

    def _read_feed(self, symbol: str) -> None:
        url = self.base_url + FEED_PATH
        text = self.http.get(url, symbol=symbol, accept_html=True)
        try:
            items = parse_feed(text)
        except ValueError as exc:
            raise SourceError(str(exc), symbol=symbol, url=url) from None
        for _title, link, published in items[:5]:  # newest first
            match = _STATEMENT_LINK.search(link)
            if not match:
                continue
            day = datetime.strptime(match.group(1), "%Y%m%d").date()
            if day.isoformat() in self.statements or link in self._not_decisions:
                continue
            if self._read_statement(symbol, day, published=published) is False:
                self._not_decisions.add(link)  # minutes, other releases: asked once

    def fetch_latest(self, symbol_id: str, spec: SymbolConfig) -> Observation:
        """The newest statement read (fast page polls on decision days, else the feed)."""
        now = self.clock.now()
        with self._lock:
            self._load()
            self.refresh_calendar(symbol_id, now)
            self._last_fetch[symbol_id] = now
            meeting = self._fast(now)
            if meeting is not None:
                self._read_statement(symbol_id, meeting.decision_day, published=None, awaited=True)
            if meeting is None or not self.statements:
                # (a first start inside the fast window still needs the latest decision)
                self._read_feed(symbol_id)
            if not self.statements:
                raise SourceError("no FOMC statement seen yet", symbol=symbol_id)
            data = self.statements[max(self.statements)]
            return self._observation(symbol_id, data, now)

    def _observation(self, symbol_id: str, data: dict[str, Any], now: datetime) -> Observation:
        day = date.fromisoformat(data["date"])
        released = min(datetime.fromisoformat(data["time"]), now)
        # Stamped with the latest of the release, the moment the statement was read and the
        # last calendar change: a statement read late is still newer than anything stamped
        # before, and a new calendar is news too, so the engine hands the observation on again
        # (rules read the release time from ``detail["time"]``; the decision day is ``session``).
        read = datetime.fromisoformat(data["read"]) if data.get("read") else released
        stamp = min(max(released, read, self.calendar_changed or released), now)
        upcoming = next_meetings(self.meetings, now.astimezone(NEW_YORK).date(), count=8)
        return Observation(
            symbol=symbol_id,
            time=stamp,
            value=float(data["upper"]),
            kind="rate",
            session=day,
            fields={"lower": float(data["lower"]), "upper": float(data["upper"])},
            source=self.name,
            detail={**data, "meetings": [m.to_json() for m in upcoming]},
        )

    def fetch_daily(
        self, symbol_id: str, spec: SymbolConfig, start: date | None, end: date | None
    ) -> DailySeries:
        """The statements seen (a range per decision day): FRED is the daily history."""
        with self._lock:
            self._load()
            rows = sorted(
                (date.fromisoformat(d), v)
                for d, v in self.statements.items()
                if (start is None or d >= start.isoformat())
                and (end is None or d <= end.isoformat())
            )
        return DailySeries(
            [d for d, _ in rows],
            [float(v["upper"]) for _, v in rows],
            {
                "lower": [float(v["lower"]) for _, v in rows],
                "upper": [float(v["upper"]) for _, v in rows],
            },
        )
