"""``rate_change``: a policy rate changes — the Fed funds target range (FRED DFEDTARL/DFEDTARU).

Messages read "Fed cuts by 25 bp: 4.50–4.75% → 4.25–4.50% (effective 2024-12-19)"; hikes
likewise; a change of one bound only is reported as such ("Fed raises the upper bound by 25 bp:
…"). Input is ``rate`` observations whose ``fields`` hold ``lower``/``upper`` (``value`` is the
upper bound), or a single-series rate (``value`` only). The previous range is seeded from history,
so a first run never reports the range it finds as a "change".

Fed by an FOMC statement (a symbol of the ``fomc`` source: its observations carry the parsed
statement in ``detail``), the alert goes out within seconds of publication: "FOMC cuts by 25 bp
to 3.50–3.75% (from 3.75–4.00%); vote 9–3 — Miran preferred −50 bp; …". With ``confirm:`` naming
the FRED symbol, FRED stays the confirmation and backfill: one decision is one alert (the
statement moves the rule's range, so FRED's next-day row finds nothing new), a FRED change no
statement announced is still reported, and a FRED row that contradicts the statement is told to
the admin chat.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from pydantic import StrictBool

from bot.clock import Clock
from bot.config import Duration, RuleParams
from bot.fomc.message import describe_decision, fmt_dissents, fmt_vote
from bot.model import AlertDraft, DailySeries, History, Observation
from bot.rules.base import RULES, Rule, RuleState
from bot.rules.text import fmt_range
from bot.rules.windows import parse_day


class RateChangeParams(RuleParams):
    """``type: rate_change`` options."""

    symbol: str
    #: who sets the rate, as the message names it
    label: str = "Fed"
    #: a second symbol confirming the first: FRED's range under an ``fomc`` symbol
    confirm: str | None = None
    #: also alert an FOMC statement that keeps the range ("FOMC holds at …")
    holds: StrictBool = False
    #: how statement alerts name the decision maker
    statement_label: str = "FOMC"
    #: a statement older than this when first seen (a first start, a long outage) only sets
    #: the range: it is news no more
    max_age: Duration = timedelta(days=1)

    def watched_symbols(self) -> list[str]:
        return [self.symbol] + ([self.confirm] if self.confirm else [])


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
        {
            "old_range",
            "new_range",
            "change_bp",
            "lower_bp",
            "upper_bp",
            "effective",
            "label",
            "decision",
            "vote",
            "dissents",
        }
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
        series = history.get(self.params.confirm or self.params.symbol)
        state = state or {}
        announced: dict[str, Any] | None = state.get("announced")
        seen = parse_day(state.get("date"))
        current: tuple[float | None, float] | None = (
            (state.get("lower"), float(state["upper"])) if state.get("upper") is not None else None
        )
        drafts: list[AlertDraft] = []
        confirm, own = self.params.confirm, self.params.symbol
        for observation in observations:
            day = observation.session or observation.time.astimezone(self.context.tz).date()
            if seen is not None and day <= seen:
                continue  # a re-published row (or FRED's row of a day a statement covered)
            fields = observation.fields
            if fields:
                lower, upper = fields.get("lower"), fields.get("upper", observation.value)
            else:
                lower, upper = None, observation.value
            detail = observation.detail
            if (  # the common case first: a plain row with yesterday's range, nothing pending
                detail is None
                and announced is None
                and current is not None
                and upper == current[1]
                and lower == current[0]
                and not (confirm and observation.symbol == own)
            ):
                seen = day
                continue
            new = (float(lower) if lower is not None else None, float(upper))
            if current is None and seen is None:
                prev = series.index_before(day)  # seed: the range published before this row
                current = _row(series, prev) if prev >= 0 else None
            is_statement = detail is not None and bool(detail.get("decision"))
            if confirm and observation.symbol == own and not is_statement:
                continue  # with confirm: the first symbol speaks through its statements only
            if detail is not None and is_statement:
                # an FOMC statement: alert now; FRED's later rows confirm it
                old = current if current is not None else _before(detail, new)
                fresh = clock.now() - _released(observation) <= self.params.max_age
                if fresh and old is not None and (_differs(old, new) or self.params.holds):
                    drafts.append(self._statement_draft(observation, day, old, new, detail))
                announced = {"date": day.isoformat(), "lower": new[0], "upper": new[1]}
                current, seen = new, day
                continue
            if announced is not None and day > date.fromisoformat(announced["date"]):
                said = (announced.get("lower"), float(announced["upper"]))
                if _differs(said, new):
                    drafts.append(self._disagreement(observation, day, announced, new))
                announced = None  # confirmed, or contradicted and told: FRED's range wins
                current, seen = new, day
                continue
            if current is not None and upper == current[1] and lower == current[0]:
                seen = day  # the common case: the same range as yesterday
                continue
            if current is not None and (
                _bp(new[1] - current[1]) != 0
                or (new[0] is not None and current[0] is not None and _bp(new[0] - current[0]) != 0)
            ):
                drafts.append(self._draft(observation, day, current, new))
            current, seen = new, day
        new_state: dict[str, Any] = {
            "lower": current[0] if current else None,
            "upper": current[1] if current else None,
            "date": seen.isoformat() if seen else None,
        }
        if announced is not None:
            new_state["announced"] = announced
        return new_state, drafts

    def _statement_draft(
        self,
        observation: Observation,
        day: date,
        old: tuple[float | None, float],
        new: tuple[float | None, float],
        detail: Mapping[str, Any],
    ) -> AlertDraft:
        upper = _bp(new[1] - old[1])
        label = self.params.statement_label
        return AlertDraft(
            key=day.isoformat(),  # the decision day: the same decision is the same alert
            symbol=observation.symbol,
            time=_released(observation),
            value=new[1],
            text=describe_decision(detail, old, new, label),
            fields={
                "old_range": fmt_range(*old),
                "new_range": fmt_range(*new),
                "change_bp": f"{upper:+d}",
                "lower_bp": f"{upper:+d}",
                "upper_bp": f"{upper:+d}",
                "effective": day.isoformat(),
                "label": label,
                "decision": "hold" if upper == 0 else "cut" if upper < 0 else "hike",
                "vote": fmt_vote(detail),
                "dissents": fmt_dissents(detail.get("dissents") or ()),
            },
        )

    def _disagreement(
        self,
        observation: Observation,
        day: date,
        announced: Mapping[str, Any],
        new: tuple[float | None, float],
    ) -> AlertDraft:
        said = fmt_range(announced.get("lower"), float(announced["upper"]))
        text = (
            f"FRED disagrees with the FOMC statement of {announced['date']}: the statement "
            f"said {said}, FRED shows {fmt_range(*new)} effective {day.isoformat()}. "
            "Check the statement page and FRED."
        )
        return AlertDraft(
            key=f"{announced['date']}:fred-disagrees",
            symbol=observation.symbol,
            time=observation.time,
            value=new[1],
            text=text,
            day=day if observation.date_only else None,
            to_admin=True,
            fields={
                "old_range": said,
                "new_range": fmt_range(*new),
                "change_bp": f"{_bp(new[1] - float(announced['upper'])):+d}",
                "lower_bp": "+0",
                "upper_bp": f"{_bp(new[1] - float(announced['upper'])):+d}",
                "effective": day.isoformat(),
                "label": self.params.label,
                "decision": "disagreement",
                "vote": "",
                "dissents": "",
            },
        )

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


def _differs(old: tuple[float | None, float], new: tuple[float | None, float]) -> bool:
    if _bp(new[1] - old[1]) != 0:
        return True
    return new[0] is not None and old[0] is not None and _bp(new[0] - old[0]) != 0


def _before(
    detail: Mapping[str, Any], new: tuple[float | None, float]
) -> tuple[float | None, float] | None:
    """The range before a statement, from the move it states (no history to seed from)."""
    bp = detail.get("bp")
    if bp is None:
        return None
    lower = new[0] - bp / 100 if new[0] is not None else None
    return (lower, new[1] - bp / 100)


def _released(observation: Observation) -> datetime:
    """When a statement was released (its observation may be stamped later: a new calendar)."""
    stamp = (observation.detail or {}).get("time")
    if isinstance(stamp, str):
        try:
            return min(datetime.fromisoformat(stamp), observation.time)
        except ValueError:
            pass
    return observation.time
