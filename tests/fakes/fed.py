"""A fake of the Fed's web site on 127.0.0.1, and builders of its real formats.

Paths: ``/feeds/press_monetary.xml`` (RSS: BOM, CDATA links, RFC 822 dates),
``/newsevents/pressreleases/monetaryYYYYMMDDa.htm`` (statement pages: ``div#article``, the
never-closed ``releaseTime`` paragraph, served as ``text/html`` without a charset; 404 until
published), ``/json/calendar.json`` (BOM, ``month``/``days`` rows) and
``/monetarypolicy/fomccalendars.htm``. The builders write small fixtures in those shapes (the
real captures in ``../shared/data/fomc`` are for benchmarks and manual checks only).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from email.utils import format_datetime

import pytest

from tests.fakes.yahoo import Reply, ScriptedServer

FEED = "/feeds/press_monetary.xml"
CALENDAR_JSON = "/json/calendar.json"
CALENDAR_PAGE = "/monetarypolicy/fomccalendars.htm"

NOT_FOUND_PAGE = (
    "<!DOCTYPE html><html><head><title>Page Not Found</title></head><body>"
    "<div id='content'><h2>Page not found</h2><p>The page you requested is not available.</p>"
    "</div></body></html>"
)
ERROR_PAGE = (
    "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
    "<p>Checking your browser before accessing federalreserve.gov.</p></body></html>"
)


def statement_path(day: date) -> str:
    """The dated statement page."""
    return f"/newsevents/pressreleases/monetary{day:%Y%m%d}a.htm"


def statement_page(
    day: date, paragraphs: Sequence[str], *, release: str = "2:00 p.m. EDT", nav: str = ""
) -> str:
    """A statement page in the Fed's template: navigation, ``div#article`` with the date, the
    title, the unclosed release-time paragraph, a share menu, then one ``<p>`` per paragraph."""
    body = "\n\n".join(f"<p>{p}</p>" for p in paragraphs)
    long_day = f"{day:%B} {day.day}, {day.year}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8" />
<meta name="description" content="{paragraphs[0][:150] if paragraphs else ""}" />
<title>Federal Reserve Board - Federal Reserve issues FOMC statement</title>
<script>var x = "<p>not the statement</p>";</script></head>
<body ng-app="fedApp"><nav><ul><li><a href="/">Home</a></li><li>{nav}</li></ul></nav>
<div id="content" class="container__main">
<div class="row">
<div id="article">
  <div class="heading col-xs-12 col-sm-8 col-md-8">
    <p class="article__time">{long_day}</p>
    <h3 class="title">Federal Reserve issues FOMC statement</h3>
    <p class="releaseTime">For release at {release}
    <ul class="list-unstyled"><li class="share btn-group"><a href="#">Share</a></li></ul>
  </div>
  <div class="col-xs-12 col-sm-4 col-md-4 hidden-sm"></div>
  <div class="col-xs-12 col-sm-8 col-md-8">
{body}

<p>For media inquiries, please email <a href="/cdn-cgi/l/email-protection#41"><span class="__cf_email__">[email&#160;protected]</span></a> or call 202-452-2955.</p>
<p><a href="/newsevents/pressreleases/monetary{day:%Y%m%d}a1.htm">Implementation Note issued {long_day}</a></p>
  </div>
</div>
</div></div>
<footer><p>Last Update: {long_day}</p></footer>
<!-- /newsevents/pressreleases/monetary{day:%Y%m%d}a1.htm--></body></html>
"""  # noqa: E501  (the Fed's own long lines)


def cut_statement(day: date) -> list[str]:
    """The 2025-12-10 decision in its words: a cut with three dissents of two kinds."""
    return [
        "Available indicators suggest that economic activity has been expanding at a moderate "
        "pace. Job gains have slowed this year, and the unemployment rate has edged up.",
        "In support of its goals and in light of the shift in the balance of risks, the "
        "Committee decided to lower the target range for the federal funds rate by 1/4 "
        "percentage point to 3-1/2 to 3\u20113/4 percent. In considering the extent and timing "
        "of additional adjustments, the Committee will carefully assess incoming data.",
        "Voting for the monetary policy action were Jerome H. Powell, Chair; John C. Williams, "
        "Vice Chair; Michael S. Barr; Michelle W. Bowman; Susan M. Collins; Lisa D. Cook; "
        "Philip N. Jefferson; Alberto G. Musalem; and Christopher J. Waller. Voting against "
        "this action were Stephen I. Miran, who preferred to lower the target range for the "
        "federal funds rate by 1/2 percentage point at this meeting; and Austan D. Goolsbee and "
        "Jeffrey R. Schmid, who preferred no change to the target range for the federal funds "
        "rate at this meeting.",
    ]


def _rfc822(moment: datetime) -> str:
    """The feed's date style: "Wed, 8 Jul 2026 18:00:00 GMT" (the day not zero-padded)."""
    utc = moment.astimezone(UTC)
    return format_datetime(utc, usegmt=True).replace(f" {utc:%d} ", f" {utc.day} ", 1)


