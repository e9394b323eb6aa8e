"""``rate_change``: a policy rate changes — the Fed funds target range (FRED DFEDTARL/DFEDTARU).

Messages read "Fed cuts by 25 bp: 4.50–4.75% → 4.25–4.50% (effective 2024-12-19)"; hikes
likewise; a change of one bound only is reported as such ("Fed raises the upper bound by 25 bp:
…"). Input is ``rate`` observations whose ``fields`` hold ``lower``/``upper`` (``value`` is the
upper bound), or a single-series rate (``value`` only). The previous range is seeded from history,
so a first run never reports the range it finds as a "change".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, ClassVar

from bot.clock import Clock
from bot.config import RuleParams
from bot.model import AlertDraft, DailySeries, History, Observation
from bot.rules.base import RULES, Rule, RuleState
from bot.rules.text import fmt_range
from bot.rules.windows import parse_day


class RateChangeParams(RuleParams):
    """``type: rate_change`` options."""

    symbol: str
    #: who sets the rate, as the message names it
    label: str = "Fed"


def _bp(delta: float) -> int:
    """Percentage points → whole basis points (FRED's floats are not exact)."""
    return round(delta * 100)


def describe_change(
    label: str,
    old: tuple[float | None, float],
    new: tuple[float | None, float],
    effective: date,
) -> str:
    """The message for a move from ``old`` to ``new`` ((lower, upper); lower None = one rate)."""
    (old_lower, old_upper), (new_lower, new_upper) = old, new
    upper = _bp(new_upper - old_upper)
    lower = _bp(new_lower - old_lower) if old_lower is not None and new_lower is not None else upper
    ranges = f"{fmt_range(old_lower, old_upper)} → {fmt_range(new_lower, new_upper)}"
    if lower == upper:
        verb = "hikes" if upper > 0 else "cuts"
        head = f"{label} {verb} by {abs(upper)} bp"
    elif lower == 0 or upper == 0:
        bound, moved = ("upper", upper) if lower == 0 else ("lower", lower)
        verb = "raises" if moved > 0 else "lowers"
        head = f"{label} {verb} the {bound} bound by {abs(moved)} bp"
    else:
        head = f"{label} changes the target range (lower {lower:+d} bp, upper {upper:+d} bp)"
    return f"{head}: {ranges} (effective {effective.isoformat()})"


def _row(series: DailySeries, index: int) -> tuple[float | None, float]:
    lower = series.columns.get("lower")
    upper = series.columns.get("upper")
    return (
        lower[index] if lower is not None else None,
        upper[index] if upper is not None else series.values[index],
    )


@RULES.register("rate_change")
class RateChangeRule(Rule[RateChangeParams]):
    """Fires when either bound of the rate (range) differs from the previous observation."""

    type_name: ClassVar[str] = "rate_change"
    params_model: ClassVar[type[RuleParams]] = RateChangeParams
    template_fields: ClassVar[frozenset[str]] = frozenset(
        {"old_range", "new_range", "change_bp", "lower_bp", "upper_bp", "effective", "label"}
    )
    observation_kinds: ClassVar[frozenset[str]] = frozenset({"rate", "close"})

    def history_days(self) -> int | None:
        return 14  # the last published range before the first observation

    def evaluate(
        self,
        observations: Sequence[Observation],
        history: History,
        state: Mapping[str, Any] | None,
        clock: Clock,
    ) -> tuple[RuleState, list[AlertDraft]]:
        series = history.get(self.params.symbol)
        state = state or {}
        seen = parse_day(state.get("date"))
        current: tuple[float | None, float] | None = (
            (state.get("lower"), float(state["upper"])) if state.get("upper") is not None else None
        )
        drafts: list[AlertDraft] = []
        for observation in observations:
            day = observation.session or observation.time.astimezone(self.context.tz).date()
            if seen is not None and day <= seen:
                continue  # a re-published row
            fields = observation.fields
            if fields:
                lower, upper = fields.get("lower"), fields.get("upper", observation.value)
            else:
                lower, upper = None, observation.value
            if current is not None and upper == current[1] and lower == current[0]:
                seen = day  # the common case: the same range as yesterday
                continue
            new = (float(lower) if lower is not None else None, float(upper))
            if current is None and seen is None:
                prev = series.index_before(day)  # seed: the range published before this row
                current = _row(series, prev) if prev >= 0 else None
            if current is not None and (
                _bp(new[1] - current[1]) != 0
                or (new[0] is not None and current[0] is not None and _bp(new[0] - current[0]) != 0)
            ):
                drafts.append(self._draft(observation, day, current, new))
            current, seen = new, day
        new_state = {
            "lower": current[0] if current else None,
            "upper": current[1] if current else None,
            "date": seen.isoformat() if seen else None,
        }
        return new_state, drafts

    def _draft(
        self,
        observation: Observation,
        day: date,
        old: tuple[float | None, float],
        new: tuple[float | None, float],
    ) -> AlertDraft:
        label = self.params.label
        upper = _bp(new[1] - old[1])
        lower = _bp(new[0] - old[0]) if new[0] is not None and old[0] is not None else upper
        return AlertDraft(
            key=day.isoformat(),
            symbol=self.params.symbol,
            time=observation.time,
            value=new[1],
            text=describe_change(label, old, new, day),
            day=day if observation.date_only else None,
            fields={
                "old_range": fmt_range(*old),
                "new_range": fmt_range(*new),
                "change_bp": f"{upper:+d}" if lower == upper else f"{lower:+d}/{upper:+d}",
                "lower_bp": f"{lower:+d}",
                "upper_bp": f"{upper:+d}",
                "effective": day.isoformat(),
                "label": label,
            },
        )
