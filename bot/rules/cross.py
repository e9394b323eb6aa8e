"""``cross``: the value crosses a level (or several) in a direction, once per crossing.

The first observation only arms the rule: starting the bot above 2,500 sends nothing. After
firing upward the rule re-arms once the value is back below the level — or, with ``rearm``,
below ``level × (1 − rearm%)`` / ``level − rearm points`` — so noise around a level does not
produce a stream of alerts. Downward is the mirror image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from bot.clock import Clock
from bot.config import RuleParams, ThresholdValue
from bot.model import AlertDraft, History, Observation
from bot.rules.base import RULES, Rule, RuleState
from bot.rules.text import event_time_key, fmt_number, fmt_time


class CrossParams(RuleParams):
    """``type: cross`` options."""

    symbol: str
    level: float | None = None
    levels: list[float] | None = Field(default=None, min_length=1)
    direction: Literal["up", "down", "both"] = "up"
    on: Literal["price", "close"] = "price"
    rearm: ThresholdValue | None = None

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

    def wants(self, observation: Observation) -> bool:
        if observation.symbol != self.params.symbol:
            return False
        if self.params.on == "close":
            return observation.kind == "close"
        return observation.kind in ("price", "close")

    def evaluate(
        self,
        observations: Sequence[Observation],
        history: History,
        state: Mapping[str, Any] | None,
        clock: Clock,
    ) -> tuple[RuleState, list[AlertDraft]]:
        params = self.params
        levels_state: dict[str, dict[str, bool]] = {
            key: dict(value) for key, value in ((state or {}).get("levels") or {}).items()
        }
        last = (state or {}).get("last")
        drafts: list[AlertDraft] = []
        want_up = params.direction in ("up", "both")
        want_down = params.direction in ("down", "both")
        for observation in observations:
            value = observation.value
            for level in params.all_levels():
                key = f"{level:g}"
                armed = levels_state.get(key)
                if armed is None:
                    # First observation for this level: arm only, never fire.
                    levels_state[key] = {"up": value < level, "down": value > level}
                    continue
                distance = params.rearm.of(level) if params.rearm is not None else 0.0
                if armed["up"] and value >= level:
                    armed["up"] = False
                    if want_up:
                        drafts.append(self._draft(observation, level, "up"))
                elif not armed["up"] and value < level - distance:
                    armed["up"] = True
                if armed["down"] and value <= level:
                    armed["down"] = False
                    if want_down:
                        drafts.append(self._draft(observation, level, "down"))
                elif not armed["down"] and value > level + distance:
                    armed["down"] = True
            last = {"value": value, "time": observation.time.isoformat()}
        return {"levels": levels_state, "last": last}, drafts

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
