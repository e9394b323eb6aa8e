"""Market-implied FOMC odds from 30-day fed funds futures, the way CME's FedWatch computes them.

A ZQ contract settles at 100 minus the month's average effective fed funds rate (EFFR), so its
price gives the market's expected average rate of that month. In a month with a meeting the
average splits into the days before the meeting and the days from the meeting day on (CME counts
the meeting day in "after"); a month without a meeting has one rate all month, so its average is
both the previous month's end rate and the next month's start rate. From a meeting month's start
and end rates, the expected change at that meeting follows; expressed in 25 bp steps it is split
between the two nearest whole steps (2.11 steps: 50 bp with 89%, 75 bp with 11%). The meetings
are then chained into a binary tree (each meeting's split applied to every branch of the
previous one), which gives the unconditional probability of each target range after each meeting.

Limits: moves are assumed to be multiples of 25 bp; the EFFR is assumed to move one for one
with the target; the EFFR's spread inside the range, month-end dips and contract prices that are
daily closes rather than settlements all show up as small phantom probabilities.
"""

from __future__ import annotations

import calendar as _calendar
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from bot.errors import BotError

STEP = 0.25  # percentage points per move


class OddsError(BotError, ValueError):
    """A contract needed for the odds has no price."""


Month = tuple[int, int]


def month_of(day: date) -> Month:
    return (day.year, day.month)


def _next(month: Month) -> Month:
    year, mon = month
    return (year + mon // 12, mon % 12 + 1)


def _prev(month: Month) -> Month:
    year, mon = month
    return (year - 1, 12) if mon == 1 else (year, mon - 1)


def _days(month: Month) -> int:
    return _calendar.monthrange(*month)[1]


@dataclass(frozen=True)
class MeetingOdds:
    """What the futures imply for one meeting.

    ``start``/``end``: the implied EFFR before and after it; ``moves``: probability of each
    move at this meeting alone, in 25 bp steps; ``steps``: the probability of each cumulative
    number of steps from today's range after this meeting (the chained tree)."""

    day: date
    start: float
    end: float
    moves: Mapping[int, float]
    steps: Mapping[int, float] = field(default_factory=dict)

    @property
    def change_bp(self) -> float:
        """The expected change at this meeting, in basis points."""
        return (self.end - self.start) * 100

    @property
    def p_cut(self) -> float:
        """P(the range after this meeting is below today's)."""
        return sum(p for s, p in self.steps.items() if s < 0)

    @property
    def p_hike(self) -> float:
        return sum(p for s, p in self.steps.items() if s > 0)

    @property
    def p_hold(self) -> float:
        return self.steps.get(0, 0.0)


def _split(change: float) -> dict[int, float]:
    """An expected change (percentage points) as the two nearest 25 bp moves."""
    steps = round(change / STEP, 9)  # float noise must not create a 1e-15 branch
    whole = math.floor(steps)
    rest = steps - whole
    if rest <= 1e-9:
        return {whole: 1.0}
    return {whole: 1.0 - rest, whole + 1: rest}


def _chain(previous: Mapping[int, float], moves: Mapping[int, float]) -> dict[int, float]:
    out: dict[int, float] = {}
    for base, p in previous.items():
        for move, q in moves.items():
            out[base + move] = out.get(base + move, 0.0) + p * q
    return out


def implied_odds(
    meetings: Sequence[date],
    prices: Mapping[Month, float],
    *,
    start_rate: float | None = None,
    partial: bool = False,
) -> list[MeetingOdds]:
    """Odds for each meeting in ``meetings`` (decision days, ascending) from ZQ ``prices`` by
    contract month. A meeting month's end rate comes from the next month's contract when that
    month has no meeting (CME's anchor, worked backward); otherwise its start rate is the
    previous month's end, chained forward (the first from the previous month's contract, or
    ``start_rate``: today's EFFR). Every meeting of the list makes its month a meeting month,
    so pass the calendar's meetings, not only the ones wanted. Raises :class:`OddsError` naming
    a missing contract; with ``partial``, returns the meetings priced before the first missing
    contract instead (raising only when not even the first one is priced)."""
    by_month = {month_of(d): d for d in meetings}
    rates = {m: 100.0 - p for m, p in prices.items()}
    ends: dict[Month, float] = {}  # end-of-month EFFR of months already worked out
    result: list[MeetingOdds] = []
    tree: dict[int, float] = {0: 1.0}

    def average(month: Month) -> float:
        if month not in rates:
            raise OddsError(f"no price for the {month[0]}-{month[1]:02d} fed funds contract")
        return rates[month]

    def end_of(month: Month) -> float:
        if month in ends:
            return ends[month]
        if month not in by_month and month in rates:
            return rates[month]
        if start_rate is not None:
            return start_rate
        raise OddsError(f"no price for the {month[0]}-{month[1]:02d} fed funds contract")

    for day in sorted(meetings):
        month = month_of(day)
        total = _days(month)
        before = day.day - 1  # CME counts the meeting day among the days "after"
        after = total - before
        nxt = _next(month)
        try:
            avg = average(month)
            if nxt not in by_month and nxt in rates and before > 0:
                end = rates[nxt]  # anchor: a month with no meeting has one rate all month
                start = (avg * total - end * after) / before
            else:
                start = end_of(_prev(month))
                end = (avg * total - start * before) / after
        except OddsError:
            if partial and result:
                return result
            raise
        ends[month] = end
        moves = _split(end - start)
        tree = _chain(tree, moves)
        result.append(MeetingOdds(day, start, end, moves, dict(tree)))
    return result


def _range(current: tuple[float, float], steps: int) -> str:
    lower, upper = current
    return f"{lower + steps * STEP:.2f}–{upper + steps * STEP:.2f}%"


def odds_summary(
    odds: Sequence[MeetingOdds],
    current: tuple[float, float] | None = None,
    *,
    meetings: int = 3,
) -> str:
    """One line per meeting, for ``/status``, ``report`` and the digest: "FOMC 2026-10-28:
    cut 72%, hold 28% (most likely 3.25–3.50%)"."""
    lines = []
    for item in odds[:meetings]:
        parts = []
        for label, p in (("cut", item.p_cut), ("hold", item.p_hold), ("hike", item.p_hike)):
            if p >= 0.005:
                parts.append(f"{label} {p:.0%}")
        likely = max(item.steps.items(), key=lambda kv: kv[1])[0] if item.steps else 0
        where = f" (most likely {_range(current, likely)})" if current is not None else ""
        lines.append(f"FOMC {item.day.isoformat()}: {', '.join(parts) or 'hold 100%'}{where}")
    return "\n".join(lines)
