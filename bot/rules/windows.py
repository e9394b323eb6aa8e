"""Look-back windows shared by rules: ``1d``, ``5d``, ``30d``, ``252d``, ``mtd``, ``qtd``, ``ytd``.

``Nd`` counts trading sessions (rows of the daily series), not calendar days: ``1d`` compares with
the previous close, ``5d`` with the close five sessions back (a trading week), ``252d`` is about a
year. ``mtd``/``qtd``/``ytd`` compare with the last close before the month, quarter or year began.

Everything here works on the plain lists of :class:`~bot.model.DailySeries` (bisection, no
pandas) because rules call it once per observation in backtests. The numpy versions used by
the fast paths for long batches are in :mod:`bot.rules.batch`.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, PlainSerializer

from bot.model import DailySeries, Observation

WindowKind = Literal["sessions", "mtd", "qtd", "ytd"]

_WINDOW_RE = re.compile(r"^\s*(?:(\d+)\s*d|(mtd|qtd|ytd))\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Window:
    """A look-back window: ``sessions`` rows back, or since the start of the month/quarter/year."""

    kind: WindowKind
    sessions: int = 0

    @property
    def calendar(self) -> bool:
        """True for ``mtd``/``qtd``/``ytd`` (windows that start on a calendar boundary)."""
        return self.kind != "sessions"

    def period_start(self, session: date) -> date:
        """First calendar day of the month/quarter/year holding ``session`` (calendar windows)."""
        if self.kind == "mtd":
            return date(session.year, session.month, 1)
        if self.kind == "qtd":
            return date(session.year, 3 * ((session.month - 1) // 3) + 1, 1)
        if self.kind == "ytd":
            return date(session.year, 1, 1)
        raise ValueError(f"{self} has no calendar period")

    def period_key(self, session: date) -> str:
        """A stable name for the period holding ``session``: ``2025-09``, ``2025-Q3``, ``2025``.

        For session windows the period is the session itself (used by ``1d``).
        """
        if self.kind == "mtd":
            return f"{session.year:04d}-{session.month:02d}"
        if self.kind == "qtd":
            return f"{session.year:04d}-Q{(session.month - 1) // 3 + 1}"
        if self.kind == "ytd":
            return f"{session.year:04d}"
        return session.isoformat()

    def base_index(self, series: DailySeries, session: date, prev_index: int | None = None) -> int:
        """Index of the close the change over this window is measured from; -1 if too early.

        ``prev_index`` (the index of the last row before ``session``) saves a bisection when the
        caller already has it. Only rows dated before ``session`` are used: no look-ahead.
        """
        if self.kind == "sessions":
            prev = series.index_before(session) if prev_index is None else prev_index
            base = prev - (self.sessions - 1)
            return base if prev >= 0 and base >= 0 else -1
        return series.index_before(self.period_start(session))

    def period_end(self, session: date) -> date:
        """First calendar day of the *next* month/quarter/year (calendar windows)."""
        start = self.period_start(session)
        months = {"mtd": 1, "qtd": 3, "ytd": 12}[self.kind]
        month = start.month - 1 + months
        return date(start.year + month // 12, month % 12 + 1, 1)

    def history_days(self) -> int:
        """Calendar days of history the window needs (with room for holidays)."""
        if self.kind == "sessions":
            return self.sessions * 7 // 5 + 10
        return {"mtd": 40, "qtd": 100, "ytd": 375}[self.kind]

    def __str__(self) -> str:
        return f"{self.sessions}d" if self.kind == "sessions" else self.kind


def parse_window(value: Any) -> Window:
    """Parse ``"5d"``, ``"252d"``, ``"mtd"``, ``"qtd"``, ``"ytd"``."""
    if isinstance(value, Window):
        return value
    match = _WINDOW_RE.match(str(value)) if not isinstance(value, bool) else None
    if not match:
        raise ValueError(
            f"expected a window such as 1d, 5d, 30d, 252d (trading sessions), mtd, qtd or ytd, "
            f"got {value!r}"
        )
    if match.group(2):
        return Window(match.group(2).lower())  # type: ignore[arg-type]
    sessions = int(match.group(1))
    if sessions < 1:
        raise ValueError(f"a window needs at least 1 session, got {value!r}")
    return Window("sessions", sessions)


WindowValue = Annotated[
    Window, BeforeValidator(parse_window), PlainSerializer(str, return_type=str)
]


def session_of(observation: Observation, tz: ZoneInfo) -> date:
    """The trading date an observation belongs to: its ``session``, else its local date."""
    if observation.session is not None:
        return observation.session
    return observation.time.astimezone(tz).date()


def sessions_of(observations: Sequence[Observation], tz: ZoneInfo) -> list[date]:
    """:func:`session_of` for a batch (fast path: closes carry their session)."""
    return [
        o.session if o.session is not None else o.time.astimezone(tz).date() for o in observations
    ]


def parse_day(text: str | None) -> date | None:
    """ISO date from state (``None`` stays ``None``)."""
    return date.fromisoformat(text) if text else None


def parse_moment(text: str | None) -> datetime | None:
    """ISO datetime from state (``None`` stays ``None``)."""
    return datetime.fromisoformat(text) if text else None


def pct_change(value: float, base: float) -> float:
    """Percentage change from ``base`` to ``value`` (0 when ``base`` is 0)."""
    return (value / base - 1.0) * 100.0 if base else 0.0


def window_label(window: Window) -> str:
    """``month-to-date``, ``on the day`` (1d), ``over 5 sessions``."""
    labels = {"mtd": "month-to-date", "qtd": "quarter-to-date", "ytd": "year-to-date"}
    if window.kind in labels:
        return labels[window.kind]
    return "on the day" if window.sessions == 1 else f"over {window.sessions} sessions"


def episodic(window: Window) -> bool:
    """Rolling windows longer than a day fire once per *episode* beyond the threshold (re-arming
    when back inside it); calendar windows and ``1d`` fire once per period and direction."""
    return window.kind == "sessions" and window.sessions > 1


def breach_step(
    fired: dict[str, str | None], window: Window, session: date, up: bool, down: bool
) -> list[str]:
    """Advance the once-per-period (or per-episode) state; return the directions to report.

    ``fired`` maps ``up``/``down`` to the period key of the last report (calendar windows and
    ``1d``) or to the session an episode began (rolling windows; ``None`` when inside again).
    """
    report: list[str] = []
    if episodic(window):
        for direction, beyond in (("up", up), ("down", down)):
            if beyond:
                if fired.get(direction) is None:
                    fired[direction] = session.isoformat()
                    report.append(direction)
            else:
                fired[direction] = None
        return report
    period = window.period_key(session)
    for direction, beyond in (("up", up), ("down", down)):
        if beyond and fired.get(direction) != period:
            fired[direction] = period
            report.append(direction)
    return report


def event_key(window: Window, session: date, direction: str) -> str:
    """Alert key: ``mtd:2025-09:up``; ``1d:2025-09-18:down``; ``5d:2025-09-18:up`` (episode
    start)."""
    what = session.isoformat() if episodic(window) else window.period_key(session)
    return f"{window}:{what}:{direction}"


class Cursor:
    """Row lookups for a run of non-decreasing days (a batch of observations): amortised O(1)
    by walking forward from the previous answer instead of bisecting every time."""

    __slots__ = ("_dates", "_index", "_size")

    def __init__(self, series: DailySeries) -> None:
        self._dates = series.dates
        self._size = len(series.dates)
        self._index = -1  # last row dated on or before the previous day asked

    def on_or_before(self, day: date) -> int:
        """Index of the last row dated ``day`` or earlier; -1 if none."""
        dates, i = self._dates, self._index
        if i >= 0 and dates[i] > day:  # went backwards: start over
            i = bisect.bisect_right(dates, day) - 1
        size = self._size
        steps = 0
        while i + 1 < size and dates[i + 1] <= day:
            i += 1
            steps += 1
            if steps > 8:  # a long gap (first call, restart after days): bisect instead
                i = bisect.bisect_right(dates, day) - 1
                break
        self._index = i
        return i

    def before(self, day: date) -> int:
        """Index of the last row dated strictly before ``day``; -1 if none."""
        i = self.on_or_before(day)
        return i - 1 if i >= 0 and self._dates[i] == day else i


def fold_extreme(
    series: DailySeries,
    record: float | None,
    record_day: date | None,
    folded: int,
    through: int,
    high: bool = True,
) -> tuple[float | None, date | None, int]:
    """A running record close after folding in rows ``folded + 1`` .. ``through``:
    ``(record, its day, the last row folded)``. The highest close (``high``; else the lowest),
    the earliest on ties; with no record and nothing folded yet, ``max``/``min`` over the rows
    at once (the same answer as row by row, in C: a first fold is all the history)."""
    values, dates = series.values, series.dates
    if record is None and folded < 0 <= through:
        window = values[: through + 1]
        best = max(window) if high else min(window)
        return best, dates[window.index(best)], through
    while folded < through:
        folded += 1
        candidate = values[folded]
        if record is None or (candidate > record if high else candidate < record):
            record, record_day = candidate, dates[folded]
    return record, record_day, folded
