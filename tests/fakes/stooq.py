"""A fake Stooq on 127.0.0.1: the ``/q/d/l/`` daily CSV and ``/q/l/`` quote downloads, with
Stooq's non-CSV answers.

Use in tests (fixture ``stooq_fake`` via ``pytest_plugins = ["tests.fakes.stooq"]`` in the
root conftest, or ``with StooqFake() as fake:``)::

    def test_x(stooq_fake):
        stooq_fake.daily("^rut", stooq_csv([(date(2025, 1, 10), 2250.5)]))
        stooq_fake.quote("^rut", stooq_quote_csv(datetime(2025, 1, 10, 20, 59, tzinfo=UTC), 2250.5))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from tests.fakes.yahoo import Reply, ReplyLike, ScriptedServer, Seen

STOOQ_PATH = "/q/d/l/"
STOOQ_HEADER = "Date,Open,High,Low,Close,Volume"
QUOTE_PATH = "/q/l/"
QUOTE_HEADER = "Symbol,Date,Time,Open,High,Low,Close,Volume"
#: Stooq writes quote times in Polish local time (a US close at 16:00 New York shows as 22:00).
STOOQ_ZONE = ZoneInfo("Europe/Warsaw")

# Bodies Stooq really sends with HTTP 200 instead of CSV.
NO_DATA = "No data"
HITS_LIMIT = "Exceeded the daily hits limit"
ND_ROWS = f"{STOOQ_HEADER}\nN/D,N/D,N/D,N/D,N/D,N/D\n"
POW_CHALLENGE_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>stooq.com</title>
<script>/* proof of work: find nonce such that sha256(challenge+nonce) starts with 0000 */
var challenge="6f1c0e";function solve(){}</script></head>
<body onload="solve()">Checking your browser...</body></html>
"""


def stooq_csv(rows: Sequence[tuple[date, float | None]], *, volume: bool = True) -> str:
    """Stooq daily CSV text; a ``None`` close writes an ``N/D`` row. ``volume=False`` drops
    the Volume column (as for some indices)."""
    header = STOOQ_HEADER if volume else STOOQ_HEADER.removesuffix(",Volume")
    lines = [header]
    for day, close in rows:
        if close is None:
            cells = [day.isoformat(), "N/D", "N/D", "N/D", "N/D"]
        else:
            cells = [day.isoformat(), *(f"{close:.2f}",) * 4]
        if volume:
            cells.append("N/D" if close is None else "123456")
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def stooq_quote_csv(when: datetime | None, close: float | None, symbol: str = "^RUT") -> str:
    """Stooq's quote CSV (``f=sd2t2ohlcv&h&e=csv``): the header and one row, the time written
    in Warsaw time as Stooq does; ``None`` writes the ``N/D`` row of an unknown ticker."""
    if when is None or close is None:
        return f"{QUOTE_HEADER}\n{symbol.upper()},N/D,N/D,N/D,N/D,N/D,N/D,N/D\n"
    local = when.astimezone(STOOQ_ZONE)
    cells = [symbol.upper(), local.strftime("%Y-%m-%d"), local.strftime("%H:%M:%S")]
    cells += [f"{close:.2f}"] * 4 + ["0"]
    return f"{QUOTE_HEADER}\n{','.join(cells)}\n"


class StooqFake(ScriptedServer):
    """The fake Stooq download endpoint: script replies per (lower-case) ticker."""

    def quote(self, ticker: str, replies: Sequence[ReplyLike] | ReplyLike) -> None:
        """Serve ``replies`` for the quote download ``/q/l/?s=ticker`` (lower-cased)."""
        if isinstance(replies, Reply | dict | str | bytes):
            replies = [replies]
        self.script(QUOTE_PATH, replies, query={"s": ticker.lower()})

    def quote_requests(self, ticker: str) -> list[Seen]:
        """Quote requests received for ``ticker``."""
        return [s for s in self.requests(QUOTE_PATH) if s.query.get("s") == ticker.lower()]

    def daily(self, ticker: str, replies: Sequence[ReplyLike] | ReplyLike) -> None:
        """Serve ``replies`` (one or a sequence) for ``?s=ticker`` (matched lower-cased)."""
        if isinstance(replies, Reply | dict | str | bytes):
            replies = [replies]
        self.script(STOOQ_PATH, replies, query={"s": ticker.lower()})

    def daily_requests(self, ticker: str) -> list[Seen]:
        """Requests received for ``ticker``."""
        return [s for s in self.requests(STOOQ_PATH) if s.query.get("s") == ticker.lower()]


@pytest.fixture
def stooq_fake() -> Iterator[StooqFake]:
    """A started :class:`StooqFake` on 127.0.0.1, stopped after the test."""
    with StooqFake() as fake:
        yield fake