def feed_xml(items: Sequence[tuple[str, str, datetime]], *, bom: bool = True) -> bytes:
    """The press feed: ``(title, link, published)`` items, links and dates in CDATA."""
    rows = "".join(
        f"""
        <item>
            <title>{title}</title>
            <link><![CDATA[{link}]]></link>
            <guid><![CDATA[{link}]]></guid>
            <description><![CDATA[{title}]]></description>
            <category>Monetary Policy</category>
            <pubDate><![CDATA[{_rfc822(published)}]]></pubDate>
        </item>"""
        for title, link, published in items
    )
    text = f"""<?xml version="1.0" encoding="utf-8" ?>
<rss version="2.0">
    <channel>
        <title>FRB: Press Release - Monetary Policy</title>
        <link><![CDATA[https://www.federalreserve.gov/feeds/feeds.htm]]></link>
        <description><![CDATA[Press releases about monetary policy from the Federal Reserve Board]]></description>
        <language>en</language>{rows}
    </channel>
</rss>
"""  # noqa: E501
    return ("\ufeff" if bom else "").encode() + text.encode()


def calendar_json(meetings: Sequence[tuple[str, str]], *, bom: bool = True) -> bytes:
    """``calendar.json``: one "FOMC Meeting" event per ``(month "YYYY-MM", days "27-28")``,
    among other events (minutes, a speech, an empty row), HTML-escaped descriptions."""
    events: list[dict[str, str]] = [
        {
            "title": "Speech - Governor Christopher J. Waller",
            "time": "4:30 a.m.",
            "month": meetings[0][0] if meetings else "2026-10",
            "days": "8",
            "type": "Speeches",
            "location": "At the Atlantic Council&#8217;s Conversation, Washington, D.C.",
        },
        {
            "description": "&lt;p&gt;Meeting of September 15-16&lt;/p&gt;",
            "title": "FOMC Minutes",
            "time": "2:00 p.m.",
            "month": "2026-10",
            "days": "7",
            "type": "FOMC",
        },
    ]
    for month, days in meetings:
        events.append(
            {
                "description": f"&lt;p&gt;Two-day meeting, {days}&lt;/p&gt;&#10;&#10;"
                "&lt;p&gt;Press Conference&lt;/p&gt;",
                "title": "FOMC Meeting",
                "time": "2:00 p.m.",
                "month": month,
                "days": days,
                "type": "FOMC",
            }
        )
    payload = json.dumps({"events": [*events, {}]}, ensure_ascii=False)
    return ("\ufeff" if bom else "").encode() + payload.encode()


def calendar_page(year: int, rows: Sequence[tuple[str, str]]) -> bytes:
    """``fomccalendars.htm``: ``(month label "Apr/May", dates "30-1" / "17-18*")`` rows of one
    year, with the page's stray ``" ">`` in each meeting div, BOM and CRLF."""
    meetings = "".join(
        f"""
        <div class="row fomc-meeting" ">
            <div class="fomc-meeting__month col-xs-5 col-md-2"><strong>{label}</strong></div>
            <div class="fomc-meeting__date col-xs-4 col-sm-9 col-md-10 col-lg-1">{dates}</div>
            <div class="col-xs-12 col-md-4 col-lg-2"><strong>Statement:</strong></div>
        </div>"""
        for label, dates in rows
    )
    text = f"""<!DOCTYPE html><html><body>
<div class="panel panel-default"><div class="panel-heading"><h4><a id="42828">{year} FOMC Meetings</a></h4></div>
{meetings}
</div></body></html>"""  # noqa: E501
    return b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode()


class FedFake(ScriptedServer):
    """The fake Fed site. Statement pages 404 (an HTML "not found" page) until published."""

    def feed(self, body: bytes | str) -> None:
        """Serve the press feed."""
        self.script(FEED, [Reply(body, content_type="application/rss+xml")])

    def calendar(self, body: bytes | str, status: int = 200) -> None:
        """Serve ``calendar.json``."""
        self.script(CALENDAR_JSON, [Reply(body, status=status, content_type="application/json")])

    def calendar_page(self, body: bytes | str) -> None:
        """Serve ``fomccalendars.htm``."""
        self.script(CALENDAR_PAGE, [Reply(body, content_type="text/html")])

    def not_yet(self, day: date) -> None:
        """The statement page of ``day`` answers 404 with an HTML page."""
        self.script(
            statement_path(day), [Reply(NOT_FOUND_PAGE, status=404, content_type="text/html")]
        )

    def publish(self, day: date, page: str | bytes, *, status: int = 200) -> None:
        """The statement page of ``day`` is up (``text/html`` without a charset, like the Fed)."""
        body = page.encode() if isinstance(page, str) else page
        self.script(statement_path(day), [Reply(body, status=status, content_type="text/html")])

    def statement_requests(self, day: date) -> int:
        """How often the statement page of ``day`` was asked for."""
        return self.count(statement_path(day))


@pytest.fixture
def fed_fake() -> Iterator[FedFake]:
    """A started :class:`FedFake`, stopped after the test."""
    with FedFake() as fake:
        yield fake
