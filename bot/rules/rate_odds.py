"""``rate_odds``: market-implied odds of the next FOMC meetings from 30-day fed funds futures,
and an alert when P(cut at the next meeting) crosses ``threshold``.

``contracts`` maps contract months to the symbols quoting them (``"2026-10": ZQV26`` — e.g.
Yahoo ``ZQV26.CBT``; the front month is also Yahoo ``ZQ=F``). The meetings and today's range come
from the ``calendar`` symbol (an ``fomc`` symbol: its observations carry the calendar and the
last decision). The odds are computed as in :mod:`bot.fomc.odds` on every new price; the rule
state keeps the latest summary (``summary``, priced from the quotes of ``as_of``) for ``/status``,
``report`` and the digest.

"Cut odds for the FOMC of 2026-10-28 rose to 72% (from 41%): cut 72%, hold 28%".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from bot.clock import Clock
from bot.config import RuleParams, ThresholdValue
from bot.fomc.calendar import NEW_YORK
from bot.fomc.odds import MeetingOdds, OddsError, implied_odds, odds_summary
from bot.model import AlertDraft, History, Observation
from bot.rules.base import RULES, Rule, RuleState


class RateOddsParams(RuleParams):
    """``type: rate_odds`` options."""

    #: "YYYY-MM" → the symbol quoting that month's contract; "front": the front month (Yahoo
    #: ``ZQ=F``), whose month is the quote's own
    contracts: dict[str, str] = Field(min_length=1)
    calendar: str  # the fomc symbol
    threshold: ThresholdValue  # P(cut at the next meeting), e.g. 50%
    direction: Literal["up", "down", "both"] = "both"
    meetings: int = Field(default=3, ge=1, le=8)  # how many meetings the summary shows

    @field_validator("contracts")
    @classmethod
    def _months(cls, value: dict[str, str]) -> dict[str, str]:
        for month in value:
            if month != "front" and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", str(month)):
                raise ValueError(f"contract month {month!r} must look like 2026-10 or be front")
        return value

    def watched_symbols(self) -> list[str]:
        return [*self.contracts.values(), self.calendar]


def _month(text: str) -> tuple[int, int]:
    year, month = text.split("-")
    return int(year), int(month)


@RULES.register("rate_odds")
class RateOddsRule(Rule[RateOddsParams]):
    """FedWatch-style odds; alerts when the next meeting's cut probability crosses a level."""

    type_name: ClassVar[str] = "rate_odds"
    params_model: ClassVar[type[RuleParams]] = RateOddsParams
    template_fields: ClassVar[frozenset[str]] = frozenset(
        {"meeting", "p_cut", "p_hold", "p_hike", "previous", "summary"}
    )
    observation_kinds: ClassVar[frozenset[str]] = frozenset({"price", "close", "rate"})

    def evaluate(
        self,
        observations: Sequence[Observation],
        history: History,
        state: Mapping[str, Any] | None,
        clock: Clock,
    ) -> tuple[RuleState, list[AlertDraft]]:
        state = dict(state or {})
        prices: dict[str, float] = dict(state.get("prices", {}))
        meetings: list[str] = list(state.get("meetings", []))
        current = state.get("range")
        months = {symbol: month for month, symbol in self.params.contracts.items()}
        p_cut = state.get("p_cut")
        meeting_of_p = state.get("meeting")
        drafts: list[AlertDraft] = []
        for index, observation in enumerate(observations):
            detail = observation.detail
            if observation.symbol == self.params.calendar:
                if detail is not None:
                    meetings = [m["decision_day"] for m in detail.get("meetings", [])] or meetings
                if observation.fields:
                    current = [observation.fields.get("lower"), observation.fields.get("upper")]
                continue
            month = months.get(observation.symbol)
            if month is None:
                continue
            if month == "front":  # CME months end in Chicago; New York is as good a day here
                month = observation.time.astimezone(NEW_YORK).strftime("%Y-%m")
            prices[month] = observation.value
            later = observations[index + 1 :]
            if any(o.time == observation.time and o.symbol in months for o in later[:8]):
                continue  # one poll's quotes arrive together: price the curve once, whole
            odds = self._odds(meetings, prices, observation.time.date())
            if not odds:
                continue
            nxt = odds[0]
            new_p = nxt.p_cut
            meeting = nxt.day.isoformat()
            if p_cut is not None and meeting_of_p == meeting:
                crossed = self._crossed(float(p_cut), new_p)
                if crossed:
                    drafts.append(
                        self._draft(observation, nxt, float(p_cut), crossed, odds, current)
                    )
            p_cut, meeting_of_p = new_p, meeting
            state["summary"] = odds_summary(odds, _range(current), meetings=self.params.meetings)
            state["as_of"] = observation.time.isoformat()  # the quotes the summary priced
        state.update(
            {
                "prices": prices,
                "meetings": meetings,
                "range": current,
                "p_cut": p_cut,
                "meeting": meeting_of_p,
            }
        )
        return state, drafts

    def _odds(
        self, meetings: list[str], prices: Mapping[str, float], today: date
    ) -> list[MeetingOdds]:
        ahead = [date.fromisoformat(m) for m in meetings if m >= today.isoformat()]
        if not ahead:
            return []
        try:
            return implied_odds(ahead, {_month(m): p for m, p in prices.items()}, partial=True)
        except OddsError:
            return []  # not even the next meeting's contracts are quoted yet

    def _crossed(self, old: float, new: float) -> Literal["up", "down"] | None:
        threshold = self.params.threshold
        # "50%", or a plain 0.5 (a fraction) or 50 (percent points)
        level = threshold.of(1.0) if threshold.percent else threshold.amount
        level = level / 100 if level > 1 else level
        direction = self.params.direction
        if old < level <= new and direction in ("up", "both"):
            return "up"
        if new < level <= old and direction in ("down", "both"):
            return "down"
        return None

    def _draft(
        self,
        observation: Observation,
        odds: MeetingOdds,
        old: float,
        way: str,
        all_odds: Sequence[MeetingOdds],
        current: Any,
    ) -> AlertDraft:
        verb = "rose" if way == "up" else "fell"
        parts = [f"cut {odds.p_cut:.0%}", f"hold {odds.p_hold:.0%}"]
        if odds.p_hike >= 0.005:
            parts.append(f"hike {odds.p_hike:.0%}")
        text = (
            f"Cut odds for the FOMC of {odds.day.isoformat()} {verb} to {odds.p_cut:.0%} "
            f"(from {old:.0%}): {', '.join(parts)}"
        )
        return AlertDraft(
            key=f"{odds.day.isoformat()}:{way}:{observation.time.isoformat()}",
            symbol=observation.symbol,
            time=observation.time,
            value=round(odds.p_cut * 100, 1),
            text=text,
            fields={
                "meeting": odds.day.isoformat(),
                "p_cut": f"{odds.p_cut:.0%}",
                "p_hold": f"{odds.p_hold:.0%}",
                "p_hike": f"{odds.p_hike:.0%}",
                "previous": f"{old:.0%}",
                "summary": odds_summary(all_odds, _range(current), meetings=self.params.meetings),
            },
        )


