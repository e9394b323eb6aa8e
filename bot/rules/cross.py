"""``cross``: the value crosses a level (or several) in a direction, once per crossing.

The first observation only arms the rule: starting the bot above 2,500 sends nothing. After
firing upward the rule re-arms once the value is back below the level — or, with ``rearm``,
below ``level × (1 − rearm%)`` / ``level − rearm points`` — so noise around a level does not
produce a stream of alerts. Downward is the mirror image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, ClassVar, Literal

from pydantic import Field, StrictBool, model_validator

from bot.clock import Clock
from bot.config import RuleParams, ThresholdValue
from bot.model import AlertDraft, History, Observation, ObservationBatch
from bot.rules.base import RULES, Rule, RuleContext, RuleState
from bot.rules.batch import BATCH_MIN, rows_to_visit, switch_rows
from bot.rules.text import event_time_key, fmt_number, fmt_time


class CrossParams(RuleParams):
    """``type: cross`` options."""

    symbol: str
    level: float | None = None
    levels: list[float] | None = Field(default=None, min_length=1)
    direction: Literal["up", "down", "both"] = "up"
    on: Literal["price", "close"] = "price"
    rearm: ThresholdValue | None = None
    #: attach the symbol's chart (a picture) to the alert in Telegram
    chart: StrictBool = False

    @model_validator(mode="after")
    def _one_of_level_levels(self) -> CrossParams:
        if (self.level is None) == (self.levels is None):
            raise ValueError("give either 'level' or 'levels' (exactly one of them)")
        return self

    def all_levels(self) -> list[float]:
        return [self.level] if self.level is not None else sorted(self.levels or [])


@RULES.register("cross")
class CrossRule(Rule[CrossParams]):
    """Fires when the value moves from one side of a level to the other."""

    type_name: ClassVar[str] = "cross"
    params_model: ClassVar[type[RuleParams]] = CrossParams
    template_fields: ClassVar[frozenset[str]] = frozenset({"level", "direction", "verb"})

    def __init__(self, params: CrossParams, context: RuleContext) -> None:
        super().__init__(params, context)
        # Precomputed once: evaluate() runs per observation in backtests (10,000 rows per call).
        self._levels: list[tuple[str, float, float]] = [
            (f"{level:g}", level, params.rearm.of(level) if params.rearm is not None else 0.0)
            for level in params.all_levels()
        ]

    def evaluate(
        self,
        observations: Sequence[Observation],
        history: History,
        state: Mapping[str, Any] | None,
        clock: Clock,
    ) -> tuple[RuleState, list[AlertDraft]]:
        params = self.params
        # A shallow copy: each configured level's flags are replaced below, never changed in
        # place, so the previous state's dicts can be shared (one copy fewer per level a poll).
        levels_state: dict[str, dict[str, bool]] = dict((state or {}).get("levels") or {})
        drafts: list[AlertDraft] = []
        want_up = params.direction in ("up", "both")
        want_down = params.direction in ("down", "both")
        if not observations:
            return {"levels": levels_state}, drafts
        values = [o.value for o in observations]
        size = len(values)
        for key, level, distance in self._levels:
            armed = levels_state.get(key)
            start = 0
            if armed is None:
                # First observation for this level: arm only, never fire.
                armed = {"up": values[0] < level, "down": values[0] > level}
                start = 1
            up, down = armed["up"], armed["down"]
            low, high = level - distance, level + distance
            # A long batch (a backtest) visits only the rows _transitions finds; a short one
            # (the live loop) visits every row.
            rows = (
                rows_to_visit(
                    size,
                    partial(_transitions, observations, values, start, level, low, high, up, down),
                    start,
                )
                if size >= BATCH_MIN
                else range(start, size)  # the live loop: a quote or two, no fast path to build
            )
            # The hot loop of every backtest: plain floats and locals only.
            for index in rows:
                value = values[index]
                if up:
                    if value >= level:
                        up = False
                        if want_up:
                            drafts.append(self._draft(observations[index], level, "up"))
                elif value < low:
                    up = True
                if down:
                    if value <= level:
                        down = False
                        if want_down:
                            drafts.append(self._draft(observations[index], level, "down"))
                elif value > high:
                    down = True
            levels_state[key] = {"up": up, "down": down}
        if len(self._levels) > 1:
            drafts.sort(key=lambda d: d.time)  # levels were scanned one after the other
        # Only the armed flags: a state that changed with every quote would be written back
        # every poll (the engine writes only states that changed).
        return {"levels": levels_state}, drafts

    def _draft(self, observation: Observation, level: float, direction: str) -> AlertDraft:
        name = self.context.name(observation.symbol)
        verb = "crossed above" if direction == "up" else "crossed below"
        when = fmt_time(observation.time, self.context.tz)
        basis = "closed at" if observation.kind == "close" else "at"
        text = (
            f"{name} ({observation.symbol}) {verb} {fmt_number(level)}: "
            f"{basis} {fmt_number(observation.value)} on {when}"
        )
        return AlertDraft(
            key=f"{level:g}:{direction}:{event_time_key(observation)}",
            symbol=observation.symbol,
            time=observation.time,
            value=observation.value,
            text=text,
            fields={"level": fmt_number(level), "direction": direction, "verb": verb},
        )


def _value_array(observations: Sequence[Observation], values: list[float]) -> Any:
    """The batch's values as a float64 array (cached on an ObservationBatch: the cross rules of
    a backtest share a few batches)."""
    import numpy as np

    cache = observations.cache if isinstance(observations, ObservationBatch) else None
    key = ("values", len(values))
    if cache is not None and key in cache:
        return cache[key]
    array = np.array(values, dtype=np.float64)
    if cache is not None:
        cache[key] = array
    return array


def _transitions(
    observations: Sequence[Observation],
    values: list[float],
    start: int,
    level: float,
    low: float,
    high: float,
    up: bool,
    down: bool,
) -> list[int]:
    """Fast path for long batches: the rows from ``start`` on which the loop in
    :meth:`CrossRule.evaluate` changes a flag (fires, or re-arms), ascending. On every other
    row the loop does nothing, so visiting only these gives its alerts and final flags.

    Each direction is its own two-state machine (:func:`~bot.rules.batch.switch_rows`):
    armed, it fires on the first row at/beyond the level and disarms; disarmed, it re-arms on
    the first row past the re-arm bound. numpy finds those rows with the same float
    comparisons as the loop.
    """
    array = _value_array(observations, values)
    found = set(switch_rows(array >= level, array < low, up, start))
    found.update(switch_rows(array <= level, array > high, down, start))
    return sorted(found)
