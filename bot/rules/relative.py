"""``relative``: one symbol beats (or trails) another by a margin over a window — e.g. ^RUT beats
^GSPC by 5 percentage points month-to-date.

The spread is ``%change(symbol) − %change(versus)`` over the same window, in percentage points,
on final closes only: a session is judged once both symbols have closed it (whichever close
arrives second triggers it). ``direction: up`` means ``symbol`` outperforms, ``down`` that it
underperforms. Fires once per period and direction like ``change``.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, ClassVar, Literal

from bot.clock import Clock
from bot.config import RuleParams, ThresholdValue
from bot.model import AlertDraft, DailySeries, History, Observation
from bot.rules.base import RULES, Rule, RuleState
from bot.rules.batch import (
    batch_arrays,
    batch_base_indices,
    batch_rows_of,
    episode_rows,
    rows_to_visit,
)
from bot.rules.text import fmt_percent, fmt_time
from bot.rules.windows import Window, WindowValue, breach_step, episodic, event_key, window_label


class RelativeParams(RuleParams):
    """``type: relative`` options."""

    symbol: str
    versus: str
    window: WindowValue
    threshold: ThresholdValue  # percentage points: 5, "5%" and "5pt" all mean 5 points
    direction: Literal["up", "down", "both"] = "both"

    def watched_symbols(self) -> list[str]:
        return [self.symbol, self.versus]


def _change(series: DailySeries, index: int, window: Window) -> float | None:
    """% change of row ``index`` over ``window`` (None without enough history)."""
    if index < 0:
        return None
    base = window.base_index(series, series.dates[index], index - 1)
    if base < 0 or not series.values[base]:
        return None
    return (series.values[index] / series.values[base] - 1.0) * 100.0


def _first_on_or_after(dates: Sequence[date], day: date, hint: int) -> int:
    """``bisect_left(dates, day)``: the first row dated ``day`` or later (``len`` if none).

    Tries ``hint`` (the previous answer) and the row after it first: sessions only grow within
    a batch, mostly by one row; the fast path's rows jump further and bisect.
    """
    size = len(dates)
    for i in (hint, hint + 1):
        if 0 <= i <= size and (i == size or dates[i] >= day) and (i == 0 or dates[i - 1] < day):
            return i
    return bisect.bisect_left(dates, day)


@RULES.register("relative")
class RelativeRule(Rule[RelativeParams]):
    """Fires when the performance gap between two symbols reaches the threshold."""

    type_name: ClassVar[str] = "relative"
    params_model: ClassVar[type[RuleParams]] = RelativeParams
    template_fields: ClassVar[frozenset[str]] = frozenset(
        {"versus", "versus_name", "spread", "change", "versus_change", "window", "direction"}
    )
    observation_kinds: ClassVar[frozenset[str]] = frozenset({"close"})

    def history_days(self) -> int | None:
        return self.params.window.history_days()

    def _spread(
        self, mine: DailySeries, other: DailySeries, session: date
    ) -> tuple[float, float, float] | None:
        """(spread, my change, their change) on ``session`` once both closed it."""
        i = mine.index_on_or_before(session)
        j = other.index_on_or_before(session)
        if i < 0 or j < 0 or mine.dates[i] != session or other.dates[j] != session:
            return None
        window = self.params.window
        a, b = _change(mine, i, window), _change(other, j, window)
        if a is None or b is None:
            return None
        return a - b, a, b

    def evaluate(
        self,
        observations: Sequence[Observation],
        history: History,
        state: Mapping[str, Any] | None,
        clock: Clock,
    ) -> tuple[RuleState, list[AlertDraft]]:
        params = self.params
        window = params.window
        mine, other = history.get(params.symbol), history.get(params.versus)
        limit = abs(params.threshold.amount)
        want_up = params.direction in ("up", "both")
        want_down = params.direction in ("down", "both")
        rolling = episodic(window)
        state = state or {}
        fired: dict[str, str | None] | None = (
            dict(state["fired"]) if state.get("fired") is not None else None
        )
        last = state.get("last_session")
        last_session = date.fromisoformat(last) if last else None
        drafts: list[AlertDraft] = []
        tz = self.context.tz
        # The hot loop of a backtest, kept to plain lists and locals: for each session, the
        # rows of both symbols dated exactly that day (walking forward through their dates),
        # then their changes from the window's base rows.
        a_dates, a_values, a_size, a_row = mine.dates, mine.values, len(mine.dates), -1
        b_dates, b_values, b_size, b_row = other.dates, other.values, len(other.dates), -1
        calendar, span = window.calendar, window.sessions
        period_start = period_end = date.max
        a_base = b_base = -1
        # A long batch (a backtest) visits only the rows found by _batch_rows; a short one (the
        # live loop) visits every row.
        rows = rows_to_visit(
            len(observations),
            lambda: self._batch_rows(observations, mine, other, last_session),
        )
        for row in rows:
            observation = observations[row]
            session = observation.session or observation.time.astimezone(tz).date()
            if last_session is not None and session <= last_session:
                continue  # judged already (the other symbol's close came first)
            if fired is None:
                fired = self._seed(mine, other, session)
            a_row = _first_on_or_after(a_dates, session, a_row)
            b_row = _first_on_or_after(b_dates, session, b_row)
            if (
                a_row >= a_size
                or b_row >= b_size
                or a_dates[a_row] != session
                or b_dates[b_row] != session
            ):
                continue  # one of them has not closed this session (yet)
            if calendar:
                if not period_start <= session < period_end:
                    period_start = window.period_start(session)
                    period_end = window.period_end(session)
                    a_base = mine.index_before(period_start)
                    b_base = other.index_before(period_start)
            else:
                a_base, b_base = a_row - span, b_row - span
            if a_base < 0 or b_base < 0 or not a_values[a_base] or not b_values[b_base]:
                continue  # not enough history for the window
            a = (a_values[a_row] / a_values[a_base] - 1.0) * 100.0
            b = (b_values[b_row] / b_values[b_base] - 1.0) * 100.0
            last_session = session
            spread = a - b
            up, down = spread >= limit, spread <= -limit
            if not (up or down or (rolling and (fired["up"] or fired["down"]))):
                continue
            for direction in breach_step(fired, window, session, up, down):
                if want_up if direction == "up" else want_down:
                    drafts.append(self._draft(observation, session, spread, a, b, direction))
        return {
            "fired": fired,
            "last_session": last_session.isoformat() if last_session else None,
        }, drafts

    def _batch_rows(
        self,
        observations: Sequence[Observation],
        mine: DailySeries,
        other: DailySeries,
        last_session: date | None,
    ) -> list[int] | None:
        """Fast path for long batches: the rows the loop in :meth:`evaluate` must visit
        (``None``, every row, while either symbol has no history).

        Mirrors the loop with numpy over the whole batch: a row is *judged* when both symbols
        have a row dated its session with usable base rows (the same change arithmetic) and its
        session is later than every session judged before it. The loop must visit the first row
        past ``last_session`` (it seeds the state), the judged rows beyond the threshold, the
        first judged row back inside after them, and the last judged row (``last_session``);
        on every other row it would ``continue`` without touching the state.
        """
        import numpy as np

        if not len(mine) or not len(other):
            return None
        window, limit = self.params.window, abs(self.params.threshold.amount)
        tz = self.context.tz
        ordinals = batch_arrays(observations, tz)[1]
        changes: list[Any] = []
        valid = np.ones(len(ordinals), dtype=bool)
        for series in (mine, other):
            values = series.arrays()[1]
            row = batch_rows_of(observations, tz, series)
            base = batch_base_indices(observations, tz, window, series)
            usable = (row >= 0) & (base >= 0)
            reference = values[np.where(usable, base, 0)]
            valid &= usable & (reference != 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                changes.append((values[np.where(usable, row, 0)] / reference - 1.0) * 100.0)
        spread = changes[0] - changes[1]
        floor = last_session.toordinal() if last_session is not None else np.iinfo(np.int64).min
        # The latest session judged before each row (the loop's ``last_session``).
        latest = np.maximum.accumulate(np.where(valid, ordinals, floor))
        before = np.concatenate(([floor], latest[:-1]))
        passing = ordinals > before
        judged = valid & passing
        beyond = judged & ((spread >= limit) | (spread <= -limit))
        rows = episode_rows(judged, beyond)
        extra = [np.flatnonzero(passing)[:1], np.flatnonzero(judged)[-1:]]
        return np.unique(np.concatenate([rows, *extra])).tolist()  # type: ignore[no-any-return]

    def _seed(self, mine: DailySeries, other: DailySeries, session: date) -> dict[str, str | None]:
        """Directions already reported this period (or the episode under way) before
        ``session``, as a rule running all along would remember them."""
        window = self.params.window
        limit = abs(self.params.threshold.amount)
        fired: dict[str, str | None] = {"up": None, "down": None}
        prev = mine.index_before(session)
        if prev < 0:
            return fired
        if episodic(window):
            days = [mine.dates[prev]]
        elif window.calendar:
            start = window.period_start(session)
            days = mine.dates[mine.index_before(start) + 1 : prev + 1]
        else:
            return fired
        for day in days:
            found = self._spread(mine, other, day)
            if found is None:
                continue
            spread = found[0]
            mark = day.isoformat() if episodic(window) else window.period_key(session)
            if spread >= limit:
                fired["up"] = mark
            if spread <= -limit:
                fired["down"] = mark
        return fired

    def _draft(
        self,
        observation: Observation,
        session: date,
        spread: float,
        mine: float,
        theirs: float,
        direction: str,
    ) -> AlertDraft:
        params = self.params
        name = self.context.name(params.symbol)
        versus = self.context.name(params.versus)
        verb = "beats" if spread >= 0 else "trails"
        label = window_label(params.window)
        text = (
            f"{name} ({params.symbol}) {verb} {versus} ({params.versus}) by "
            f"{abs(spread):.2f} points {label}: {fmt_percent(mine)} vs {fmt_percent(theirs)} "
            f"at the close of {session.isoformat()} "
            f"({fmt_time(observation.time, self.context.tz)})"
        )
        return AlertDraft(
            key=event_key(params.window, session, direction),
            symbol=params.symbol,
            time=observation.time,
            value=round(spread, 4),
            text=text,
            fields={
                "versus": params.versus,
                "versus_name": versus,
                "spread": f"{spread:+.2f}",
                "change": fmt_percent(mine),
                "versus_change": fmt_percent(theirs),
                "window": label,
                "direction": direction,
            },
        )
