"""The FOMC meeting calendar: the Fed's ``json/calendar.json`` and, as a fallback, its
``monetarypolicy/fomccalendars.htm`` page, read into :class:`Meeting` rows.

The decision is announced on the last day of a meeting ("27-28": the 28th). A meeting can span
two months ("30-1" in the page's "Apr/May" row, or in the JSON's month of the first day).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.errors import BotError

NEW_YORK = ZoneInfo("America/New_York")
RELEASE = time(14, 0)  # scheduled statements are released at 2:00 p.m. New York time
SEP_MONTHS = frozenset({3, 6, 9, 12})  # projections meetings when a source cannot tell


class CalendarError(BotError, ValueError):
    """The calendar text is not the Fed's calendar (an error page, an empty list)."""


@dataclass(frozen=True, order=True)
class Meeting:
    """One scheduled meeting: its first day, its decision day and whether projections (the
    Summary of Economic Projections) come with it."""

    decision_day: date
    start: date
    projections: bool = False

    def release(self, at: time = RELEASE) -> datetime:
        """When the statement is due (New York time, tz-aware)."""
        return datetime.combine(self.decision_day, at, NEW_YORK)

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "decision_day": self.decision_day.isoformat(),
            "projections": self.projections,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Meeting:
        return cls(
            decision_day=date.fromisoformat(data["decision_day"]),
            start=date.fromisoformat(data["start"]),
            projections=bool(data.get("projections", False)),
        )


def _span(year: int, month: int, days: str) -> tuple[date, date] | None:
    """(first day, decision day) of ``days`` ("28", "27-28", "30-1" spanning into next month)."""
    numbers = [int(n) for n in re.findall(r"\d+", days)]
    if not numbers:
        return None
    first, last = numbers[0], numbers[-1]
    start = date(year, month, first)
    if last < first:  # "30-1": the decision is in the next month
        nxt = date(year + month // 12, month % 12 + 1, 1)
        return start, nxt.replace(day=last)
    return start, date(year, month, last)


def parse_calendar_json(raw: str | bytes) -> list[Meeting]:
    """FOMC meetings in ``calendar.json`` (UTF-8, possibly with a BOM), sorted by date."""
    text = raw.decode("utf-8-sig", errors="replace") if isinstance(raw, bytes) else raw
    text = text.lstrip("\ufeff")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalendarError(f"calendar.json is not JSON: {exc}") from None
    events = data.get("events") if isinstance(data, dict) else data
    if not isinstance(events, list):
        raise CalendarError("calendar.json has no 'events' list")
    meetings: set[Meeting] = set()
    for event in events:
        if not isinstance(event, dict):
            continue
        title = html.unescape(str(event.get("title", "")))
        if "FOMC Meeting" not in title:
            continue
        month = re.fullmatch(r"(\d{4})-(\d{2})", str(event.get("month", "")).strip())
        if not month:
            continue
        span = _span(int(month.group(1)), int(month.group(2)), str(event.get("days", "")))
        if span is None:
            continue
        description = html.unescape(html.unescape(str(event.get("description", "")))).lower()
        projections = "projection" in description or span[1].month in SEP_MONTHS
        meetings.add(Meeting(decision_day=span[1], start=span[0], projections=projections))
    if not meetings:
        raise CalendarError("calendar.json lists no FOMC meeting")
    return sorted(meetings)


_MONTH_NUMBERS = {
    name: number
    for number, name in enumerate(
        [
            "jan",
            "feb",
            "mar",
            "apr",
            "may",
            "jun",
            "jul",
            "aug",
            "sep",
            "oct",
            "nov",
            "dec",
        ],
        start=1,
    )
}
_YEAR_RE = re.compile(r">\s*(\d{4}) FOMC Meetings\s*<")
_MEETING_RE = re.compile(
    r"fomc-meeting__month[^>]*>\s*(?:<strong>)?\s*([A-Za-z/]+)\s*(?:</strong>)?\s*</div>\s*"
    r"<div[^>]*fomc-meeting__date[^>]*>\s*([^<]*?)\s*</div>",
    re.S,
)


def parse_calendar_page(raw: str | bytes) -> list[Meeting]:
    """FOMC meetings of ``fomccalendars.htm`` ("17-18*": projections; "(notation vote)" and
    "(unscheduled)" rows are not scheduled meetings and are skipped)."""
    text = raw.decode("utf-8-sig", errors="replace") if isinstance(raw, bytes) else raw
    years = [(m.start(), int(m.group(1))) for m in _YEAR_RE.finditer(text)]
    meetings: set[Meeting] = set()
    for match in _MEETING_RE.finditer(text):
        year = next((y for at, y in reversed(years) if at < match.start()), None)
        label, days = match.group(1).lower(), match.group(2)
        if year is None or "(" in days:
            continue
        month = _MONTH_NUMBERS.get(label.split("/")[0][:3])
        if month is None:
            continue
        span = _span(year, month, days)
        if span is not None:
            meetings.add(Meeting(span[1], span[0], projections="*" in days))
    if not meetings:
        raise CalendarError("the calendar page lists no FOMC meeting")
    return sorted(meetings)


def meeting_on(meetings: Iterable[Meeting], day: date) -> Meeting | None:
    """The meeting whose decision falls on ``day``."""
    return next((m for m in meetings if m.decision_day == day), None)


def next_meetings(meetings: Sequence[Meeting], after: date, count: int = 3) -> list[Meeting]:
    """The next ``count`` meetings deciding on or after ``after``."""
    return [m for m in sorted(meetings) if m.decision_day >= after][:count]


def fast_window(
    meeting: Meeting, *, before: timedelta, at: time = RELEASE, lasts: timedelta
) -> tuple[datetime, datetime]:
    """When a source polls the statement page fast: from ``before`` the release for ``lasts``."""
    release = meeting.release(at)
    return release - before, release + lasts