def _range(current: Any) -> tuple[float, float] | None:
    if isinstance(current, list | tuple) and len(current) == 2 and None not in current:
        return float(current[0]), float(current[1])
    return None


def odds_summaries(
    rules: Sequence[RuleParams], states: Mapping[str, Mapping[str, Any]]
) -> dict[str, str]:
    """Rule id → the latest odds summary of each enabled ``rate_odds`` rule, from the engine's
    persisted states (``Worker.states`` / ``Store.load_states()``), for ``/status``, ``report``
    and the digest. A rule that has not priced a curve yet is left out."""
    found: dict[str, str] = {}
    for params in rules:
        if params.type != "rate_odds" or not params.enabled:
            continue
        summary = (states.get(params.id) or {}).get("rule", {}) or {}
        text = summary.get("summary") if isinstance(summary, Mapping) else None
        if text:
            found[params.id] = str(text)
    return found


def odds_lines(rule_id: str, summary: str | None) -> list[str]:
    """How ``report`` and the digest show one ``rate_odds`` rule's latest ``summary``::

        Market-implied odds (cut-odds):
          FOMC 2026-12-09: cut 72%, hold 28% (most likely 3.25–3.50%)

    or ``Market-implied odds (cut-odds): no odds yet`` before it has priced a curve."""
    head = f"Market-implied odds ({rule_id}):"
    if not summary:
        return [f"{head} no odds yet"]
    return [head, *(f"  {line}" for line in summary.splitlines())]


def odds_blocks(
    rules: Sequence[RuleParams], states: Mapping[str, Mapping[str, Any]]
) -> list[list[str]]:
    """:func:`odds_lines` of every enabled ``rate_odds`` rule, in config order ("no odds yet"
    for one without a summary), from the engine's states: the block ``report`` and ``/status``
    print (``[]`` when the config has no such rule)."""
    found = odds_summaries(rules, states)
    return [
        odds_lines(params.id, found.get(params.id))
        for params in rules
        if params.type == "rate_odds" and params.enabled
    ]
