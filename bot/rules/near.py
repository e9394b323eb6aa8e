"""``near``: the value comes within X% or X points of a level or of the record close.

"Russell 2000 within 0.5% of its record close" fires once per approach: after firing, the rule
re-arms only when the value has moved away by more than ``rearm`` (default: twice ``within``), so
a market hovering at the edge of the band does not produce a stream of alerts. Like ``cross``,
the first observation only arms the rule (starting the bot near the level sends nothing).

With ``of: record`` the target is the highest close *before* the observation's session (seeded
from history, then kept up to date from new closes). A value *above* that record never fires
and leaves the rule as it was: new records are the ``record_close`` rule's job, so one close is
never reported by both ("… above its record close" next to "a record high"). A value exactly
at the record does fire: a tie is not a new record, so ``record_close`` stays quiet on it.

Boundaries: a distance equal to ``within`` is inside the band (fires); re-arming needs a
distance strictly greater than ``rearm``.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, ClassVar, Literal

from pydantic import model_validator

from bot.clock import Clock
from bot.config import RuleParams, ThresholdValue
from bot.model import AlertDraft, DailySeries, History, Observation
from bot.rules.base import RULES, Rule, RuleState
from bot.rules.batch import batch_arrays, fast_path, rows_to_visit, switch_rows
from bot.rules.text import event_time_key, fmt_number, fmt_time, fmt_value
from bot.rules.windows import fold_extreme, parse_day


class NearParams(RuleParams):
    """``type: near`` options."""

    symbol: str
    level: float | None = None
    of: Literal["record"] | None = None
    within: ThresholdValue
    rearm: ThresholdValue | None = None
    on: Literal["price", "close"] = "price"

    @model_validator(mode="after")
    def _one_target(self) -> NearParams:
        if (self.level is None) == (self.of is None):
            raise ValueError("give either 'level' or 'of: record' (exactly one of them)")
        if self.within.amount <= 0:
            raise ValueError("'within' must be greater than 0")
        if self.rearm is not None and self.rearm.amount < 0:
            raise ValueError("'rearm' must not be negative")
        return self


@RULES.register("near")
class NearRule(Rule[NearParams]):
    """Fires when the value enters the band around a level or the record close."""

    type_name: ClassVar[str] = "near"
    params_model: ClassVar[type[RuleParams]] = NearParams
    template_fields: ClassVar[frozenset[str]] = frozenset(
        {"target", "target_name", "distance", "distance_pct", "within", "side"}
    )

    def history_days(self) -> int | None:
        return None if self.params.of == "record" else 0

    def evaluate(
        self,
        observations: Sequence[Observation],
        history: History,
        state: Mapping[str, Any] | None,
        clock: Clock,
    ) -> tuple[RuleState, list[AlertDraft]]:
        params = self.params
        state = state or {}
        armed: bool | None = state.get("armed")
        drafts: list[AlertDraft] = []
        within, rearm = params.within, params.rearm
        if params.of is None:
            level = float(params.level or 0.0)
            band = within.of(level)
            away = rearm.of(level) if rearm is not None else 2.0 * band
            # A long batch (a backtest) visits only the rows where the rule arms, fires or
            # re-arms (_level_rows); a short one (the live loop) visits every row.
            rows = rows_to_visit(
                len(observations),
                lambda: _level_rows(
                    batch_arrays(observations, self.context.tz)[0], level, band, away, armed
                ),
            )
            for row in rows:
                observation = observations[row]
                armed, fired = _approach(armed, abs(observation.value - level), band, away)
                if fired:
                    drafts.append(self._draft(observation, level, None))
            return {"armed": armed}, drafts

        # of: record — keep the record close of the rows before each observation's session.
        series = history.get(params.symbol)
        dates = series.dates
        record: float | None = state.get("record")
        record_day = parse_day(state.get("record_date"))
        through = parse_day(state.get("through"))
        folded = series.index_on_or_before(through) if through is not None else -1
        tz = self.context.tz
        size, following = len(dates), -1
        banded: float | None = None  # the record ``band``/``away`` were computed for
        band = away = 0.0
        visit: Sequence[int] = range(len(observations))
        final_prev: int | None = None  # fast path: the last row the batch folds in
        found = fast_path(
            len(observations),
            lambda: self._record_rows(observations, series, record, folded, armed),
        )
        if found is not None:
            visit, final_prev = found
        for row in visit:
            observation = observations[row]
            session = observation.session or observation.time.astimezone(tz).date()
            # The first row dated on or after the session, walking forward (sessions only grow
            # within a batch; bisect when they did not): cheaper than a bisection per row.
            if following < 0 or (following > 0 and dates[following - 1] >= session):
                following = bisect.bisect_left(dates, session)
            while following < size and dates[following] < session:
                following += 1
            record, record_day, folded = fold_extreme(
                series, record, record_day, folded, following - 1
            )
            if record is None:
                continue  # no close yet: nothing to be near
            if observation.value > record:
                continue  # beyond the record: record_close's news, not a "near" one
            if record != banded:  # the bands move with the record (rarely): recompute then
                banded = record
                band = within.of(record)
                away = rearm.of(record) if rearm is not None else 2.0 * band
            armed, fired = _approach(armed, abs(observation.value - record), band, away)
            if fired:
                drafts.append(self._draft(observation, record, record_day))
        if final_prev is not None:  # the rows the fast path skipped fold in, as in the loop
            record, record_day, folded = fold_extreme(
                series, record, record_day, folded, final_prev
            )
        new_state = {
            "armed": armed,
            "record": record,
            "record_date": record_day.isoformat() if record_day else None,
            "through": dates[folded].isoformat() if folded >= 0 else None,
        }
        return new_state, drafts

    def _record_rows(
        self,
        observations: Sequence[Observation],
        series: DailySeries,
        record: float | None,
        folded: int,
        armed: bool | None,
    ) -> tuple[list[int], int] | None:
        """Fast path for long batches (``of: record``): the rows on which the loop arms, fires
        or re-arms, and the last history row the batch folds in; ``None`` when the batch does
        not suit it (sessions out of order, NaNs) and every row must be visited.

        The loop's record before a row is the highest of the record it started with and the
        history rows it folds in (``folded + 1`` .. the row before the session): a running
        maximum. Rows without a record, or above it, leave the rule as it was; on the others
        the band follows the record (the same float arithmetic as ``ThresholdValue.of``).
        """
        import numpy as np

        values, ordinals = batch_arrays(observations, self.context.tz)
        if len(ordinals) > 1 and not bool(np.all(ordinals[1:] >= ordinals[:-1])):
            return None
        rows_ordinals, rows_values = series.arrays()
        if np.isnan(values).any() or np.isnan(rows_values).any():
            return None
        prev = np.searchsorted(rows_ordinals, ordinals, side="left") - 1
        best = np.full(len(values), np.nan if record is None else record)
        start = folded + 1
        if len(rows_values) > start:
            running = np.maximum.accumulate(rows_values[start:])
            has_rows = prev >= start
            folded_best = running[np.where(has_rows, prev - start, 0)]
            best = np.where(has_rows, np.fmax(best, folded_best), best)  # fmax: NaN = none yet
        with np.errstate(invalid="ignore"):
            judged = ~np.isnan(best) & (values <= best)
        distance = np.abs(values - best)
        band = _threshold_of(self.params.within, best)
        rearm = self.params.rearm
        away = _threshold_of(rearm, best) if rearm is not None else 2.0 * band
        final_prev = max(int(prev[-1]), folded) if len(prev) else folded
        return _approach_rows(judged, distance, band, away, armed), final_prev

    def _draft(
        self, observation: Observation, target: float, record_day: date | None
    ) -> AlertDraft:
        params = self.params
        name = self.context.name(params.symbol)
        value = observation.value
        distance = value - target
        distance_pct = (value / target - 1.0) * 100.0 if target else 0.0
        side = "above" if distance > 0 else "below" if distance < 0 else "at"
        if record_day is not None:
            target_name = f"its record close {fmt_value(target)} of {record_day.isoformat()}"
        else:
            target_name = fmt_number(target)
        basis = "closed at" if observation.kind == "close" else "at"
        where = (
            f"{fmt_number(abs(distance))} points ({abs(distance_pct):.2f}%) {side} {target_name}"
            if side != "at"
            else f"exactly at {target_name}"
        )
        text = (
            f"{name} ({params.symbol}) {basis} {fmt_value(value)}: {where}, "
            f"within {params.within}, on {fmt_time(observation.time, self.context.tz)}"
        )
        what = "record" if record_day is not None else f"{target:g}"
        return AlertDraft(
            key=f"{what}:{event_time_key(observation)}",
            symbol=params.symbol,
            time=observation.time,
            value=value,
            text=text,
            fields={
                "target": fmt_number(target),
                "target_name": target_name,
                "distance": fmt_number(abs(distance)),
                "distance_pct": f"{abs(distance_pct):.2f}%",
                "within": str(params.within),
                "side": side,
            },
        )


def _threshold_of(threshold: ThresholdValue, bases: Any) -> Any:
    """:meth:`ThresholdValue.of` of each base (numpy array), with the same float operations."""
    import numpy as np

    if threshold.percent:
        return np.abs(bases) * threshold.amount / 100.0
    return np.full(len(bases), float(threshold.amount))


def _level_rows(
    values: Any, level: float, band: float, away: float, armed: bool | None
) -> list[int]:
    """Fast path for long batches (``level``): the rows on which the loop arms (the first one,
    without a state), fires or re-arms, ascending (see :func:`_approach`); ``values``: the
    batch's (:func:`~bot.rules.batch.batch_arrays`, shared by the rules on the batch)."""
    import numpy as np

    return _approach_rows(
        np.ones(len(values), dtype=bool), np.abs(values - level), band, away, armed
    )


def _approach_rows(
    judged: Any, distance: Any, band: Any, away: Any, armed: bool | None
) -> list[int]:
    """The rows on which :func:`_approach` changes anything, ascending: among the ``judged``
    rows (boolean array; the others leave the rule as it was), the first one when the rule has
    no state yet (it only arms), then those where it fires or re-arms. ``band``/``away``:
    scalars or one value per row."""
    import numpy as np

    fires, rearms = judged & (distance <= band), judged & (distance > away)
    if armed is not None:
        return switch_rows(fires, rearms, armed, 0)
    first = np.flatnonzero(judged)
    if not len(first):
        return []
    row = int(first[0])
    arms = bool(distance[row] > (band[row] if np.ndim(band) else band))
    return [row, *switch_rows(fires, rearms, arms, row + 1)]


def _approach(armed: bool | None, distance: float, band: float, away: float) -> tuple[bool, bool]:
    """One step of the approach state machine: ``(armed, fired)`` after seeing ``distance``.

    The first observation (``armed is None``) only arms; an armed rule fires on entering the
    band and disarms; it re-arms once farther than ``away``.
    """
    if armed is None:
        return distance > band, False
    if armed:
        return (False, True) if distance <= band else (True, False)
    return distance > away, False
