"""``change``: the change over a window (``1d``, ``5d``, ``30d``, ``mtd``, ``qtd``, ``ytd``) goes
beyond a threshold, up or down — e.g. ^RUT month-to-date ≥ +10%.

The change is measured from the window's base close (the last close before the month began for
``mtd``; the close N sessions back for ``Nd``) to the observed value. Calendar windows and ``1d``
fire once per period and direction (alert key ``mtd:2025-09:up``); rolling windows longer than a
day fire once per episode beyond the threshold. On a first run the current period is replayed
from history, so starting the bot mid-month does not repeat what already happened this month.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, ClassVar, Literal

from bot.clock import Clock
from bot.config import RuleParams, Threshold, ThresholdValue
from bot.model import AlertDraft, DailySeries, History, Observation
from bot.rules.base import RULES, Rule, RuleState
from bot.rules.batch import batch_arrays, batch_base_indices, episode_rows, fast_path
from bot.rules.text import fmt_percent, fmt_signed, fmt_time, fmt_value
from bot.rules.windows import Window, WindowValue, breach_step, episodic, event_key, window_label


class ChangeParams(RuleParams):
    """``type: change`` options."""

    symbol: str
    window: WindowValue
    threshold: ThresholdValue  # "10%" (percent change) or 100 (points)
    direction: Literal["up", "down", "both"] = "both"
    on: Literal["price", "close"] = "close"


def _amount(value: float, base: float, percent: bool) -> float:
    if percent:
        return (value / base - 1.0) * 100.0 if base else 0.0
    return value - base


def seed_fired(
    series: DailySeries, window: Window, session: date, threshold: Threshold
) -> dict[str, str | None]:
    """What a rule running all along would remember on ``session``: directions already reported
    this period (or the episode under way), from the closes before ``session``."""
    fired: dict[str, str | None] = {"up": None, "down": None}
    values = series.values
    prev = series.index_before(session)
    limit = abs(threshold.amount)
    if episodic(window):
        base = prev - window.sessions
        if base >= 0:
            amount = _amount(values[prev], values[base], threshold.percent)
            if amount >= limit:
                fired["up"] = series.dates[prev].isoformat()
            if amount <= -limit:
                fired["down"] = series.dates[prev].isoformat()
        return fired
    if not window.calendar:
        return fired  # 1d: the period is the session itself; no earlier close belongs to it
    base = window.base_index(series, session)
    if base < 0:
        return fired
    period = window.period_key(session)
    for index in range(base + 1, prev + 1):
        amount = _amount(values[index], values[base], threshold.percent)
        if amount >= limit:
            fired["up"] = period
        if amount <= -limit:
            fired["down"] = period
    return fired


@RULES.register("change")
class ChangeRule(Rule[ChangeParams]):
    """Fires when the change over the window reaches the threshold."""

    type_name: ClassVar[str] = "change"
    params_model: ClassVar[type[RuleParams]] = ChangeParams
    template_fields: ClassVar[frozenset[str]] = frozenset(
        {"change", "change_pct", "window", "period", "base", "base_date", "direction"}
    )

    def history_days(self) -> int | None:
        return self.params.window.history_days()

    def evaluate(
        self,
        observations: Sequence[Observation],
        history: History,
        state: Mapping[str, Any] | None,
        clock: Clock,
    ) -> tuple[RuleState, list[AlertDraft]]:
        params = self.params
        window, threshold = params.window, params.threshold
        series = history.get(params.symbol)
        values = series.values
        limit = abs(threshold.amount)
        percent = threshold.percent
        want_up = params.direction in ("up", "both")
        want_down = params.direction in ("down", "both")
        fired: dict[str, str | None] | None = (
            dict(state["fired"]) if state and state.get("fired") is not None else None
        )
        tz = self.context.tz
        drafts: list[AlertDraft] = []
        dates, size = series.dates, len(series.dates)
        following = -1  # first row dated on/after the current session; -1: not looked up
        rolling = episodic(window)
        span = window.sessions
        calendar = window.calendar
        current: date | None = None
        period_start = period_end = date.max  # the calendar period ``base`` belongs to
        base = -1
        # A long batch (a backtest) visits only the rows found by _batch_rows, with their base
        # rows; a short one (the live loop) visits every row and looks its base up below.
        rows: Sequence[int] = range(len(observations))
        bases: list[int] | None = None
        found = fast_path(len(observations), lambda: self._batch_rows(observations, series))
        if found is not None:
            rows, bases = found
        for position, row in enumerate(rows):
            observation = observations[row]
            session = observation.session or observation.time.astimezone(tz).date()
            if fired is None:
                fired = seed_fired(series, window, session, threshold)
            if bases is not None:
                base = bases[position]
            elif session != current:  # one lookup per session, not per intraday print
                current = session
                if calendar:
                    if not period_start <= session < period_end:
                        period_start = window.period_start(session)
                        period_end = window.period_end(session)
                        base = series.index_before(period_start)
                else:
                    # Walk forward to the first row dated ``session`` or later (sessions only
                    # grow within a batch; bisect if one did not).
                    if following < 0 or (following > 0 and dates[following - 1] >= session):
                        following = bisect.bisect_left(dates, session)
                    while following < size and dates[following] < session:
                        following += 1
                    base = following - span if following >= span else -1
            if base < 0:
                continue  # not enough history for the window yet
            reference = values[base]
            value = observation.value
            if percent:
                amount = (value / reference - 1.0) * 100.0 if reference else 0.0
            else:
                amount = value - reference
            up, down = amount >= limit, amount <= -limit
            if not (up or down or (rolling and (fired["up"] or fired["down"]))):
                continue  # the common case: inside the threshold, nothing to remember
            for direction in breach_step(fired, window, session, up, down):
                if want_up if direction == "up" else want_down:
                    drafts.append(self._draft(observation, session, series, base, direction))
        return {"fired": fired}, drafts

    def _batch_rows(
        self, observations: Sequence[Observation], series: DailySeries
    ) -> tuple[list[int], list[int]]:
        """Fast path for long batches: the rows the loop in :meth:`evaluate` must visit (row 0,
        rows beyond the threshold, the first row back inside after them) and their base rows.

        Mirrors the loop's scalar code with numpy over the whole batch: the base row of each
        session (:func:`base_indices`), the same change arithmetic and comparisons. Every other
        row is one on which the loop would ``continue`` without touching the state.
        """
        import numpy as np

        threshold = self.params.threshold
        limit = abs(threshold.amount)
        values = batch_arrays(observations, self.context.tz)[0]
        base = batch_base_indices(observations, self.context.tz, self.params.window, series)
        valid = base >= 0
        reference = series.arrays()[1][np.where(valid, base, 0)] if len(series) else values * 0
        with np.errstate(divide="ignore", invalid="ignore"):
            if threshold.percent:
                amount = np.where(reference != 0, (values / reference - 1.0) * 100.0, 0.0)
            else:
                amount = values - reference
        beyond = valid & ((amount >= limit) | (amount <= -limit))
        rows = episode_rows(valid, beyond)
        return rows.tolist(), base[rows].tolist()

    def _draft(
        self,
        observation: Observation,
        session: date,
        series: DailySeries,
        base_index: int,
        direction: str,
    ) -> AlertDraft:
        params = self.params
        window = params.window
        name = self.context.name(params.symbol)
        base = series.values[base_index]
        base_day = series.dates[base_index]
        value = observation.value
        change = value - base
        change_pct = (value / base - 1.0) * 100.0 if base else 0.0
        verb = "up" if change >= 0 else "down"
        label = window_label(window)
        text = (
            f"{name} ({params.symbol}) is {verb} {abs(change_pct):.2f}% {label}: "
            f"{fmt_value(base)} → {fmt_value(value)} ({fmt_signed(change)} points) since the "
            f"close of {base_day.isoformat()}, on {fmt_time(observation.time, self.context.tz)}"
            f" (threshold {'±' if params.direction == 'both' else ''}{params.threshold})"
        )
        return AlertDraft(
            key=event_key(window, session, direction),
            symbol=params.symbol,
            time=observation.time,
            value=value,
            text=text,
            fields={
                "change": fmt_signed(change),
                "change_pct": fmt_percent(change_pct),
                "window": label,
                "period": window.period_key(session),
                "base": fmt_value(base),
                "base_date": base_day.isoformat(),
                "direction": direction,
            },
        )
