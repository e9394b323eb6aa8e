"""A fake FRED ``/graph/fredgraph.csv`` on 127.0.0.1 and a builder of real-format CSV text.

Use in tests (fixture ``fred_fake`` via ``pytest_plugins = ["tests.fakes.fred"]`` in the
root conftest, or ``with FredFake() as fake:``)::

    def test_x(fred_fake):
        fred_fake.series("DFEDTARU", fred_csv("DFEDTARU", [("2024-12-18", 4.5)]))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Literal

import pytest

from tests.fakes.yahoo import Reply, ReplyLike, ScriptedServer, Seen

FRED_PATH = "/graph/fredgraph.csv"


def fred_csv(
    series_id: str,
    rows: Sequence[tuple[date | str, float | str | None]],
    *,
    header: Literal["observation_date", "DATE"] = "observation_date",
    missing: Literal[".", ""] = ".",
) -> str:
    """fredgraph CSV text: ``observation_date,SERIES`` (today's style) or ``DATE,SERIES``
    (the older one). A ``None`` value is written as the ``missing`` marker."""
    lines = [f"{header},{series_id}"]
    for day, value in rows:
        text = missing if value is None else (value if isinstance(value, str) else f"{value:.2f}")
        lines.append(f"{day.isoformat() if isinstance(day, date) else day},{text}")
    return "\n".join(lines) + "\n"


class FredFake(ScriptedServer):
    """The fake FRED graph CSV endpoint: script replies per series id."""

    def series(self, series_id: str, replies: Sequence[ReplyLike] | ReplyLike) -> None:
        """Serve ``replies`` (one or a sequence) for ``?id=series_id``."""
        if isinstance(replies, Reply | dict | str | bytes):
            replies = [replies]
        self.script(FRED_PATH, replies, query={"id": series_id})

    def series_requests(self, series_id: str) -> list[Seen]:
        """Requests received for ``series_id``."""
        return [s for s in self.requests(FRED_PATH) if s.query.get("id") == series_id]


@pytest.fixture
def fred_fake() -> Iterator[FredFake]:
    """A started :class:`FredFake` on 127.0.0.1, stopped after the test."""
    with FredFake() as fake:
        yield fake
